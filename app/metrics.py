"""Prometheus metrics (one registry per app) and the middleware that records them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from model.scheduler import Scheduler

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "namegen_requests",
            "HTTP requests",
            ["method", "endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "namegen_request_seconds",
            "HTTP request latency",
            ["method", "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.names_generated = Counter(
            "namegen_names_generated", "names returned by /generate", registry=self.registry
        )
        self.names_scored = Counter(
            "namegen_names_scored", "names scored by /score", registry=self.registry
        )
        self.rejected = Counter(
            "namegen_rejected",
            "requests refused with 429: too much work to serve in time",
            registry=self.registry,
        )
        self.timeouts = Counter(
            "namegen_timeouts", "requests ended with 504: time limit", registry=self.registry
        )
        self.stopped_by_time = Counter(
            "namegen_stopped_by_time",
            "/generate requests answered short: their time limit ran out",
            registry=self.registry,
        )
        self.dropped = Counter(
            "namegen_dropped", "queued requests dropped: the client left", registry=self.registry
        )
        self.batch_requests = Histogram(
            "namegen_batch_requests",
            "requests served together by one step of the model",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "namegen_queue_depth", "requests admitted, not yet answered", registry=self.registry
        )

    def watch_queue(self, depth: Callable[[], int]) -> None:
        self.queue_depth.set_function(depth)

    def watch_speed(self, scheduler: Scheduler) -> None:
        """What admission and the size of a step are worked out from."""
        speed = scheduler.speed
        gauges: list[tuple[str, str, Callable[[], float]]] = [
            ("namegen_step_rows", "names a step runs at most now", lambda: scheduler.limit or 0),
            (
                "namegen_row_step_seconds",
                "model time per name a step",
                lambda: scheduler.row_seconds,
            ),
            (
                "namegen_score_position_seconds",
                "model time per character scored",
                lambda: speed.per_position,
            ),
            (
                "namegen_model_busy",
                "share of the inference thread's time in the model",
                lambda: speed.busy,
            ),
        ]
        for name, doc, read in gauges:
            Gauge(name, doc, registry=self.registry).set_function(read)


METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsMiddleware:
    """Counts requests and times them per route template (not per raw path, so unknown
    paths cannot blow up the label set); a request refused before routing (401, 413,
    429) counts under its path when that is a route's. The labelled children are looked
    up once per label set and kept: `labels()` costs a lock and several dict lookups."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics
        self.counters: dict[tuple[str, str, int], Any] = {}
        self.timers: dict[tuple[str, str], Any] = {}
        self.paths: frozenset[str] | None = None  # of the app's routes, once it has them

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or self._unrouted(scope)
            method = scope["method"] if scope["method"] in METHODS else "other"
            counter = self.counters.get((method, endpoint, status))
            if counter is None:
                counter = self.metrics.requests.labels(method, endpoint, str(status))
                self.counters[method, endpoint, status] = counter
            counter.inc()
            timer = self.timers.get((method, endpoint))
            if timer is None:
                timer = self.timers[method, endpoint] = self.metrics.latency.labels(
                    method, endpoint
                )
            timer.observe(time.perf_counter() - started)

    def _unrouted(self, scope: Scope) -> str:
        if self.paths is None:  # the documented routes (FastAPI caches the schema)
            self.paths = frozenset(scope["app"].openapi()["paths"])
        return scope["path"] if scope["path"] in self.paths else "unmatched"
