"""What a patient's portal signs for a hospital (a link to its number, a refusal of its request), and what
a hospital's system sends (a link, a consent request), as JSON for the routes."""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
from eth_account.signers.local import LocalAccount
from medledger_crypto import ConsentRequestRefusal, PatientNumberLink, sign_typed

from tests.utils.consents import signature_json

#: an ID card number of the right form (18 characters, the last may be X); nobody's
ID_CARD = "44030019900101123X"


def link_statement(
    patient: LocalAccount,
    *,
    hospital: str,
    mrn: str,
    chain_id: int,
    contract: str,
    linked: bool = True,
    issued_at: int | None = None,
    lasts_s: int = 600,
    signer: LocalAccount | None = None,
) -> dict[str, Any]:
    """A ``PatientNumberLink`` statement signed by the patient (or ``signer``), as the QR code carries it."""
    message = PatientNumberLink(
        patient=patient.address,
        hospital=hospital,
        mrn=mrn if linked else "",
        linked=linked,
        issued_at=issued_at if issued_at is not None else time.time_ns() // 1_000_000,
        deadline=int(time.time()) + lasts_s,
    )
    signature = sign_typed(signer or patient, message.document(chain_id=chain_id, contract=contract))
    return {
        "patient": message.patient,
        "hospital": message.hospital,
        "mrn": message.mrn,
        "linked": message.linked,
        "issued_at": message.issued_at,
        "deadline": message.deadline,
        "signature": signature_json(signature),
    }


def fresh_mrn() -> str:
    return f"MRN-{secrets.token_hex(4).upper()}"


def refusal(patient: LocalAccount, *, requester: str, request_id: str, chain_id: int, contract: str) -> dict[str, Any]:
    """The patient's signed ``ConsentRequestRefusal`` of one request."""
    message = ConsentRequestRefusal(
        patient=patient.address,
        requester=requester,
        request_id=bytes.fromhex(request_id),
        deadline=int(time.time()) + 600,
    )
    signature = sign_typed(patient, message.document(chain_id=chain_id, contract=contract))
    return {
        "patient": patient.address,
        "requester": requester,
        "deadline": message.deadline,
        "signature": signature_json(signature),
    }


def request_body(patient: str, **overrides: Any) -> dict[str, Any]:
    """A consent request for the patient's labs, for treatment, for 30 days."""
    return {
        "patient": patient,
        "purposes": ["treatment"],
        "categories": ["labs"],
        "access_days": 30,
        "reason": "Referral from the community health centre: we need the recent lab results.",
        "raised_by": "dr-wang",
        **overrides,
    }


def raise_request(client: httpx.Client, patient: str, **overrides: Any) -> dict[str, Any]:
    response = client.post("/v1/consent-requests", json=request_body(patient, **overrides))
    assert response.status_code == 201, response.text
    return response.json()
