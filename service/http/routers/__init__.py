"""The service's routes, one router per concern; :func:`~service.http.app.create_app` includes them in this order.

``muons`` the four generation modes · ``health`` the model, liveness and readiness · ``metrics`` Prometheus ·
``plots`` server-drawn PNGs. Each route declares what it needs (:data:`~service.http.dependencies.State`).
"""

from fastapi import APIRouter

from service.http.routers import health, metrics, muons, plots

ROUTERS: tuple[APIRouter, ...] = (muons.router, health.router, metrics.router, plots.router)

__all__ = ["ROUTERS"]
