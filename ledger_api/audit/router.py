"""Routes for auditors: the record manifest, and this node's trail verified against the chain."""

from __future__ import annotations

from typing import Annotated

from anyio.to_thread import run_sync
from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from web3 import Web3

from ledger_api.audit import fhir, service
from ledger_api.audit.report import render_html
from ledger_api.audit.report_schema import AuditPolicy, AuditReport
from ledger_api.auth import policy
from ledger_api.auth.caller import Caller
from ledger_api.auth.dependencies import Allowed, NodeDep
from ledger_api.core.problems import responses

router = APIRouter(prefix="/v1/audit", tags=["audit"])
_ERRORS = responses(401, 403, 422, 503)
_ADDRESS = r"^0x[0-9a-fA-F]{40}$"


OwnSystemOrAuditorDep = Annotated[Caller, Depends(Allowed(policy.OWN_SYSTEM_OR_AUDITOR))]
ReadsConsentsDep = Annotated[Caller, Depends(Allowed(policy.PATIENT_DELEGATE_OR_ANY_MEMBER_READS_CONSENTS))]


@router.get("/records", responses={200: {"content": {"application/x-ndjson": {}}}, **_ERRORS})
def record_manifest(node: NodeDep, caller: OwnSystemOrAuditorDep) -> StreamingResponse:
    """Every stored record version with the BLAKE3 of its ciphertext as it is on disk now (JSON lines)."""
    return StreamingResponse(service.manifest_lines(node), media_type="application/x-ndjson")


@router.get("/report", response_model=AuditReport, responses={200: {"content": {"text/html": {}}}, **_ERRORS})
async def own_trail_report(
    node: NodeDep,
    caller: OwnSystemOrAuditorDep,
    max_anchor_delay_s: Annotated[int, Query(ge=0, le=10**9)] = 600,
    review_deadline_s: Annotated[int, Query(ge=0, le=10**9)] = 7 * 86_400,
    format: Annotated[str, Query(pattern="^(json|html)$")] = "json",
) -> HTMLResponse | AuditReport:
    """This node's access log and records verified against the chain, as JSON or a self-contained HTML page."""
    policy = AuditPolicy(max_anchor_delay_s=max_anchor_delay_s, review_deadline_s=review_deadline_s)
    report = await run_sync(service.verify_own_trail, node, policy)
    if format == "html":
        return HTMLResponse(render_html(report))
    return report


@router.get("/fhir/AuditEvent", responses={200: {"content": {fhir.FHIR_NDJSON: {}}}, **_ERRORS})
def fhir_audit_events(
    node: NodeDep, caller: OwnSystemOrAuditorDep, patient: Annotated[str | None, Query(pattern=_ADDRESS)] = None
) -> StreamingResponse:
    """This node's access trail as FHIR R4 AuditEvent resources (bulk-data NDJSON, validated), optionally
    one patient's entries only. Purpose of use is coded in HL7 v3 ActReason; break-glass adds BTG."""
    selected = Web3.to_checksum_address(patient) if patient else None
    return StreamingResponse(service.fhir_audit_events(node, patient=selected), media_type=fhir.FHIR_NDJSON)


@router.get("/fhir/Consent", responses={200: {"content": {fhir.FHIR_JSON: {}}}, **_ERRORS})
def fhir_consents(
    node: NodeDep, caller: ReadsConsentsDep, patient: Annotated[str, Query(pattern=_ADDRESS)]
) -> JSONResponse:
    """A patient's consents as a FHIR R4 searchset Bundle of Consent resources (validated): status, the
    grantee, categories, purposes (HL7 v3 ActReason) and the validity period. Patients see their own
    (or those they are delegate for)."""
    bundle = service.fhir_consents(node, caller, Web3.to_checksum_address(patient))
    return JSONResponse(bundle, media_type=fhir.FHIR_JSON)
