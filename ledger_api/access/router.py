"""Routes for the access trail: a patient's history, a member's own log, JSON-lines export."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from ledger_api.access import service
from ledger_api.access.models import AccessEntryPublic
from ledger_api.auth import policy
from ledger_api.auth.caller import Caller
from ledger_api.auth.delegation import unseen_categories
from ledger_api.auth.dependencies import Allowed, NodeDep
from ledger_api.auth.patient_numbers import PatientRefPath, resolve_patient
from ledger_api.core.db import DB_INT_MAX, session_scope
from ledger_api.core.problems import responses

router = APIRouter(prefix="/v1", tags=["access trail"])
ReadsPatientLogDep = Annotated[Caller, Depends(Allowed(policy.PATIENT_DELEGATE_OWN_SYSTEM_OR_AUDITOR_READS_ACCESS_LOG))]
ReadsMemberLogDep = Annotated[Caller, Depends(Allowed(policy.OWN_SYSTEM_OR_AUDITOR_READS_MEMBER_LOG))]
_ERRORS = responses(401, 403, 422, 503)


@router.get("/patients/{patient}/access-log", response_model=list[AccessEntryPublic], responses=_ERRORS)
def patient_history(
    node: NodeDep,
    caller: ReadsPatientLogDep,
    patient: PatientRefPath,
    after: Annotated[int, Query(ge=0, le=DB_INT_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    newest_first: bool = False,
) -> list[AccessEntryPublic]:
    """Who read this patient's records here, when, why and on what grounds (break-glass flagged)."""
    patient = resolve_patient(node, caller, patient)
    unseen = unseen_categories(node, patient, caller.address) if caller.kind == "patient" else 0
    with session_scope(node.engine) as session:
        return service.list_entries(
            session, patient=patient, after=after, limit=limit, newest_first=newest_first, unseen_categories=unseen
        )


@router.get("/access-log", response_model=list[AccessEntryPublic], responses=_ERRORS)
def member_log(
    node: NodeDep,
    caller: ReadsMemberLogDep,
    after: Annotated[int, Query(ge=0, le=DB_INT_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[AccessEntryPublic]:
    """This member's access log in sequence order (its own system, or an auditor)."""
    with session_scope(node.engine) as session:
        return service.list_entries(session, after=after, limit=limit)


@router.get("/access-log/export", responses={200: {"content": {"application/x-ndjson": {}}}, **_ERRORS})
def export_log(node: NodeDep, caller: ReadsMemberLogDep) -> StreamingResponse:
    """Every entry as JSON lines: the exact documents whose hashes are anchored on chain."""

    def lines() -> Iterator[str]:
        with session_scope(node.engine) as session:
            yield from service.iter_export(session)

    return StreamingResponse(lines(), media_type="application/x-ndjson")
