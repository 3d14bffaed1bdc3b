"""``GET /v1/plot``: a PNG of plain muons of the served model, drawn by the server (DESIGN section 9).

The same figures as ``muongan plot`` (:mod:`service.plots.figures`), from the same stream addressing
(``seed``, ``start``, ``n``), so a plot in a browser shows exactly the muons a client would fetch. A plot
is a generation like any other: it takes a slot from the service's admission control, and ``n`` is
capped because the whole sample is held to histogram it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from service.contract.bounds import MAX_PLOT_N
from service.engine.generation import Engine
from service.http.dependencies import State
from service.http.params import Seed, Start
from service.plots import figures

DEFAULT_PLOT_N = 100_000

router = APIRouter()


def render(engine: Engine, kind: str, n: int, seed: int, start: int) -> tuple[bytes, float | None]:
    """The PNG and the equivalent protons on target of the plotted muons (run in a worker thread)."""
    plotted = figures.from_model(engine, n, seed, start)
    return figures.png(kind, plotted.muons, plotted.label, plotted.title), plotted.equivalent_pot


@router.get(
    "/v1/plot",
    summary="PNG plot of plain muons from the served model",
    response_class=Response,
    responses={
        200: {"description": "A PNG image", "content": {"image/png": {}}},
        422: {"description": "A parameter breaks a rule; detail names it"},
        429: {"description": "All generation slots busy; retry after Retry-After seconds"},
    },
)
async def plot(
    state: State,
    kind: Annotated[
        Literal["kinematics", "p_pt"],
        Query(
            description="kinematics: pairs of features (x-y, z-x, px-py, pz-pT, z-pz, x-px) as weighted 2-D "
            "histograms with log colour; p_pt: |p| against pT [GeV/c]"
        ),
    ] = "kinematics",
    n: Annotated[int, Query(ge=1, le=MAX_PLOT_N, description="Number of muons histogrammed")] = DEFAULT_PLOT_N,
    seed: Seed = 0,
    start: Start = 0,
) -> Response:
    lease = await state.admit()
    try:
        image, equivalent_pot = await run_in_threadpool(render, state.engine, kind, n, seed, start)
    finally:
        lease.release()
    headers = {
        "X-Muon-Count": str(n),
        "X-Model-Sha256": state.model.sha256,
        "X-Seed": str(seed),
        "X-Start": str(start),
    }
    if equivalent_pot is not None:
        headers["X-Equivalent-POT"] = repr(equivalent_pot)
    return Response(image, media_type="image/png", headers=headers)
