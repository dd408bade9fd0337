"""Structured JSON logs and Prometheus metrics, without personal data or secrets.

Requests are logged by route template (``/v1/patients/{patient}/records``), never by raw path, so
no patient account, record id or token reaches the logs.
"""

from __future__ import annotations

import logging
import time

import structlog
from fastapi import FastAPI, Request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import func
from sqlmodel import select

from ledger_api.core.db import session_scope

log = structlog.get_logger("medledger.http")


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(format="%(message)s", level=level)
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso", utc=True),
                    structlog.processors.format_exc_info, structlog.processors.JSONRenderer()],  # fmt: skip
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
    )


class Metrics:
    """The node's metrics in their own registry (no process-global state)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("medledger_requests_total", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)  # fmt: skip
        self.latency = Histogram("medledger_request_seconds", "HTTP request latency", ["route"],
                                 registry=self.registry)  # fmt: skip
        self.outbox = Gauge("medledger_outbox_items", "Outbox items by state", ["state"], registry=self.registry)


def install(app: FastAPI, metrics: Metrics) -> None:
    app.state.metrics = metrics

    @app.middleware("http")
    async def _observe(request: Request, call_next):  # noqa: ANN001, ANN202
        started = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        elapsed = time.perf_counter() - started
        metrics.requests.labels(request.method, route, str(response.status_code)).inc()
        metrics.latency.labels(route).observe(elapsed)
        log.info("request", method=request.method, route=route, status=response.status_code,
                 ms=round(elapsed * 1000, 2))  # fmt: skip
        return response


def refresh_outbox_gauge(app: FastAPI) -> None:
    from ledger_api.outbox.models import OutboxItem

    node = app.state.node
    with session_scope(node.engine) as session:
        rows = session.exec(select(OutboxItem.state, func.count()).group_by(OutboxItem.state)).all()
    for state in ("pending", "sent", "confirmed", "failed"):
        app.state.metrics.outbox.labels(state).set(dict(rows).get(state, 0))
