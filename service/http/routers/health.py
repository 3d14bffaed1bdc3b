"""The model the service runs, and whether it is alive and ready: ``/v1/model``, ``/healthz``, ``/readyz``.

Liveness and readiness are apart so that an orchestrator restarts a process that stopped answering, but
only stops sending requests to one that is shutting down (``/readyz`` turns 503 when the lifespan ends).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from service.http.dependencies import State

router = APIRouter()


@router.get("/v1/model", summary="The model's manifest (model.json) and how it is served")
async def model_info(state: State) -> dict[str, Any]:
    return state.model.describe()


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: the model is loaded and requests are taken",
    responses={503: {"description": "Shutting down: send requests elsewhere", "content": {"application/json": {}}}},
)
async def readyz(state: State) -> JSONResponse:
    body = {
        "status": "ready" if state.ready else "stopping",
        "model": state.model.manifest.name,
        "provider": state.model.provider,
    }
    return JSONResponse(body, status_code=200 if state.ready else 503)
