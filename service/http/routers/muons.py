"""The muon routes (DESIGN section 9): plain, boosted, custom-aux and seed-enhanced muons.

Every muon route follows one path: validate, admit (or 429), build a generation, sum its weights, then
stream the body (Arrow, npy, CSV) or build it whole (ROOT). What can be checked without a slot is
checked before taking one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from service.contract import modes
from service.contract.bounds import MAX_SCALE, MAX_SEED, MAX_SMEAR, MAX_START, MIN_SCALE
from service.engine.generation import Request as Generation
from service.http import guards, responses, uploads
from service.http.departures import unless_client_leaves
from service.http.dependencies import ServiceState, State
from service.http.limits import Lease
from service.http.params import FORMAT_HELP, N_HELP, SEED_HELP, START_HELP, Format, FormatQuery, N, Seed, Start
from service.samples.encoders import MEDIA_TYPES, root_file

router = APIRouter()

# Parameters a user may expect on a route that does not take them, and why (the 422 says so).
NOT_TAKEN = {
    ("/v1/muons/custom", "n"): "custom makes one muon per row of the uploaded aux array, so n is the body's row count",
}


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


def _muon_responses(mode: str) -> dict[int | str, dict[str, Any]]:
    named = responses.documented_headers(mode)
    return {
        200: {
            "description": "Muons: columns pdg, x, y, z [cm], px, py, pz [GeV/c], weight; float32",
            "content": {media_type: {} for media_type in MEDIA_TYPES.values()},
            "headers": {name: {"description": text, "schema": {"type": "string"}} for name, text in named.items()},
        },
        413: {"description": "Upload larger than the server's limit"},
        415: {"description": "Upload in a format this route does not take"},
        422: {"description": "A parameter or the upload breaks a rule; detail names it"},
        429: {"description": "All generation slots busy; retry after Retry-After seconds"},
    }


def _upload_route(mode: str, summary: str, description: str, formats: tuple[str, ...]) -> Any:
    """``router.post`` for a route whose body is an upload: FastAPI cannot see a body read by hand, so its
    schema is declared here, with the media types of exactly the ``formats`` the route accepts."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    media_types = [media_type for media_type, fmt in uploads.UPLOAD_TYPES.items() if fmt in formats]
    body = {"required": True, "description": description, "content": dict.fromkeys(media_types, binary)}
    return router.post(
        f"/v1/muons/{mode}",
        response_class=Response,
        responses=_muon_responses(mode),
        summary=summary,
        openapi_extra={"requestBody": body},
    )


def check_n(state: ServiceState, n: int, fmt: str) -> None:
    """Refuse a request for more muons than this server sends at once (fewer for ROOT, built in memory)."""
    settings = state.settings
    if n > settings.max_n:
        raise HTTPException(422, f"n={n} exceeds this server's limit of {settings.max_n} muons per request")
    if fmt == "root" and n > settings.max_root_n:
        raise HTTPException(
            422,
            f"n={n} exceeds the ROOT limit of {settings.max_root_n} muons (ROOT files are built in memory); "
            "use arrow or npy, or several requests with different start",
        )


async def deliver(
    http: Request, state: ServiceState, lease: Lease, mode: modes.Mode, seed: int, start: int, n: int, fmt: str
) -> Response:
    """Generate and send; the lease is released when the body is done, or here if anything fails first.

    Until the first byte, a client that leaves stops the work within a block (:mod:`service.http.departures`).
    """
    engine, metrics = state.engine, state.metrics
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
        return responses.stream(engine, prepared, fmt, metadata, metrics, state.settings.queue_blocks, lease.release)
    except BaseException:
        lease.release()
        raise


@router.get("/v1/muons", response_class=Response, responses=_muon_responses("plain"), summary="Plain muons (weight 1)")
async def plain(
    request: Request, state: State, n: N, seed: Seed = 0, start: Start = 0, format: FormatQuery = "arrow"
) -> Response:
    check_n(state, n, format)
    lease = await state.admit()
    return await deliver(request, state, lease, modes.Plain(), seed, start, n, format)


@router.post(
    "/v1/muons/boosted",
    response_class=Response,
    responses=_muon_responses("boosted"),
    summary="Aux-boosted muons, importance-weighted",
    dependencies=[Depends(guards.json_body)],
)
async def boosted(request: Request, state: State, body: Annotated[Boosted, Body()]) -> Response:
    """Aux drawn from the copula with widened marginals; weight = p_plain(aux) / p_boosted(aux), exact."""
    check_n(state, body.n, body.format)
    lease = await state.admit()
    mode = modes.Boosted(body.scale.model_dump())
    return await deliver(request, state, lease, mode, body.seed, body.start, body.n, body.format)


@_upload_route(
    "custom",
    "Muons for your own aux values (weight 1, not physical)",
    "An (n, 4) array of non-negative aux values, columns xy, z, pt, pz: npy (float or int), or Arrow IPC "
    "with columns named xy, z, pt, pz. One muon per row.",
    uploads.AUX_FORMATS,
)
async def custom(
    request: Request, state: State, seed: Seed = 0, start: Start = 0, format: FormatQuery = "arrow"
) -> Response:
    """Generate one muon per uploaded aux row. Weights are 1: they are not physical rates, since the
    server cannot know the distribution your aux values were drawn from."""
    settings = state.settings
    lease = await state.admit()
    try:
        body = await uploads.read_body(request, settings.max_upload_bytes)
        fmt = uploads.body_format(request, body, uploads.AUX_FORMATS)
        aux = uploads.parse_aux(body, fmt, list(state.model.manifest.aux_groups), settings.max_n)
        check_n(state, len(aux), format)
    except BaseException:
        lease.release()
        raise
    return await deliver(request, state, lease, modes.Custom(aux), seed, start, len(aux), format)


@_upload_route(
    "enhanced",
    "Muons like your seed muons, importance-weighted",
    "Seed muons: npy (n, 7) or (n, 8) in canonical column order, Arrow IPC, Parquet or a FairShip ROOT "
    "file; the media type names the format, else the content tells",
    uploads.SEED_FORMATS,
)
async def enhanced(
    request: Request,
    state: State,
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
    physical rates; X-Effective-Sample-Size says how many unweighted muons they are worth. Seeds whose aux
    lies above the model's trained range (muons unlike any in its training sample) are clipped to its edge before
    the proposal is built, so the weights stay exact; X-Clipped-Seeds counts them, and a request is refused
    (422) only when more than half of its seeds are outside."""
    settings = state.settings
    check_n(state, n, format)
    lease = await state.admit()
    try:
        body = await uploads.read_body(request, settings.max_upload_bytes)
        fmt = uploads.body_format(request, body, uploads.SEED_FORMATS)
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
    mode = modes.Enhanced(seeds, smear, plain_fraction)
    return await deliver(request, state, lease, mode, seed, start, n, format)
