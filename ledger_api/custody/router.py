"""Routes for custody handover: start and follow one (the leaving member), receive records (the successor)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from pydantic import BaseModel, Field

from ledger_api.auth import policy, signing
from ledger_api.auth.caller import Caller
from ledger_api.auth.dependencies import Allowed, LocalMemberDep, NodeDep, VerifiedBody
from ledger_api.core import headers as header_names
from ledger_api.core.bodies import json_body, parse_json
from ledger_api.core.db import DB_INT_MAX
from ledger_api.core.problems import responses
from ledger_api.custody import agreements, handover, receive
from ledger_api.custody.models import IncomingAgreementIn, IncomingAgreementPublic
from ledger_api.records.models import CustodyHandoverPublic, RecordKind
from ledger_api.records.router import _octet_stream

router = APIRouter(prefix="/v1/custody", tags=["custody"])
AnotherMemberDep = Annotated[Caller, Depends(Allowed(policy.ANOTHER_MEMBER))]
_ERRORS = responses(400, 401, 403, 404, 409, 413, 415, 422, 503)
Address = Annotated[str, Query(pattern=r"^0x[0-9a-fA-F]{40}$")]


class HandoverIn(BaseModel):
    successor: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$", description="the active member taking custody")


class Received(BaseModel):
    record_id: str
    version: int
    stored: bool


@router.post(
    "/handovers",
    status_code=202,
    response_model=CustodyHandoverPublic,
    responses=_ERRORS,
    openapi_extra=json_body(HandoverIn),
)
def start_handover(
    request: Request, node: NodeDep, body: VerifiedBody, caller: LocalMemberDep
) -> CustodyHandoverPublic:
    """Hands every record this member holds to a successor member (this member is leaving the consortium):
    each version is pushed to the successor's node with its key re-wrapped for it, custody moves on chain,
    then this node crypto-shreds its copies. Runs in the background; starting again resumes."""
    return handover.start(node, caller, parse_json(request, body, HandoverIn).successor)


@router.get("/handovers/{handover_id}", response_model=CustodyHandoverPublic, responses=_ERRORS)
def handover_status(
    node: NodeDep, caller: LocalMemberDep, handover_id: Annotated[int, Path(ge=1, le=DB_INT_MAX)]
) -> CustodyHandoverPublic:
    """How far a handover got: records sent to the successor, and transferred on chain."""
    return handover.status(node, caller, handover_id)


@router.post(
    "/agreements",
    status_code=201,
    response_model=IncomingAgreementPublic,
    responses=_ERRORS,
    openapi_extra=json_body(IncomingAgreementIn),
)
def agree_to_handover(
    request: Request, node: NodeDep, body: VerifiedBody, caller: LocalMemberDep
) -> IncomingAgreementPublic:
    """(This member's own system) Agrees to take records over from a leaving member, up to a number of records
    and bytes, for a time: the only pushes this node accepts are those under such an agreement."""
    return agreements.agree(node, caller, parse_json(request, body, IncomingAgreementIn))


@router.get("/agreements", response_model=list[IncomingAgreementPublic], responses=_ERRORS)
def list_agreements(node: NodeDep, caller: LocalMemberDep) -> list[IncomingAgreementPublic]:
    """The handovers this member agreed to take, with what has arrived under each."""
    return agreements.agreements(node, caller)


@router.delete("/agreements/{agreement_id}", response_model=IncomingAgreementPublic, responses=_ERRORS)
def withdraw_agreement(
    node: NodeDep, caller: LocalMemberDep, agreement_id: Annotated[int, Path(ge=1, le=DB_INT_MAX)]
) -> IncomingAgreementPublic:
    """Withdraws an agreement: no further push is accepted under it (what arrived stays)."""
    return agreements.withdraw(node, caller, agreement_id)


@router.put("/incoming/{record_id}/versions/{version}", response_model=Received, responses=_ERRORS)
async def receive_version(
    request: Request,
    node: NodeDep,
    caller: AnotherMemberDep,
    record_id: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
    version: Annotated[int, Path(ge=1, le=DB_INT_MAX)],
    patient: Annotated[str, Header(alias=header_names.PATIENT, pattern=r"^0x[0-9a-fA-F]{40}$")],
    category: Annotated[int, Header(alias=header_names.CATEGORY, ge=0, le=15)],
    subject_salt: Annotated[str, Header(alias=header_names.SUBJECT_SALT, pattern=r"^[0-9a-f]{64}$")],
    media_type: Annotated[str, Query(min_length=3, max_length=127, pattern=r"^[\w.+-]+/[\w.+-]+$")],
    sealed_by: Address,
    wrapped_key: Annotated[str, Header(alias=header_names.WRAPPED_KEY, min_length=16, max_length=8192)],
    fhir_resource_type: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Z][A-Za-z]+$")] = None,
    record_kind: Annotated[RecordKind, Query()] = RecordKind.OTHER,
    last_encounter: Annotated[date | None, Query()] = None,
    encounter_date: Annotated[date | None, Header(alias=header_names.ENCOUNTER_DATE)] = None,
) -> Received:
    """(Member to member) One version of a record handed over by its custodian: accepted only if the chain
    names the caller as custodian, patient, category, day of care and salt open the anchor's subject commitment, the
    bytes match the anchored hash and the wrapped key opens them. Patient, category and salt travel in
    headers, never in the URL; the record's kind and last encounter keep its retention end, and the
    chain's restriction of it holds here as it did there."""
    _octet_stream(request)
    stored = await receive.receive_version(
        node,
        caller,
        request.stream(),
        record_id=record_id,
        version=version,
        patient=patient,
        category=category,
        subject_salt=subject_salt,
        media_type=media_type,
        fhir_resource_type=fhir_resource_type,
        sealed_by=sealed_by,
        wrapped_key_b64=wrapped_key,
        declared_sha256=request.headers.get(signing.DIGEST),
        record_kind=record_kind,
        last_encounter=last_encounter,
        encounter_date=encounter_date,
    )
    return Received(**stored)
