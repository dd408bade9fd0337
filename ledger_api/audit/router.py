"""Routes for auditors: the record manifest, and this node's trail verified against the chain."""

from __future__ import annotations

from typing import Annotated

from anyio.to_thread import run_sync
from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, StreamingResponse

from ledger_api.audit import service
from ledger_api.audit.report import render_html
from ledger_api.audit.verify import AuditPolicy, AuditReport
from ledger_api.auth.dependencies import MemberOrAuditorDep, NodeDep
from ledger_api.core.problems import responses
from ledger_api.errors import Forbidden

router = APIRouter(prefix="/v1/audit", tags=["audit"])
_ERRORS = responses(401, 403, 422, 503)


def _own_system_or_auditor(caller) -> None:  # noqa: ANN001
    if caller.kind == "member" and not caller.local:
        raise Forbidden("only this node's own hospital system or an auditor may do this")


@router.get("/records", responses={200: {"content": {"application/x-ndjson": {}}}, **_ERRORS})
def record_manifest(node: NodeDep, caller: MemberOrAuditorDep) -> StreamingResponse:
    """Every stored record version with the BLAKE3 of its ciphertext as it is on disk now (JSON lines)."""
    _own_system_or_auditor(caller)
    return StreamingResponse(service.manifest_lines(node), media_type="application/x-ndjson")


@router.get("/report", response_model=AuditReport, responses={200: {"content": {"text/html": {}}}, **_ERRORS})
async def own_trail_report(
    node: NodeDep, caller: MemberOrAuditorDep,
    max_anchor_delay_s: Annotated[int, Query(ge=0, le=10**9)] = 600,
    review_deadline_s: Annotated[int, Query(ge=0, le=10**9)] = 7 * 86_400,
    format: Annotated[str, Query(pattern="^(json|html)$")] = "json",
):  # noqa: ANN201 - JSON model or HTML page
    """This node's access log and records verified against the chain, as JSON or a self-contained HTML page."""
    _own_system_or_auditor(caller)
    policy = AuditPolicy(max_anchor_delay_s=max_anchor_delay_s, review_deadline_s=review_deadline_s)
    report = await run_sync(service.verify_own_trail, node, policy)
    if format == "html":
        return HTMLResponse(render_html(report))
    return report
