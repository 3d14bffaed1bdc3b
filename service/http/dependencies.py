"""What the routes of one app share, and how a route asks for it: a FastAPI dependency.

The factory (:func:`~service.http.app.create_app`) builds one :class:`ServiceState` per app and puts it on
``app.state``; a route declares ``state: State`` and FastAPI hands it over. Routers are module-level and so
shared by every app in a process (tests run several), which is why nothing here is a global.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, HTTPException, Request

from service.engine.generation import Engine
from service.engine.model import Model
from service.http.limits import Lease, Slots
from service.http.metrics import Metrics
from service.http.settings import Settings


@dataclass
class ServiceState:
    """One served model: its engine, the generation slots, the metrics, and whether requests are taken."""

    settings: Settings
    model: Model
    engine: Engine
    metrics: Metrics
    slots: Slots
    ready: bool = True

    @classmethod
    def build(cls, settings: Settings, model: Model) -> ServiceState:
        """The engine, slots and metrics for ``model`` under ``settings``; the metrics watch the slots."""
        engine = Engine(model, settings.draw_threads, settings.prefetch_blocks)
        metrics = Metrics()
        metrics.model.info({"name": model.manifest.name, "sha256": model.sha256, "provider": model.provider})
        slots = Slots(settings.max_concurrent)
        metrics.active.set_function(lambda: slots.used)
        metrics.waiting.set_function(lambda: slots.waiting)
        return cls(settings, model, engine, metrics, slots)

    async def admit(self) -> Lease:
        """A generation slot, after waiting in line at most ``admission_wait_s``; else a 429 with Retry-After.

        A route calls this itself, after checking what it can check for free, so a request that is refused
        anyway never waits in line nor takes a slot from another.
        """
        settings = self.settings
        lease = await self.slots.acquire(settings.admission_wait_s)
        if lease is None:
            raise HTTPException(
                429,
                f"all {settings.max_concurrent} generation slots are busy (waited {settings.admission_wait_s:g} s "
                "in line); retry later",
                headers={"Retry-After": str(settings.retry_after_s)},
            )
        return lease


def service_state(request: Request) -> ServiceState:
    """The state of the app serving ``request``."""
    return cast(ServiceState, request.app.state.service)


State = Annotated[ServiceState, Depends(service_state)]
