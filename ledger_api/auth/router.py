"""Routes for patient sign-in (EIP-4361) and sign-out."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from ledger_api.auth import service
from ledger_api.auth.dependencies import CallerDep, NodeDep
from ledger_api.core.bodies import parse_json
from ledger_api.core.problems import responses
from ledger_api.errors import Forbidden

router = APIRouter(prefix="/v1/auth", tags=["patients: sign-in"])


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


@router.post("/challenge", response_model=ChallengeView, responses=responses(503))
def challenge(node: NodeDep) -> ChallengeView:
    """A one-time nonce to put in the EIP-4361 message the patient's wallet signs."""
    made = service.create_challenge(node)
    return ChallengeView(nonce=made.nonce, domain=node.settings.auth.siwe_domain, uri=node.settings.public_url,
                         chain_id=node.chain_id, expires_at=made.expires_at)  # fmt: skip


@router.post("/session", status_code=201, response_model=SessionView, responses=responses(400, 401, 415, 422, 503))
async def open_session(request: Request, node: NodeDep) -> SessionView:
    """Exchanges a signed sign-in message for a short-lived session token (shown once)."""
    body = await request.body()
    if len(body) > 16_384:
        from ledger_api.errors import PayloadTooLarge

        raise PayloadTooLarge("sign-in body too large")
    sign_in = parse_json(request, body, SessionIn)
    token, record = service.open_session(node, message=sign_in.message, signature=sign_in.signature)
    return SessionView(token=token, patient=record.patient, expires_at=record.expires_at)


@router.delete("/session", status_code=204, responses=responses(401, 403))
def close_session(request: Request, node: NodeDep, caller: CallerDep) -> None:
    if caller.kind != "patient":
        raise Forbidden("only patient sessions can be closed")
    service.close_session(node, request.headers["authorization"][7:].strip())
