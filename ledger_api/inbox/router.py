"""Routes for the patient's inbox at the node they signed in at."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel
from web3 import Web3

from ledger_api.auth import policy
from ledger_api.auth.caller import Caller
from ledger_api.auth.dependencies import Allowed, NodeDep, VerifiedBody
from ledger_api.core.bodies import json_body, parse_json
from ledger_api.core.problems import responses
from ledger_api.inbox import service
from ledger_api.inbox.models import Inbox, SeenIn

router = APIRouter(prefix="/v1", tags=["patients: overview"])
SeesOverviewDep = Annotated[Caller, Depends(Allowed(policy.PATIENT_OR_DELEGATE_SEES_OVERVIEW))]
Address = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$")]
_ERRORS = responses(400, 401, 403, 404, 413, 415, 422, 429, 503)


class Seen(BaseModel):
    patient: str
    seen_until: datetime


@router.get("/patients/{patient}/inbox", response_model=Inbox, responses=_ERRORS)
async def inbox(
    node: NodeDep,
    caller: SeesOverviewDep,
    patient: Address,
    deadline_ms: Annotated[int, Query(ge=100, le=30_000, description="how long to wait for the other members")] = 3000,
) -> Inbox:
    """Consent requests, new records, every access (break-glass with its review), grants and revocations,
    from every member, newest first, with unread counts since the patient last marked it read here."""
    return await service.inbox(node, caller, Web3.to_checksum_address(patient), deadline_s=deadline_ms / 1000)


@router.post("/patients/{patient}/inbox/seen", response_model=Seen, responses=_ERRORS, openapi_extra=json_body(SeenIn))
def mark_seen(request: Request, node: NodeDep, body: VerifiedBody, caller: SeesOverviewDep, patient: Address) -> Seen:
    """Marks the inbox read up to a moment (default now); later items stay unread."""
    account = Web3.to_checksum_address(patient)
    seen = service.mark_seen(node, caller, account, parse_json(request, body, SeenIn).until)
    return Seen(patient=account, seen_until=seen)
