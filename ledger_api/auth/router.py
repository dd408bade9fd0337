"""Routes for patient sign-in (EIP-4361) and sign-out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from ledger_api.auth import policy, proof_endings, service
from ledger_api.auth.caller import Caller
from ledger_api.auth.dependencies import Allowed, NodeDep, VerifiedBody
from ledger_api.core.bodies import json_body, parse_json
from ledger_api.core.problems import responses
from ledger_api.core.request_guard import read_body

router = APIRouter(prefix="/v1/auth", tags=["patients: sign-in"])
EndsSessionDep = Annotated[Caller, Depends(Allowed(policy.PATIENT_ENDS_OWN_SESSION))]
AnotherMemberDep = Annotated[Caller, Depends(Allowed(policy.ANOTHER_MEMBER))]
#: a sign-in message (at most 4,000 characters) and its signature, as JSON, with room to spare
SIGN_IN_MAX_BYTES = 16_384


class ChallengeView(BaseModel):
    nonce: str
    domain: str
    uri: str
    chain_id: int
    expires_at: datetime


class SessionIn(BaseModel):
    message: str = Field(max_length=4000)
    signature: str = Field(pattern=r"^(0x)?[0-9a-fA-F]{130}$")


class SessionView(BaseModel):
    token: str
    patient: str
    expires_at: datetime


@router.post("/challenge", response_model=ChallengeView, responses=responses(429, 503))
def challenge(request: Request, node: NodeDep) -> ChallengeView:
    """A one-time nonce to put in the EIP-4361 message the patient's wallet signs (rate-limited per client)."""
    made = service.create_challenge(node, client=request.client.host if request.client else "unknown")
    return ChallengeView(
        nonce=made.nonce,
        domain=node.settings.auth.siwe_domain,
        uri=node.settings.public_url,
        chain_id=node.chain_id,
        expires_at=made.expires_at,
    )


@router.post(
    "/session",
    status_code=201,
    response_model=SessionView,
    responses=responses(400, 401, 413, 415, 422, 503),
    openapi_extra=json_body(SessionIn),
)
async def open_session(request: Request, node: NodeDep) -> SessionView:
    """Exchanges a signed sign-in message for a short-lived session token (shown once)."""
    body = await read_body(request, SIGN_IN_MAX_BYTES)
    sign_in = parse_json(request, body, SessionIn)
    token, record = service.open_session(node, message=sign_in.message, signature=sign_in.signature)
    return SessionView(token=token, patient=record.patient, expires_at=record.expires_at)


@router.delete("/session", status_code=204, responses=responses(401, 403))
def close_session(request: Request, node: NodeDep, caller: EndsSessionDep) -> None:
    """Signs out: the session ends here, and its consortium-view proof ends at every member."""
    token = request.headers["authorization"][7:].strip()
    proof = service.session_proof(node, token)
    service.close_session(node, token)
    if proof is not None:
        proof_endings.announce_ended(node, proof)


class EndedProofIn(BaseModel):
    proof: str = Field(max_length=8192)


@router.post(
    proof_endings.PATH.removeprefix("/v1/auth"),
    status_code=204,
    responses=responses(400, 401, 403, 413, 415, 422, 503),
    openapi_extra=json_body(EndedProofIn),
)
def proof_ended(request: Request, node: NodeDep, body: VerifiedBody, caller: AnotherMemberDep) -> None:
    """A member tells this node that a patient signed out there: the proof it presented for that patient's
    session is refused from now on. Only the member the proof names can end it."""
    service.end_patient_proof(node, caller, parse_json(request, body, EndedProofIn).proof)
