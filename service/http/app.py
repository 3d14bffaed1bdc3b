"""The HTTP service (DESIGN section 9): plain, boosted, custom-aux and seed-enhanced muons, plus health and metrics.

Every muon route follows one path: admit (or 429), validate, build a :class:`Request`, sum its weights,
then stream the body (Arrow, npy, CSV) or build it whole (ROOT). Bad input of any kind is a 4xx with a
JSON ``detail`` that names the problem.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from service.contract import modes
from service.contract.bounds import MAX_SCALE, MAX_SEED, MAX_SMEAR, MAX_START, MIN_SCALE
from service.contract.muons import SampleError
from service.engine.generation import Abandoned, Engine
from service.engine.generation import Request as Generation
from service.engine.model import Model
from service.http import guards, responses, uploads
from service.http.departures import unless_client_leaves
from service.http.limits import Lease, Slots
from service.http.metrics import Metrics, MetricsMiddleware
from service.http.params import FORMAT_HELP, N_HELP, SEED_HELP, START_HELP, Format, FormatQuery, N, Seed, Start
from service.http.plot_route import plot_router
from service.http.settings import Settings
from service.samples.encoders import MEDIA_TYPES, root_file

log = logging.getLogger(__name__)


def _json_number(value: object) -> object:
    """JSON numbers only: pydantic's lax mode reads true as 1 and "2" as 2, and its strict mode refuses 2.0
    for an integer, which JSON Schema (so the OpenAPI schema) calls an integer."""
    if isinstance(value, bool | str):
        raise ValueError(f"expected a JSON number, got {value!r}")
    return value


Integer = Annotated[int, BeforeValidator(_json_number)]
Number = Annotated[float, BeforeValidator(_json_number)]


def _scale(group: str) -> Any:
    return Field(default=1.0, ge=MIN_SCALE, le=MAX_SCALE, description=f"{group} rareness scale (1 = plain)")


class Scale(BaseModel):
    """Widening of each aux ("rareness") marginal: 1 = plain, larger = more muons in that group's tail."""

    model_config = ConfigDict(extra="forbid")

    xy: Number = _scale("Transverse start position")
    z: Number = _scale("Longitudinal start position")
    pt: Number = _scale("Transverse momentum")
    pz: Number = _scale("Longitudinal momentum")


class Boosted(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n: Integer = Field(ge=0, description=N_HELP)
    seed: Integer = Field(default=0, ge=0, le=MAX_SEED, description=SEED_HELP)
    start: Integer = Field(default=0, ge=0, le=MAX_START, description=START_HELP)
    format: Format = Field(default="arrow", description=FORMAT_HELP)
    scale: Scale = Field(
        description='Per-group widening of the aux marginals, e.g. {"pt": 3}; required (a boosted request '
        "without it would be a plain one labelled boosted)"
    )


# Parameters a user may expect on a route that does not take them, and why (the 422 says so).
_NOT_TAKEN = {
    ("/v1/muons/custom", "n"): "custom makes one muon per row of the uploaded aux array, so n is the body's row count",
}


def _muon_responses(weighted: bool) -> dict[int | str, dict[str, Any]]:
    names = [name for name in responses.HEADERS if weighted or name != "X-Effective-Sample-Size"]
    return {
        200: {
            "description": "Muons: columns pdg, x, y, z [cm], px, py, pz [GeV/c], weight; float32",
            "content": {media_type: {} for media_type in MEDIA_TYPES.values()},
            "headers": {name: {"description": responses.HEADERS[name], "schema": {"type": "string"}} for name in names},
        },
        413: {"description": "Upload larger than the server's limit"},
        415: {"description": "Upload in a format this route does not take"},
        422: {"description": "A parameter or the upload breaks a rule; detail names it"},
        429: {"description": "All generation slots busy; retry after Retry-After seconds"},
    }


def _upload_body(description: str, media_types: list[str]) -> dict[str, Any]:
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {media_type: binary for media_type in media_types},
        }
    }


def create_app(settings: Settings | None = None, model: Model | None = None) -> FastAPI:
    """The service for one model; loads ``settings.model_dir`` unless a loaded model is given."""
    settings = settings or Settings()
    if model is None:
        model = Model.for_settings(settings)
    engine = Engine(model, settings.draw_threads, settings.prefetch_blocks)
    metrics = Metrics()
    metrics.model.info({"name": model.manifest.name, "sha256": model.sha256, "provider": model.provider})
    slots = Slots(settings.max_concurrent)
    metrics.active.set_function(lambda: slots.used)
    metrics.waiting.set_function(lambda: slots.waiting)
    groups = list(model.manifest.aux_groups)
    state = {"ready": True}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state["ready"] = False
        engine.close()

    # /docs and /redoc with Swagger UI and ReDoc served from fastapi-offline's copies, not a CDN: they work on a
    # batch node without internet, and the pages name no external URL (Swagger UI's validator badge is off).
    app = FastAPIOffline(
        static_url=guards.DOCS_ASSETS,
        swagger_ui_parameters={"validatorUrl": None},
        title="muongan",
        version="1",
        summary="SHiP-like background muons from a GAN, streamed on demand",
        description=(
            "Muons are rows of pdg, x, y, z [cm], px, py, pz [GeV/c] and weight, float32. "
            "A seed names an endless reproducible stream; `start` and `n` pick rows of it. "
            "Every muon response states its muon count, equivalent protons on target and model sha256 in headers."
        ),
        lifespan=lifespan,
        dependencies=[Depends(guards.KnownQuery(_NOT_TAKEN))],
    )
    guards.install(app, settings)
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    @app.exception_handler(SampleError)
    async def sample_error(_: Request, error: SampleError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=422)

    @app.exception_handler(Abandoned)
    async def abandoned(_: Request, error: Abandoned) -> Response:
        """Nobody reads this; 499 (nginx's "client closed request") tells the logs and metrics what happened."""
        log.info("client left before the response started: %s", error)
        return Response(status_code=499)

    async def admit() -> Lease:
        lease = await slots.acquire(settings.admission_wait_s)
        if lease is None:
            raise HTTPException(
                429,
                f"all {settings.max_concurrent} generation slots are busy (waited {settings.admission_wait_s:g} s "
                "in line); retry later",
                headers={"Retry-After": str(settings.retry_after_s)},
            )
        return lease

    def check_n(n: int, fmt: str) -> None:
        if n > settings.max_n:
            raise HTTPException(422, f"n={n} exceeds this server's limit of {settings.max_n} muons per request")
        if fmt == "root" and n > settings.max_root_n:
            raise HTTPException(
                422,
                f"n={n} exceeds the ROOT limit of {settings.max_root_n} muons (ROOT files are built in memory); "
                "use arrow or npy, or several requests with different start",
            )

    async def deliver(
        http: Request, lease: Lease, mode: modes.Mode, seed: int, start: int, n: int, fmt: str
    ) -> Response:
        """Generate and send; the lease is released when the body is done, or here if anything fails first.

        Until the first byte, a client that leaves stops the work within a block (:mod:`service.http.departures`).
        """
        try:
            source, extra = await run_in_threadpool(modes.engine_source, engine, mode)
            generation = Generation(seed, start, n, source)
            if fmt == "root":
                muons, prepared = await unless_client_leaves(http, lambda stop: engine.generate(generation, stop))
                metadata = responses.describe(engine, prepared, mode.name, extra)
                content = await run_in_threadpool(root_file, muons, metadata)
                metrics.muons.labels(mode.name, fmt).inc(n)
                metrics.bytes.labels(fmt).inc(len(content))
                lease.release()
                return Response(content, media_type=MEDIA_TYPES[fmt], headers=responses.headers(metadata, fmt))
            prepared = await unless_client_leaves(http, lambda stop: engine.prepare(generation, stop=stop))
            metadata = responses.describe(engine, prepared, mode.name, extra)
            return responses.stream(engine, prepared, fmt, metadata, metrics, settings.queue_blocks, lease.release)
        except BaseException:
            lease.release()
            raise

    @app.get("/v1/muons", response_class=Response, responses=_muon_responses(False), summary="Plain muons (weight 1)")
    async def plain(
        request: Request, n: N, seed: Seed = 0, start: Start = 0, format: FormatQuery = "arrow"
    ) -> Response:
        check_n(n, format)
        lease = await admit()
        return await deliver(request, lease, modes.Plain(), seed, start, n, format)

    @app.post(
        "/v1/muons/boosted",
        response_class=Response,
        responses=_muon_responses(True),
        summary="Aux-boosted muons, importance-weighted",
        dependencies=[Depends(guards.json_body)],
    )
    async def boosted(request: Request, body: Annotated[Boosted, Body()]) -> Response:
        """Aux drawn from the copula with widened marginals; weight = p_plain(aux) / p_boosted(aux), exact."""
        check_n(body.n, body.format)
        lease = await admit()
        mode = modes.Boosted(body.scale.model_dump())
        return await deliver(request, lease, mode, body.seed, body.start, body.n, body.format)

    @app.post(
        "/v1/muons/custom",
        response_class=Response,
        responses=_muon_responses(False),
        summary="Muons for your own aux values (weight 1, not physical)",
        openapi_extra=_upload_body(
            "An (n, 4) array of non-negative aux values, columns xy, z, pt, pz: npy (float or int), or Arrow IPC "
            "with columns named xy, z, pt, pz. One muon per row.",
            ["application/x-npy", "application/vnd.apache.arrow.stream", "application/vnd.apache.arrow.file"],
        ),
    )
    async def custom(request: Request, seed: Seed = 0, start: Start = 0, format: FormatQuery = "arrow") -> Response:
        """Generate one muon per uploaded aux row. Weights are 1: they are not physical rates, since the
        server cannot know the distribution your aux values were drawn from."""
        lease = await admit()
        try:
            body = await uploads.read_body(request, settings.max_upload_bytes)
            fmt = uploads.body_format(request, body, uploads.AUX_FORMATS)
            aux = uploads.parse_aux(body, fmt, groups, settings.max_n)
            check_n(len(aux), format)
        except BaseException:
            lease.release()
            raise
        return await deliver(request, lease, modes.Custom(aux), seed, start, len(aux), format)

    @app.post(
        "/v1/muons/enhanced",
        response_class=Response,
        responses=_muon_responses(True),
        summary="Muons like your seed muons, importance-weighted",
        openapi_extra=_upload_body(
            "Seed muons: npy (n, 7) or (n, 8) in canonical column order, Arrow IPC, Parquet or a FairShip ROOT "
            "file; the media type names the format, else the content tells",
            list(uploads.UPLOAD_TYPES),
        ),
    )
    async def enhanced(
        request: Request,
        n: N,
        seed: Seed = 0,
        start: Start = 0,
        format: FormatQuery = "arrow",
        smear: Annotated[
            float | None,
            Query(
                gt=0,
                le=MAX_SMEAR,
                description="Gaussian smearing of the seeds' aux in the copula's normal space (standard-normal "
                "units); default: Scott's rule for the number of seeds",
            ),
        ] = None,
        plain_fraction: Annotated[
            float,
            Query(
                ge=0,
                lt=1,
                description="Share of muons drawn from the plain distribution (defensive mixture); it caps every "
                "weight at 1/plain_fraction. 0 gives pure seed smearing with unbounded weights",
            ),
        ] = 0.1,
    ) -> Response:
        """The discriminator's aux heads predict the seeds' aux; new aux are drawn around a uniformly chosen seed
        (smeared in the copula's normal space), or, for a `plain_fraction` share, from the plain distribution.
        Weight = p_plain(aux) / q(aux) with q the exact density of that proposal, so weighted sums estimate
        physical rates; X-Effective-Sample-Size says how many unweighted muons they are worth."""
        check_n(n, format)
        lease = await admit()
        try:
            body = await uploads.read_body(request, settings.max_upload_bytes)
            fmt = uploads.body_format(request, body, tuple(uploads.UPLOAD_TYPES.values()))
            seeds = uploads.parse_seeds(body, fmt, settings.max_seeds)
            if n * len(seeds) > settings.max_enhanced_work:
                raise HTTPException(
                    422,
                    f"n x seeds = {n} x {len(seeds)} exceeds this server's limit of {settings.max_enhanced_work} "
                    "(each muon's weight sums a kernel over every seed); ask for fewer muons per request or "
                    "send fewer seeds",
                )
        except BaseException:
            lease.release()
            raise
        return await deliver(request, lease, modes.Enhanced(seeds, smear, plain_fraction), seed, start, n, format)

    @app.get("/v1/model", summary="The model's manifest (model.json) and how it is served")
    async def model_info() -> dict[str, Any]:
        return model.describe()

    @app.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        summary="Readiness: the model is loaded and requests are taken",
        responses={503: {"description": "Shutting down: send requests elsewhere", "content": {"application/json": {}}}},
    )
    async def readyz() -> JSONResponse:
        body = {
            "status": "ready" if state["ready"] else "stopping",
            "model": model.manifest.name,
            "provider": model.provider,
        }
        return JSONResponse(body, status_code=200 if state["ready"] else 503)

    @app.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"description": "Prometheus text exposition format", "content": {"text/plain": {}}}},
    )
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.include_router(plot_router(engine, admit))
    app.state.engine = engine
    app.state.metrics = metrics
    return app
