"""The HTTP edge (DESIGN section 9): the FastAPI app on one engine and everything a request passes.

:func:`create_app` (:mod:`~service.http.app`) assembles the app: the routes live in :mod:`~service.http.routers`
(one router per concern) and declare what they need through :mod:`~service.http.dependencies`;
:mod:`~service.http.guards` is the edge every request passes (body size, API key, unknown parameters, error
bodies), :mod:`~service.http.limits` admission, :mod:`~service.http.uploads` request bodies,
:mod:`~service.http.responses` and :mod:`~service.http.pump` the streamed answer, :mod:`~service.http.departures`
clients that leave, :mod:`~service.http.metrics` Prometheus, :mod:`~service.http.settings` every ``MUONGAN_*`` knob.
"""

from service.http.app import create_app
from service.http.settings import Settings

__all__ = ["Settings", "create_app"]
