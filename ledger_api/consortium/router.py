"""Routes for the consortium as the chain says: members, governance, and break-glass declarations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, field_validator
from web3 import Web3

from ledger_api.auth import policy
from ledger_api.auth.caller import Caller
from ledger_api.auth.dependencies import Allowed, LocalMemberDep, NodeDep, SignedInDep, VerifiedBody
from ledger_api.auth.patient_numbers import (
    PATIENT_REF_DESCRIPTION,
    PATIENT_REF_PATTERN,
    PatientRefPath,
    resolve_patient,
)
from ledger_api.chain.commitments import new_salt, statement_commitment
from ledger_api.chain.types import ProposalKind, Role
from ledger_api.consortium import patient_view, peers
from ledger_api.consortium.models import BreakGlassDeclaration
from ledger_api.core import headers as header_names
from ledger_api.core.bodies import json_body, parse_json
from ledger_api.core.db import DB_INT_MAX, session_scope
from ledger_api.core.problems import linked, responses
from ledger_api.errors import InvalidValue, NotFound
from ledger_api.vocabulary import PurposeName, purpose_of

OwnSystemOrAuditorDep = Annotated[Caller, Depends(Allowed(policy.OWN_SYSTEM_OR_AUDITOR))]

router = APIRouter(prefix="/v1", tags=["consortium"])
SeesOverviewDep = Annotated[Caller, Depends(Allowed(policy.PATIENT_OR_DELEGATE_SEES_OVERVIEW))]
_ERRORS = responses(400, 401, 403, 404, 409, 413, 415, 422, 429, 503)


class MemberView(BaseModel):
    account: str
    index: int
    name: str
    role: Literal["member", "auditor"]
    status: Literal["active", "suspended", "removed"]
    endpoint: str
    hpke_public_key: str
    key_version: int


class ProposalIn(BaseModel):
    kind: Literal["add_member", "suspend_member", "reinstate_member", "remove_member", "update_member_keys"]
    target: str
    role: Literal["member", "auditor"] | None = None
    name: str | None = Field(default=None, max_length=200)
    endpoint: str | None = Field(default=None, max_length=500)
    hpke_public_key: str | None = Field(default=None, pattern=r"^(0x)?[0-9a-fA-F]+$")

    @field_validator("target")
    @classmethod
    def _address(cls, value: str) -> str:
        if not Web3.is_address(value):
            raise ValueError("not an Ethereum address")
        return Web3.to_checksum_address(value)


class VoteIn(BaseModel):
    support: bool


class ProposalView(BaseModel):
    proposal_id: int
    kind: str
    target: str
    proposer: str
    state: str
    approvals: int
    rejections: int
    expires_at: int


class TxView(BaseModel):
    tx_hash: str
    block_number: int
    proposal_id: int | None = None


class EmergencyIn(BaseModel):
    patient: str = Field(pattern=PATIENT_REF_PATTERN, description=PATIENT_REF_DESCRIPTION)
    reason_code: int = Field(ge=0, le=255)
    justification: str = Field(min_length=10, max_length=4000)
    clinician: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")


class EmergencyView(BaseModel):
    """A declaration as this member keeps it. ``justification_hash`` is on chain: the SHA-256 of
    ``statement_salt`` followed by the canonical JSON of ``{"justification", "reason_code"}`` (sorted keys,
    no spaces), so whoever reads this view can check it against the chain."""

    break_glass_id: int
    patient: str
    expires_at: datetime
    reason_code: int
    justification: str
    justification_hash: str
    statement_salt: str
    tx_hash: str


def _emergency_view(declaration: BreakGlassDeclaration) -> EmergencyView:
    return EmergencyView(
        break_glass_id=declaration.id,
        patient=declaration.patient,
        expires_at=declaration.expires_at,
        reason_code=declaration.reason_code,
        justification=declaration.justification,
        justification_hash=declaration.justification_hash,
        statement_salt=declaration.statement_salt,
        tx_hash=declaration.tx_hash,
    )


@router.get("/consortium/members", response_model=list[MemberView], responses=_ERRORS)
def members(node: NodeDep, caller: SignedInDep) -> list[MemberView]:
    """Every member with its role, status, endpoint and HPKE key, read from the chain now."""
    return [
        MemberView(
            account=m.account,
            index=m.index,
            name=m.name,
            role=m.role.name.lower(),
            status=m.status.name.lower(),
            endpoint=m.endpoint,
            hpke_public_key=m.hpke_public_key.hex(),
            key_version=m.key_version,
        )
        for m in node.chain.registry.members()
    ]


@router.get("/governance/proposals", response_model=list[ProposalView], responses=_ERRORS)
def proposals(node: NodeDep, caller: SignedInDep) -> list[ProposalView]:
    registry = node.chain.registry
    views = []
    for pid in range(registry.proposal_count()):
        p = registry.proposal(pid)
        views.append(
            ProposalView(
                proposal_id=pid,
                kind=p.kind.name.lower(),
                target=p.target,
                proposer=p.proposer,
                state=registry.proposal_state(pid).name.lower(),
                approvals=p.approvals,
                rejections=p.rejections,
                expires_at=p.expires_at,
            )
        )
    return views


@router.post(
    "/governance/proposals",
    status_code=201,
    response_model=TxView,
    responses=linked(
        _ERRORS,
        201,
        Vote=("vote_v1_governance_proposals__proposal_id__votes_post", {"proposal_id": "$response.body#/proposal_id"}),
        Execute=(
            "execute_v1_governance_proposals__proposal_id__execution_post",
            {"proposal_id": "$response.body#/proposal_id"},
        ),
    ),
    openapi_extra=json_body(ProposalIn),
)
def propose(request: Request, node: NodeDep, body: VerifiedBody, caller: LocalMemberDep) -> TxView:
    """Submits a governance proposal as this member (its vote counts as an approval)."""
    proposal = parse_json(request, body, ProposalIn)
    registry = node.chain.registry
    if proposal.kind == "add_member":
        if not (proposal.role and proposal.name and proposal.endpoint and proposal.hpke_public_key):
            raise InvalidValue(
                "add_member needs role, name, endpoint and hpke_public_key", field="role", code="proposal-incomplete"
            )
        key = bytes.fromhex(proposal.hpke_public_key.removeprefix("0x"))
        receipt = registry.propose_add_member(
            proposal.target, Role[proposal.role.upper()], proposal.name, proposal.endpoint, key
        )
    elif proposal.kind == "update_member_keys":
        if not (proposal.endpoint and proposal.hpke_public_key):
            raise InvalidValue(
                "update_member_keys needs endpoint and hpke_public_key", field="endpoint", code="proposal-incomplete"
            )
        receipt = registry.propose_key_update(
            proposal.target, proposal.endpoint, bytes.fromhex(proposal.hpke_public_key.removeprefix("0x"))
        )
    else:
        receipt = registry.propose_status_change(ProposalKind[proposal.kind.upper()], proposal.target)
    return TxView(
        tx_hash=receipt.tx_hash,
        block_number=receipt.block_number,
        proposal_id=receipt.event("ProposalCreated").args["proposalId"],
    )


@router.post(
    "/governance/proposals/{proposal_id}/votes",
    response_model=TxView,
    responses=_ERRORS,
    openapi_extra=json_body(VoteIn),
)
def vote(
    request: Request,
    node: NodeDep,
    body: VerifiedBody,
    caller: LocalMemberDep,
    proposal_id: Annotated[int, Path(ge=0, le=2**63)],
) -> TxView:
    receipt = node.chain.registry.vote(proposal_id, parse_json(request, body, VoteIn).support)
    return TxView(tx_hash=receipt.tx_hash, block_number=receipt.block_number, proposal_id=proposal_id)


@router.post("/governance/proposals/{proposal_id}/execution", response_model=TxView, responses=_ERRORS)
def execute(node: NodeDep, caller: LocalMemberDep, proposal_id: Annotated[int, Path(ge=0, le=2**63)]) -> TxView:
    receipt = node.chain.registry.execute(proposal_id)
    return TxView(tx_hash=receipt.tx_hash, block_number=receipt.block_number, proposal_id=proposal_id)


@router.post(
    "/emergency",
    status_code=201,
    response_model=EmergencyView,
    responses=linked(
        _ERRORS,
        201,
        GetEmergency=(
            "get_emergency_v1_emergency__break_glass_id__get",
            {"break_glass_id": "$response.body#/break_glass_id"},
        ),
        PatientHistory=("patient_history_v1_patients__patient__access_log_get", {"patient": "$response.body#/patient"}),
    ),
    openapi_extra=json_body(EmergencyIn),
)
def declare_emergency(request: Request, node: NodeDep, body: VerifiedBody, caller: LocalMemberDep) -> EmergencyView:
    """Declares break-glass access to a patient: on chain at once (who, for whom, until when, and a salted
    commitment), the coded reason and justification kept here for the patient's history and the auditor."""
    emergency = parse_json(request, body, EmergencyIn)
    emergency.patient = resolve_patient(node, caller, emergency.patient)  # an account, or this hospital's MRN
    salt = new_salt()
    justification_hash = statement_commitment(
        salt, {"reason_code": emergency.reason_code, "justification": emergency.justification}
    )
    receipt = node.chain.consents.declare_break_glass(emergency.patient, justification_hash)
    args = receipt.event("BreakGlassDeclared").args
    declaration = BreakGlassDeclaration(
        id=args["breakGlassId"],
        patient=emergency.patient,
        clinician=emergency.clinician,
        reason_code=emergency.reason_code,
        justification=emergency.justification,
        justification_hash=justification_hash.hex(),
        statement_salt=salt.hex(),
        declared_at=datetime.now(UTC),
        expires_at=datetime.fromtimestamp(args["expiresAt"], UTC),
        tx_hash=receipt.tx_hash,
    )
    with session_scope(node.engine) as session:
        session.add(declaration)
        view = _emergency_view(declaration)
    return view


@router.get("/emergency/{break_glass_id}", response_model=EmergencyView, responses=_ERRORS)
def get_emergency(
    node: NodeDep, caller: OwnSystemOrAuditorDep, break_glass_id: Annotated[int, Path(ge=1, le=DB_INT_MAX)]
) -> EmergencyView:
    """A break-glass declaration by this member with its reason, justification and the salt that opens
    its commitment on chain: for this hospital's own system and for the auditor who reviews it."""
    with session_scope(node.engine) as session:
        declaration = session.get(BreakGlassDeclaration, break_glass_id)
    if declaration is None:
        raise NotFound(f"no break-glass declaration {break_glass_id} by this member", code="break-glass-not-found")
    return _emergency_view(declaration)


# ----------------------------------------------------------------------------- across members


@router.get("/consortium/records/{record_id}", responses={200: {"content": {"*/*": {}}}, **_ERRORS})
def fetch_across(
    node: NodeDep,
    caller: LocalMemberDep,
    record_id: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
    custodian: Annotated[str, Query(pattern=r"^0x[0-9a-fA-F]{40}$")],
    purpose: Annotated[PurposeName, Query()],
    clinician: Annotated[str, Query(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")],
    version: Annotated[int | None, Query(ge=1, le=DB_INT_MAX)] = None,
) -> StreamingResponse:
    """Fetches a record held by another member, as this member, and returns the plaintext to this
    hospital's own system (after checking the ciphertext against the hash anchored on chain)."""
    fetched = peers.fetch_from_custodian(
        node,
        caller,
        custodian=Web3.to_checksum_address(custodian),
        record_id=record_id,
        version=version,
        purpose=purpose_of(purpose),
        clinician=clinician,
    )
    headers = {
        header_names.RECORD_ID: record_id,
        header_names.VERSION: str(fetched.context.version),
        header_names.CUSTODIAN: fetched.context.custodian,
        header_names.PATIENT: fetched.context.patient,
        header_names.CONTENT_HASH: fetched.content_hash,
        header_names.BASIS: fetched.basis,
        header_names.CUSTODIAN_ACCESS_SEQUENCE: str(fetched.access_sequence),
        "Cache-Control": "no-store",
        # another member's record is data, never a page of this origin's (the portal's)
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
    }
    return StreamingResponse(fetched.plaintext(node), media_type=fetched.media_type, headers=headers)


@router.get("/consortium/patients/{patient}/records", response_model=peers.FanOutResult, responses=_ERRORS)
async def records_across(
    node: NodeDep,
    caller: LocalMemberDep,
    patient: PatientRefPath,
    purpose: Annotated[PurposeName, Query()] = PurposeName.TREATMENT,  # type: ignore[attr-defined]
    deadline_ms: Annotated[int, Query(ge=100, le=30_000)] = 3000,
) -> peers.FanOutResult:
    """Everything this member may see of a patient, across every member node at once, with a deadline;
    each member's outcome (returned, denied, unreachable) is reported, and a member that is down does
    not fail the request."""
    return await peers.records_across_consortium(
        node,
        caller,
        patient=resolve_patient(node, caller, patient),
        purpose=purpose_of(purpose),
        deadline_s=deadline_ms / 1000,
    )


# ----------------------------------------------------------------------------- a patient's own view

PatientPath = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$")]
DeadlineMs = Annotated[int, Query(ge=100, le=30_000, description="how long to wait for the other members")]


@router.get(
    "/patients/{patient}/overview/records",
    response_model=patient_view.PatientRecords,
    responses=_ERRORS,
    tags=["patients: overview"],
)
async def patient_records(
    node: NodeDep, caller: SeesOverviewDep, patient: PatientPath, deadline_ms: DeadlineMs = 3000
) -> patient_view.PatientRecords:
    """The signed-in patient's records at every member (metadata only), with each member's outcome."""
    return await patient_view.patient_records(
        node, caller, Web3.to_checksum_address(patient), deadline_s=deadline_ms / 1000
    )


@router.get(
    "/patients/{patient}/overview/access-log",
    response_model=patient_view.PatientHistory,
    responses=_ERRORS,
    tags=["patients: overview"],
)
async def patient_history(
    node: NodeDep,
    caller: SeesOverviewDep,
    patient: PatientPath,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    deadline_ms: DeadlineMs = 3000,
) -> patient_view.PatientHistory:
    """Who read the signed-in patient's records at every member, newest first; break-glass with its review."""
    return await patient_view.patient_history(
        node, caller, Web3.to_checksum_address(patient), limit=limit, deadline_s=deadline_ms / 1000
    )
