"""Prometheus metrics: requests, muons and bytes served, latency to the last byte, generations running.

Each app gets its own registry, so several apps in one process (tests, benchmarks) never collide.
Requests are timed by an ASGI middleware around ``send``, which sees the end of a streamed body; the
route label is the route's path template, so cardinality stays bounded whatever clients ask for.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "muongan_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "muongan_request_seconds",
            "Seconds from request to the last byte of the response",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.muons = Counter(
            "muongan_muons_served", "Muons sent to clients", ["mode", "format"], registry=self.registry
        )
        self.bytes = Counter(
            "muongan_response_bytes", "Bytes of muon response bodies sent", ["format"], registry=self.registry
        )
        self.active = Gauge("muongan_active_generations", "Generations holding a slot", registry=self.registry)
        self.waiting = Gauge(
            "muongan_waiting_requests", "Requests in line for a generation slot", registry=self.registry
        )
        self.model = Info("muongan_model", "The model being served", registry=self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request, streamed bodies to their last byte."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500  # what the server answers if the app fails before starting a response

        async def timed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - began)
