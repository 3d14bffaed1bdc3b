"""The HTTP service (DESIGN section 9): plain, boosted, custom-aux and seed-enhanced muons, plus health and metrics.

:func:`create_app` only assembles: the state one model is served with (:mod:`~service.http.dependencies`),
the edge every request passes (:mod:`~service.http.guards`), the metrics middleware, the error handlers and
the routers (:mod:`~service.http.routers`). Bad input of any kind is a 4xx with a JSON ``detail`` that names
the problem.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline

from service.contract.muons import SampleError
from service.engine.generation import Abandoned
from service.engine.model import Model
from service.http import guards
from service.http.dependencies import ServiceState
from service.http.metrics import MetricsMiddleware
from service.http.routers import ROUTERS
from service.http.routers.muons import NOT_TAKEN
from service.http.settings import Settings

log = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """On shutdown, readiness turns 503 and the engine stops making blocks."""
    yield
    state: ServiceState = app.state.service
    state.ready = False
    state.engine.close()


async def sample_error(_: Request, error: Exception) -> JSONResponse:
    """A sample that breaks the data contract, found while generating: the client's input, so a 422."""
    return JSONResponse({"detail": str(error)}, status_code=422)


async def abandoned(_: Request, error: Exception) -> Response:
    """Nobody reads this; 499 (nginx's "client closed request") tells the logs and metrics what happened."""
    log.info("client left before the response started: %s", error)
    return Response(status_code=499)


def create_app(settings: Settings | None = None, model: Model | None = None) -> FastAPI:
    """The service for one model; loads ``settings.model_dir`` unless a loaded model is given."""
    settings = settings or Settings()
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
            "Every muon response states its muon count, equivalent protons on target, model sha256 and the "
            "model's beam-spot convention with the FairShip flags that go with it in headers."
        ),
        lifespan=lifespan,
        dependencies=[Depends(guards.KnownQuery(NOT_TAKEN))],
    )
    app.state.service = state = ServiceState.build(settings, model or settings.load_model())
    guards.install(app, settings)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    app.add_exception_handler(SampleError, sample_error)
    app.add_exception_handler(Abandoned, abandoned)
    for router in ROUTERS:
        app.include_router(router)
    return app
