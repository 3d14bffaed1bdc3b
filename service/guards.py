"""The service's edge: what every request passes before a route sees it.

- Body size: bytes are counted as they arrive and the request is cut off with a 413 as soon as it
  passes ``max_upload_bytes`` (a declared ``Content-Length`` over the limit is refused before reading
  anything). This covers every route: FastAPI reads a JSON body whole before validating it, so without
  this a 300 MB JSON post to ``/v1/muons/boosted`` was held (and echoed back) in full.
- An optional API key (``Authorization: Bearer <key>``), compared in constant time. Health, readiness
  and the API documentation stay open, so probes and a browser looking at ``/docs`` need no key.
- CORS only for the configured origins; with none (the default) no CORS headers are sent, so
  scripts on other web sites cannot read responses.
- Validation errors echo the offending input. JSON has no NaN or infinity and an input can be
  megabytes long, so inputs are echoed as short, JSON-safe values (a NaN in a JSON body was a 500).
- The OpenAPI schema says all of this (error bodies, 413, 400, 401 and the bearer scheme), so clients
  and schema-driven fuzzers (bench/fuzz_api.py) hold the service to it.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.responses import HEADERS
from service.settings import Settings

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
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
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
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
    of every route with a body, the 400 of an unparsable JSON body and, with an API key, the 401 and the
    bearer scheme (so ``/docs`` offers to send the key)."""
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
