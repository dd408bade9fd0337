"""Routes for the access trail: a patient's history, a member's own log, JSON-lines export."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import StreamingResponse
from web3 import Web3

from ledger_api.access import service
from ledger_api.access.models import AccessEntryPublic
from ledger_api.auth.dependencies import CallerDep, MemberOrAuditorDep, NodeDep
from ledger_api.auth.service import speaks_for
from ledger_api.core.db import DB_INT_MAX, session_scope
from ledger_api.core.problems import responses
from ledger_api.errors import Forbidden

router = APIRouter(prefix="/v1", tags=["access trail"])
_ERRORS = responses(401, 403, 422, 503)


@router.get("/patients/{patient}/access-log", response_model=list[AccessEntryPublic], responses=_ERRORS)
def patient_history(
    node: NodeDep,
    caller: CallerDep,
    patient: Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$")],
    after: Annotated[int, Query(ge=0, le=DB_INT_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    newest_first: bool = False,
) -> list[AccessEntryPublic]:
    """Who read this patient's records here, when, why and on what grounds (break-glass flagged)."""
    patient = Web3.to_checksum_address(patient)
    if caller.kind == "patient" and not speaks_for(node, caller, patient):
        raise Forbidden(
            "patients see only their own history (or that of patients they are delegate for)", code="patient-scope"
        )
    if caller.kind == "member" and not caller.local:
        raise Forbidden("a member sees its own log, not another member's", code="member-scope")
    with session_scope(node.engine) as session:
        return service.list_entries(session, patient=patient, after=after, limit=limit, newest_first=newest_first)


@router.get("/access-log", response_model=list[AccessEntryPublic], responses=_ERRORS)
def member_log(
    node: NodeDep,
    caller: MemberOrAuditorDep,
    after: Annotated[int, Query(ge=0, le=DB_INT_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[AccessEntryPublic]:
    """This member's access log in sequence order (its own system, or an auditor)."""
    if caller.kind == "member" and not caller.local:
        raise Forbidden("a member sees its own log, not another member's", code="member-scope")
    with session_scope(node.engine) as session:
        return service.list_entries(session, after=after, limit=limit)


@router.get("/access-log/export", responses={200: {"content": {"application/x-ndjson": {}}}, **_ERRORS})
def export_log(node: NodeDep, caller: MemberOrAuditorDep) -> StreamingResponse:
    """Every entry as JSON lines: the exact documents whose hashes are anchored on chain."""
    if caller.kind == "member" and not caller.local:
        raise Forbidden("a member exports its own log only", code="member-scope")

    def lines():
        with session_scope(node.engine) as session:
            yield from service.iter_export(session)

    return StreamingResponse(lines(), media_type="application/x-ndjson")
