"""Structured JSON logs and Prometheus metrics, without personal data or secrets.

Requests are logged by route template (``/v1/patients/{patient}/records``), never by raw path, so
no patient account, record id or token reaches the logs.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import structlog
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

log = structlog.get_logger("medledger.http")


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(format="%(message)s", level=level)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
    )


class Metrics:
    """The node's metrics in their own registry (no process-global state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "medledger_requests_total", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram("medledger_request_seconds", "HTTP request latency", ["route"], registry=self.registry)
        self.outbox = Gauge("medledger_outbox_items", "Outbox items by state", ["state"], registry=self.registry)


class ObserveRequests:
    """Pure ASGI middleware: counts, times and logs each request by route template.

    Pure ASGI rather than ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware re-streams
    every response body through memory channels, which costs milliseconds on record downloads.
    """

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), {"code": 500}

        async def observed_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            elapsed = time.perf_counter() - started
            self.metrics.requests.labels(scope["method"], route, str(status["code"])).inc()
            self.metrics.latency.labels(route).observe(elapsed)
            log.info("request", method=scope["method"], route=route, status=status["code"], ms=round(elapsed * 1000, 2))


def install(app: FastAPI, metrics: Metrics) -> None:
    app.state.metrics = metrics
    app.add_middleware(ObserveRequests, metrics=metrics)
