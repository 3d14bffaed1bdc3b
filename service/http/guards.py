"""The service's edge: what every request passes before a route sees it.

- Body size: bytes are counted as they arrive and the request is cut off with a 413 as soon as it
  passes ``max_upload_bytes`` (a declared ``Content-Length`` over the limit is refused before reading
  anything). This covers every route: FastAPI reads a JSON body whole before validating it, so without
  this a 300 MB JSON post to ``/v1/muons/boosted`` was held (and echoed back) in full.
- An optional API key (``Authorization: Bearer <key>``), compared in constant time. Health, readiness
  and the API documentation stay open, so probes and a browser looking at ``/docs`` need no key.
- CORS only for the configured origins; with none (the default) no CORS headers are sent, so
  scripts on other web sites cannot read responses.
- Query parameters a route does not know are refused (422 naming them), not ignored: a typo such as
  ``sead=3`` would otherwise answer seed 0, and two batch jobs would make the same muons. So is a
  parameter given twice. A JSON body must say so (``Content-Type: application/json``, else 415):
  ``curl -d`` sends form data by default.
- Validation errors echo the offending input. JSON has no NaN or infinity and an input can be
  megabytes long, so inputs are echoed as short, JSON-safe values (a NaN in a JSON body was a 500).
- The OpenAPI schema says all of this (error bodies, 413, 400, 401 and the bearer scheme), so clients
  and schema-driven fuzzers (bench/fuzz_api.py) hold the service to it.
"""

from __future__ import annotations

import hmac
import math
from collections import Counter
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.http.responses import HEADERS
from service.http.settings import Settings

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
DOCS_ASSETS = "/docs/assets"  # Swagger UI's and ReDoc's scripts, served by the service itself (open, like /docs)
_ECHO_CHARS = 200


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes while they arrive (413), whatever route reads them."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            detail = f"request body of {int(declared)} bytes exceeds this server's limit of {self.limit} bytes"
            await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)
            return
        size = 0

        async def counted() -> Message:
            nonlocal size
            message = await receive()
            size += len(message.get("body", b""))
            if size > self.limit:  # raised inside the route that reads the body, which answers it as a 413
                raise HTTPException(413, f"request body exceeds this server's limit of {self.limit} bytes")
            return message

        await self.app(scope, counted, send)


class BearerKey:
    """Require ``Authorization: Bearer <key>`` everywhere but ``OPEN_PATHS`` (401 otherwise)."""

    def __init__(self, app: ASGIApp, key: str) -> None:
        self.app = app
        self.key = key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in OPEN_PATHS or path.startswith(DOCS_ASSETS + "/"):
            await self.app(scope, receive, send)
            return
        scheme, _, token = dict(scope["headers"]).get(b"authorization", b"").partition(b" ")
        # compare_digest takes time independent of where the token differs from the key.
        if scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self.key):
            await self.app(scope, receive, send)
            return
        detail = "this server needs an API key: send the header 'Authorization: Bearer <key>'"
        if scheme:
            detail = "the API key sent is not this server's (expected 'Authorization: Bearer <key>')"
        response = JSONResponse({"detail": detail}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)


def _query_names(route: APIRoute) -> tuple[str, ...]:
    """The query parameters of a route and of its dependencies."""
    names, dependants = [], [route.dependant]
    while dependants:
        dependant = dependants.pop()
        names += [param.alias for param in dependant.query_params]
        dependants += dependant.dependencies
    return tuple(dict.fromkeys(names))


class KnownQuery:
    """A dependency of every route: refuse query parameters the route does not declare, or repeats.

    ``hints`` explains, per ``(path, parameter)``, why a route does not take a parameter a user may expect.
    """

    def __init__(self, hints: dict[tuple[str, str], str] | None = None) -> None:
        self.hints = hints or {}

    async def __call__(self, request: Request) -> None:
        route = request.scope.get("route")
        if not isinstance(route, APIRoute):
            return
        known = _query_names(route)
        takes = f"{route.path} takes {', '.join(known) if known else 'no query parameters'}"
        errors = []
        for name, count in Counter(name for name, _ in request.query_params.multi_items()).items():
            if name not in known:
                why = self.hints.get((route.path, name), "unknown query parameter")
                message = f"{why}; {takes}"
            elif count > 1:
                message = f"given {count} times; give each query parameter once"
            else:
                continue
            errors.append(
                {"type": "extra_forbidden", "loc": ["query", name], "msg": message, "input": request.query_params[name]}
            )
        if errors:
            raise RequestValidationError(errors)


async def json_body(request: Request) -> None:
    """A dependency of routes with a JSON body: refuse a body that does not say it is JSON (415).

    FastAPI validates a form-encoded or untyped body against the JSON model and answers with a puzzling
    "Input should be a valid dictionary"; this names the header to send instead.
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise HTTPException(
            415,
            f"this route takes a JSON body: send it with the header 'Content-Type: application/json' (got "
            f"{repr(media_type) if media_type else 'no Content-Type'}; curl -d sends form data unless told)",
        )


def _echo(value: Any) -> Any:
    """A validation error's input, as JSON can carry it: non-finite floats as text, long values cut."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, str) and len(value) > _ECHO_CHARS:
        return value[:_ECHO_CHARS] + f"... ({len(value)} characters)"
    if isinstance(value, dict):
        return {key: _echo(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_echo(item) for item in value]
    return value


async def _invalid_request(_: Request, error: Exception) -> JSONResponse:
    """FastAPI's 422 for a request that breaks the schema, with its inputs echoed safely."""
    assert isinstance(error, RequestValidationError)
    return JSONResponse({"detail": _echo(jsonable_encoder(error.errors()))}, status_code=422)


class Problem(BaseModel):
    """The body of every error: ``detail`` names the problem (a sentence, or FastAPI's list of field errors)."""

    detail: str | list[dict[str, Any]]


def _documented(build: Callable[[], dict[str, Any]], settings: Settings) -> Callable[[], dict[str, Any]]:
    """``app.openapi`` that also declares what the edge answers: every error as a :class:`Problem`, the 413
    of every route with a body, the 400 and 415 of a JSON body, the 422 of an unknown query parameter and,
    with an API key, the 401 and the bearer scheme (so ``/docs`` offers to send the key)."""
    done = False

    def openapi() -> dict[str, Any]:
        nonlocal done
        schema = build()  # FastAPI builds the schema once and caches it; it is completed here once too
        if done:
            return schema
        components = schema.setdefault("components", {})
        components.setdefault("schemas", {})["Problem"] = Problem.model_json_schema()
        problem = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        if settings.api_key:
            components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        for path, operations in schema["paths"].items():
            for operation in operations.values():
                answers = operation["responses"]
                body = operation.get("requestBody", {}).get("content", {})
                if body:
                    limit = f"Body larger than this server's limit of {settings.max_upload_bytes} bytes"
                    answers.setdefault("413", {"description": limit})
                if "application/json" in body:
                    answers.setdefault("400", {"description": "Body is not parsable JSON"})
                    answers.setdefault("415", {"description": "Body not sent as Content-Type: application/json"})
                answers.setdefault("422", {"description": "A parameter breaks a rule or is unknown; detail names it"})
                if settings.api_key and path not in OPEN_PATHS:
                    answers.setdefault("401", {"description": "API key missing or wrong"})
                    operation["security"] = [{"bearer": []}]
                for status, answer in answers.items():
                    if status.startswith("4"):
                        answer["content"] = problem
        done = True
        return schema

    return openapi


def install(app: FastAPI, settings: Settings) -> None:
    """Add the edge to ``app``; middleware added later wraps it (so metrics added after see 401s and 413s)."""
    app.openapi = _documented(app.openapi, settings)  # type: ignore[method-assign]
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_middleware(BodyLimit, limit=settings.max_upload_bytes)
    if settings.api_key:
        app.add_middleware(BearerKey, key=settings.api_key)
    origins = [origin.strip() for origin in settings.cors_origins.split(",") if origin.strip()]
    if origins:  # outermost, so that preflights and 401s carry the CORS headers a browser needs
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=[*HEADERS, "Content-Disposition", "Retry-After"],
            max_age=600,
        )
