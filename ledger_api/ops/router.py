"""Operations: liveness, readiness (database and chain, contracts where the manifest says), metrics."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ledger_api.auth.dependencies import NodeDep
from ledger_api.chain.deployment import verify_deployment
from ledger_api.core.db import ping
from ledger_api.errors import LedgerError
from ledger_api.outbox.metrics import refresh_outbox_gauge

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(node: NodeDep) -> JSONResponse:
    """Ready when the database answers and the chain holds our contracts at the manifest's addresses."""
    checks: dict[str, str] = {}
    probes: tuple[tuple[str, Callable[[], object]], ...] = (
        ("database", lambda: ping(node.engine)),
        ("chain", lambda: verify_deployment(node.w3, node.manifest)),
    )
    for name, check in probes:
        try:
            check()
            checks[name] = "ok"
        except LedgerError as exc:
            checks[name] = exc.code
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks, "member": node.address},
        status_code=200 if ready else 503,
    )


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition"}},
)
def metrics(request: Request) -> Response:
    refresh_outbox_gauge(request.app.state.node, request.app.state.metrics)
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
