"""Every role x every endpoint x own/other patient -> the expected status.

Roles: this node's own hospital system (local), another member without consent (remote), the
auditor, the record's patient (own), another patient (other) and nobody (anonymous).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

import httpx
import pytest
from eth_account import Account
from medledger_crypto import ConsentMessage, ConsentRevocation, DelegateChange, SharingRestriction, sign_typed

from ledger_api.apidocs.document import api_routes, declared_rule
from ledger_api.auth import policy
from ledger_api.chain.types import DelegateScope
from ledger_api.consents.wire import grant_body
from ledger_api.core import headers as header_names
from ledger_api.records.legal_orders import countersign_document
from ledger_api.records.models import ErasureOrderPublic
from tests.api.conftest import World
from tests.utils.consents import grant_message
from tests.utils.enrolment import ID_CARD, fresh_mrn, link_statement, raise_request, refusal, request_body
from tests.utils.record_requests import signed_record_request
from tests.utils.records import PAST_RETENTION, grant, upload

ROLES = ("local", "remote", "auditor", "own", "other", "anonymous")


def _client(world: World, role: str) -> httpx.Client:
    node = world.node
    return {
        "local": lambda: node.member_client(world.a.account),
        "remote": lambda: node.member_client(world.b.account),
        "auditor": lambda: node.member_client(world.ids.auditor.account),
        "own": lambda: node.patient_client(world.patient),
        "other": lambda: node.patient_client(world.other_patient),
        "anonymous": node.anonymous,
    }[role]()


def _upload_params(world: World) -> dict:
    return {"patient": world.patient.address, "category": "labs", "media_type": "text/plain"}


def _sign(world: World, message: ConsentMessage) -> dict:
    document = message.document(chain_id=world.node.node.chain_id, contract=world.manifest.address("ConsentRegistry"))
    v, r, s = sign_typed(world.patient, document)
    return {"v": v, "r": r.hex(), "s": s.hex()}


def _signed_grant(world: World) -> dict:
    now = int(time.time())
    nonce = world.chain_as(world.patient).consents.nonce(world.patient.address)
    message = grant_message(world.patient.address, world.b.address, nonce=nonce, deadline=now + 600)
    return {**grant_body(message, (0, b"", b"")), "signature": _sign(world, message)}


def _signed_revocation(world: World) -> dict:
    consent_id = grant(world, world.b.address)
    now = int(time.time())
    nonce = world.chain_as(world.patient).consents.nonce(world.patient.address)
    message = ConsentRevocation(patient=world.patient.address, consent_id=consent_id, nonce=nonce, deadline=now + 600)
    return {"consent_id": str(consent_id), "nonce": nonce, "deadline": now + 600, "signature": _sign(world, message)}


def _signed_delegation(world: World) -> dict:
    """A real change each time: the stranger alternates between managing and viewing."""
    now = int(time.time())
    consents = world.chain_as(world.patient).consents
    nonce = consents.nonce(world.patient.address)
    standing = consents.delegation(world.patient.address, world.stranger.address)
    scope = (
        DelegateScope.VIEW if standing is not None and standing.scope == DelegateScope.MANAGE else DelegateScope.MANAGE
    )
    message = DelegateChange(
        patient=world.patient.address,
        delegate=world.stranger.address,
        scope=int(scope),
        nonce=nonce,
        deadline=now + 600,
    )
    return {
        "patient": world.patient.address,
        "delegate": world.stranger.address,
        "scope": scope.label,
        "nonce": nonce,
        "deadline": now + 600,
        "signature": _sign(world, message),
    }


def _fresh() -> str:
    return Account.create().address


def _stale_signed(**fields: object) -> dict:
    """A signed body whose deadline has passed (the first check after the caller's role)."""
    return {**fields, "nonce": 0, "deadline": 1, "signature": "0x" + "11" * 65}


READER_KEY = {header_names.READER_KEY: base64.b64encode(bytes(range(1, 33))).decode()}


def _signed_record_request(world: World, record_id: str, **change: bool) -> dict:
    return signed_record_request(
        world.patient,
        world.patient.address,
        record_id,
        chain_id=world.node.node.chain_id,
        contract=world.manifest.address("ConsentRegistry"),
        **change,
    )


def _signed_sharing_restriction(world: World) -> dict:
    """The patient's signed change of their whole restriction: to the opposite of what the chain says now."""
    now = int(time.time())
    consents = world.chain_as(world.patient).consents
    restricted = not consents.is_restricted(world.patient.address)
    nonce = consents.nonce(world.patient.address)
    message = SharingRestriction(patient=world.patient.address, restricted=restricted, nonce=nonce, deadline=now + 600)
    return {"restricted": restricted, "nonce": nonce, "deadline": now + 600, "signature": _sign(world, message)}


def _order(world: World, record_id: str) -> int:
    """A legal erasure order for the record, filed by node A's system: its id."""
    with world.node.member_client(world.a.account) as client:
        response = client.post(f"/v1/records/{record_id}/erasure-orders", json=ORDER)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _auditor_approval(world: World, order_id: int) -> dict:
    """The auditor's signed approval of the order (EIP-712 ``LegalErasure``, the auditor's own key)."""
    with world.node.member_client(world.a.account) as client:
        order = ErasureOrderPublic.model_validate(client.get(f"/v1/erasure-orders/{order_id}").json())
    document = countersign_document(
        order, chain_id=world.node.node.chain_id, contract=world.manifest.address("ConsentRegistry")
    )
    v, r, s = sign_typed(world.ids.auditor.account, document)
    return {"signature": {"v": v, "r": r.hex(), "s": s.hex()}}


ORDER = {
    "reference": "(2026) 粤0306民初1234号",
    "authority": "宝安区人民法院",
    "issued_on": "2026-11-02",
    "filed_by": "clerk-wang",
}


def _relayed(world: World) -> int:
    """A grant of the patient's, relayed by the patient: its relay id."""
    with world.node.patient_client(world.patient) as client:
        response = client.post("/v1/consents", json=_signed_grant(world))
    assert response.status_code == 202, response.text
    return response.json()["id"]


def _subscription(world: World) -> str:
    """A webhook subscription of the patient's: its id."""
    with world.node.patient_client(world.patient) as client:
        response = client.post(
            "/v1/subscriptions",
            json={"patient": world.patient.address, "events": ["access"], "url": "http://127.0.0.1:9/hook"},
        )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _domain(world: World) -> dict:
    return {"chain_id": world.node.node.chain_id, "contract": world.manifest.address("ConsentRegistry")}


def _link_statement(world: World, *, linked: bool = True) -> dict:
    """The patient's signed link to a fresh number at node A (or, ``linked`` false, its removal)."""
    return link_statement(world.patient, hospital=world.a.address, mrn=fresh_mrn(), linked=linked, **_domain(world))


def _linked(world: World) -> None:
    with world.node.member_client(world.a.account) as client:
        response = client.post("/v1/patient-links", json={"statement": _link_statement(world)})
    assert response.status_code == 200, response.text


def _open_request(world: World) -> str:
    """An open consent request of node A's for the patient (one already open, or a new one)."""
    with world.node.member_client(world.a.account) as client:
        waiting = client.get("/v1/consent-requests", params={"state": "requested"}).json()
        return waiting[0]["id"] if waiting else raise_request(client, world.patient.address)["id"]


def _refusal(world: World) -> dict:
    return refusal(world.patient, requester=world.a.address, request_id=_open_request(world), **_domain(world))


Request = Callable[[World, httpx.Client, str], httpx.Response]
CASES: dict[str, tuple[Request, dict[str, int]]] = {
    "GET /v1/patients/{patient}/records/{record_id}/content": (
        lambda w, c, r: c.get(f"/v1/patients/{w.patient.address}/records/{r}/content", headers=READER_KEY),
        {"local": 403, "remote": 403, "auditor": 403, "own": 200, "other": 403, "anonymous": 401},
    ),
    "POST /v1/records/{record_id}/restriction": (
        lambda w, c, r: c.post(f"/v1/records/{r}/restriction", json=_signed_record_request(w, r, restricted=True)),
        {"local": 200, "remote": 200, "auditor": 403, "own": 200, "other": 403, "anonymous": 401},
    ),
    "POST /v1/records/{record_id}/hiding": (
        lambda w, c, r: c.post(f"/v1/records/{r}/hiding", json=_signed_record_request(w, r, hidden=True)),
        {"local": 200, "remote": 200, "auditor": 403, "own": 200, "other": 403, "anonymous": 401},
    ),
    "POST /v1/patients/{patient}/restriction": (
        lambda w, c, r: c.post(f"/v1/patients/{w.patient.address}/restriction", json=_signed_sharing_restriction(w)),
        {"local": 202, "remote": 202, "auditor": 403, "own": 202, "other": 403, "anonymous": 401},
    ),
    "GET /v1/patients/{patient}/restriction": (
        lambda w, c, r: c.get(f"/v1/patients/{w.patient.address}/restriction"),
        {"local": 200, "remote": 200, "auditor": 200, "own": 200, "other": 403, "anonymous": 401},
    ),
    "POST /v1/records/{record_id}/erasure-orders": (
        lambda w, c, r: c.post(f"/v1/records/{r}/erasure-orders", json=ORDER),
        {"local": 201, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401},
    ),
    "GET /v1/records/{record_id}/erasure-orders": (
        lambda w, c, r: c.get(f"/v1/records/{r}/erasure-orders"),
        {"local": 200, "remote": 403, "auditor": 200, "own": 403, "other": 403, "anonymous": 401},
    ),
    "GET /v1/erasure-orders": (
        lambda w, c, r: c.get("/v1/erasure-orders", params={"state": "pending"}),
        {"local": 200, "remote": 403, "auditor": 200, "own": 403, "other": 403, "anonymous": 401},
    ),
    "GET /v1/erasure-orders/{order_id}": (
        lambda w, c, r: c.get(f"/v1/erasure-orders/{_order(w, r)}"),
        {"local": 200, "remote": 403, "auditor": 200, "own": 403, "other": 403, "anonymous": 401},
    ),
    "POST /v1/erasure-orders/{order_id}/countersignature": (
        # an officer id the node does not list: the caller's role passes, the signer does not
        lambda w, c, r: c.post(
            f"/v1/erasure-orders/{_order(w, r)}/countersignature",
            json={"officer": "officer-unknown", "signature": "0x" + "11" * 64 + "1b"},
        ),
        {"local": 403, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401},
    ),
    "POST /v1/erasure-orders/{order_id}/approval": (
        lambda w, c, r: c.post(f"/v1/erasure-orders/{(o := _order(w, r))}/approval", json=_auditor_approval(w, o)),
        {"local": 403, "remote": 403, "auditor": 200, "own": 403, "other": 403, "anonymous": 401},
    ),
    "POST /v1/records": (
        lambda w, c, r: c.post(
            "/v1/records", content=b"x", params=_upload_params(w), headers={"content-type": "application/octet-stream"}
        ),
        {"local": 201, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401},
    ),
    "GET /v1/records/{record_id}": (
        lambda w, c, r: c.get(f"/v1/records/{r}"),
        {"local": 200, "remote": 403, "auditor": 403, "own": 200, "other": 403, "anonymous": 401},
    ),
    "GET /v1/records/{record_id}/content": (
        lambda w, c, r: c.get(f"/v1/records/{r}/content", params={"purpose": "treatment", "clinician": "dr-1"}),
        {"local": 200, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401},
    ),
    "GET /v1/patients/{patient}/records": (
        lambda w, c, r: c.get(f"/v1/patients/{w.patient.address}/records"),
        {"local": 200, "remote": 200, "auditor": 403, "own": 200, "other": 403, "anonymous": 401},
    ),
    "DELETE /v1/records/{record_id}": (
        lambda w, c, r: c.delete(f"/v1/records/{r}"),
        {"local": 200, "remote": 403, "auditor": 403, "own": 200, "other": 403, "anonymous": 401},
    ),
    "GET /v1/patients/{patient}/consents": (
        lambda w, c, r: c.get(f"/v1/patients/{w.patient.address}/consents"),
        {"local": 200, "remote": 200, "auditor": 200, "own": 200, "other": 403, "anonymous": 401},
    ),
    "GET /v1/permissions": (
        lambda w, c, r: c.get(
            "/v1/permissions",
            params={"patient": w.patient.address, "requester": w.b.address, "category": "labs", "purpose": "treatment"},
        ),
        {"local": 200, "remote": 200, "auditor": 200, "own": 403, "other": 403, "anonymous": 401},
    ),
    "GET /v1/patients/{patient}/access-log": (
        lambda w, c, r: c.get(f"/v1/patients/{w.patient.address}/access-log"),
        {"local": 200, "remote": 403, "auditor": 200, "own": 200, "other": 403, "anonymous": 401},
    ),
    "GET /v1/access-log": (
        lambda w, c, r: c.get("/v1/access-log"),
        {"local": 200, "remote": 403, "auditor": 200, "own": 403, "other": 403, "anonymous": 401},
    ),
    "GET /v1/access-log/export": (
        lambda w, c, r: c.get("/v1/access-log/export"),
        {"local": 200, "remote": 403, "auditor": 200, "own": 403, "other": 403, "anonymous": 401},
    ),
    "GET /v1/audit/records": (
        lambda w, c, r: c.get("/v1/audit/records"),
        {"local": 200, "remote": 403, "auditor": 200, "own": 403, "other": 403, "anonymous": 401},
    ),
    "GET /v1/audit/report": (
        lambda w, c, r: c.get("/v1/audit/report"),
        {"local": 200, "remote": 403, "auditor": 200, "own": 403, "other": 403, "anonymous": 401},
    ),
    "GET /v1/audit/fhir/AuditEvent": (
        lambda w, c, r: c.get("/v1/audit/fhir/AuditEvent"),
        {"local": 200, "remote": 403, "auditor": 200, "own": 403, "other": 403, "anonymous": 401},
    ),
    "GET /v1/audit/fhir/Consent": (
        lambda w, c, r: c.get("/v1/audit/fhir/Consent", params={"patient": w.patient.address}),
        {"local": 200, "remote": 200, "auditor": 200, "own": 200, "other": 403, "anonymous": 401},
    ),
    "POST /v1/subscriptions": (
        lambda w, c, r: c.post(
            "/v1/subscriptions",
            json={"patient": w.patient.address, "events": ["break_glass"], "url": "http://127.0.0.1:9/hook"},
        ),
        # this node's own system may subscribe, but to grants and request outcomes naming it, not break-glass
        {"local": 422, "remote": 403, "auditor": 201, "own": 201, "other": 403, "anonymous": 401},
    ),
    "GET /v1/subscriptions": (
        lambda w, c, r: c.get("/v1/subscriptions"),
        {"local": 200, "remote": 200, "auditor": 200, "own": 200, "other": 200, "anonymous": 401},
    ),
    "GET /v1/patients/{patient}/notifications": (
        lambda w, c, r: c.get(f"/v1/patients/{w.patient.address}/notifications"),
        {"local": 200, "remote": 403, "auditor": 403, "own": 200, "other": 403, "anonymous": 401},
    ),
    "GET /v1/consortium/members": (
        lambda w, c, r: c.get("/v1/consortium/members"),
        {"local": 200, "remote": 200, "auditor": 200, "own": 200, "other": 200, "anonymous": 401},
    ),
    "GET /v1/governance/proposals": (
        lambda w, c, r: c.get("/v1/governance/proposals"),
        {"local": 200, "remote": 200, "auditor": 200, "own": 200, "other": 200, "anonymous": 401},
    ),
    "POST /v1/emergency": (
        lambda w, c, r: c.post(
            "/v1/emergency",
            json={
                "patient": w.patient.address,
                "reason_code": 1,
                "clinician": "dr-1",
                "justification": "unconscious, no ID",
            },
        ),
        {"local": 201, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401},
    ),
    "POST /v1/governance/proposals": (
        lambda w, c, r: c.post("/v1/governance/proposals", json={"kind": "suspend_member", "target": w.c.address}),
        {"local": 201, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401},
    ),
    "POST /v1/records/{record_id}/versions": (
        lambda w, c, r: c.post(
            f"/v1/records/{r}/versions", content=b"v2", headers={"content-type": "application/octet-stream"}
        ),
        {"local": 201, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401},
    ),
    "GET /v1/patients/{patient}/signing-domain": (
        lambda w, c, r: c.get(f"/v1/patients/{w.patient.address}/signing-domain"),
        {"local": 200, "remote": 200, "auditor": 200, "own": 200, "other": 200, "anonymous": 401},
    ),
    "POST /v1/consents": (
        lambda w, c, r: c.post("/v1/consents", json=_signed_grant(w)),
        {"local": 202, "remote": 202, "auditor": 403, "own": 202, "other": 403, "anonymous": 401},
    ),
    "POST /v1/consents/revocations": (
        lambda w, c, r: c.post("/v1/consents/revocations", json=_signed_revocation(w)),
        {"local": 202, "remote": 202, "auditor": 403, "own": 202, "other": 403, "anonymous": 401},
    ),
    "POST /v1/delegates": (
        lambda w, c, r: c.post("/v1/delegates", json=_signed_delegation(w)),
        {"local": 202, "remote": 202, "auditor": 403, "own": 202, "other": 403, "anonymous": 401},
    ),
    "GET /v1/relays/{item_id}": (
        lambda w, c, r: c.get(f"/v1/relays/{_relayed(w)}"),
        {"local": 200, "remote": 200, "auditor": 200, "own": 200, "other": 404, "anonymous": 401},
    ),
    "GET /v1/patients/{patient}/account-history": (
        lambda w, c, r: c.get(f"/v1/patients/{w.patient.address}/account-history"),
        {"local": 403, "remote": 403, "auditor": 403, "own": 200, "other": 403, "anonymous": 401},
    ),
    "POST /v1/consents/confirmations": (  # past its deadline: refused after the caller's role passed
        lambda w, c, r: c.post("/v1/consents/confirmations", json=_stale_signed(consent_id=str(grant(w, w.b.address)))),
        {"local": 422, "remote": 422, "auditor": 403, "own": 422, "other": 403, "anonymous": 401},
    ),
    "GET /v1/delegations": (
        lambda w, c, r: c.get("/v1/delegations"),
        {"local": 200, "remote": 200, "auditor": 200, "own": 200, "other": 200, "anonymous": 401},
    ),
    "GET /v1/patients/{patient}/succession": (
        lambda w, c, r: c.get(f"/v1/patients/{w.patient.address}/succession"),
        {"local": 200, "remote": 403, "auditor": 403, "own": 200, "other": 403, "anonymous": 401},
    ),
    "POST /v1/patients/{patient}/key-rotation": (  # past its deadline: refused after the caller's role passed
        lambda w, c, r: c.post(f"/v1/patients/{w.patient.address}/key-rotation", json=_stale_signed(new_key=_fresh())),
        {"local": 422, "remote": 422, "auditor": 403, "own": 422, "other": 403, "anonymous": 401},
    ),
    "POST /v1/patients/{patient}/recovery/approvals": (  # the patient is not enrolled at A: refused after the role
        lambda w, c, r: c.post(
            f"/v1/patients/{w.patient.address}/recovery/approvals",
            json={"new_key": _fresh(), "identity_checked_by": "desk-1"},
        ),
        {"local": 409, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401},
    ),
    "POST /v1/patients/{patient}/recovery/guardian-approvals": (
        lambda w, c, r: c.post(
            f"/v1/patients/{w.patient.address}/recovery/guardian-approvals",
            json=_stale_signed(new_key=_fresh(), round=1),
        ),
        {"local": 422, "remote": 422, "auditor": 403, "own": 422, "other": 403, "anonymous": 401},
    ),
    "POST /v1/patients/{patient}/recovery/cancellation": (
        lambda w, c, r: c.post(
            f"/v1/patients/{w.patient.address}/recovery/cancellation", json=_stale_signed(new_key=_fresh())
        ),
        {"local": 422, "remote": 422, "auditor": 403, "own": 422, "other": 403, "anonymous": 401},
    ),
    "POST /v1/patients/{patient}/recovery/completion": (  # none under way: only those who may see it learn so
        lambda w, c, r: c.post(f"/v1/patients/{w.patient.address}/recovery/completion"),
        {"local": 409, "remote": 409, "auditor": 404, "own": 409, "other": 404, "anonymous": 401},
    ),
    "GET /v1/recoveries/mine": (
        lambda w, c, r: c.get("/v1/recoveries/mine"),
        {"local": 404, "remote": 404, "auditor": 404, "own": 404, "other": 404, "anonymous": 401},
    ),
    "POST /v1/minors": (
        lambda w, c, r: c.post(
            "/v1/minors",
            json={
                "account": _fresh(),
                "guardian": w.other_patient.address,
                "date_of_birth": "2020-02-02",
                "identity_checked_by": "desk-1",
            },
        ),
        {"local": 201, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401},
    ),
    "POST /v1/minors/{patient}/claim": (  # the patient is not a minor: refused after the caller's role passed
        lambda w, c, r: c.post(
            f"/v1/minors/{w.patient.address}/claim",
            json={
                "key": _fresh(),
                "guardian_scope": "view",
                "deadline": int(time.time()) + 600,
                "signature": "0x" + "11" * 65,
                "identity_checked_by": "desk-1",
            },
        ),
        {"local": 409, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401},
    ),
    "GET /v1/patients/{patient}/delegates": (
        lambda w, c, r: c.get(f"/v1/patients/{w.patient.address}/delegates"),
        {"local": 200, "remote": 403, "auditor": 403, "own": 200, "other": 403, "anonymous": 401},
    ),
    "GET /v1/patients/{patient}/overview/records": (
        lambda w, c, r: c.get(f"/v1/patients/{w.patient.address}/overview/records", params={"deadline_ms": 500}),
        {"local": 403, "remote": 403, "auditor": 403, "own": 200, "other": 403, "anonymous": 401},
    ),
    "GET /v1/patients/{patient}/overview/access-log": (
        lambda w, c, r: c.get(f"/v1/patients/{w.patient.address}/overview/access-log", params={"deadline_ms": 500}),
        {"local": 403, "remote": 403, "auditor": 403, "own": 200, "other": 403, "anonymous": 401},
    ),
    "DELETE /v1/auth/session": (
        lambda w, c, r: c.delete("/v1/auth/session"),
        {"local": 403, "remote": 403, "auditor": 403, "own": 204, "other": 204, "anonymous": 401},
    ),
    # only another member (the one a patient signed in at) ends a proof; junk is refused after authorisation
    "POST /v1/auth/proofs/ended": (
        lambda w, c, r: c.post("/v1/auth/proofs/ended", json={"proof": "not-a-proof"}),
        {"local": 403, "remote": 422, "auditor": 403, "own": 403, "other": 403, "anonymous": 401},
    ),
    # the node's own system only; a vote on / execution of a proposal that does not exist passes
    # authorisation and then is refused by the chain (409), which tells the local system apart from the rest
    "POST /v1/governance/proposals/{proposal_id}/votes": (
        lambda w, c, r: c.post("/v1/governance/proposals/999999/votes", json={"support": True}),
        {"local": 409, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401},
    ),
    "POST /v1/governance/proposals/{proposal_id}/execution": (
        lambda w, c, r: c.post("/v1/governance/proposals/999999/execution"),
        {"local": 409, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401},
    ),
    "GET /v1/emergency/{break_glass_id}": (
        lambda w, c, r: c.get("/v1/emergency/999999"),
        {"local": 404, "remote": 403, "auditor": 404, "own": 403, "other": 403, "anonymous": 401},
    ),
    "GET /v1/consortium/records/{record_id}": (
        # (this node is the custodian: after authorisation it says so, 422, and asks no peer)
        lambda w, c, r: c.get(
            f"/v1/consortium/records/{r}",
            params={"custodian": w.a.address, "purpose": "treatment", "clinician": "dr-1"},
        ),
        {"local": 422, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401},
    ),
    "GET /v1/consortium/patients/{patient}/records": (
        lambda w, c, r: c.get(f"/v1/consortium/patients/{w.patient.address}/records", params={"deadline_ms": 500}),
        {"local": 200, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401},
    ),
    # a handover to this node itself is refused after authorisation (422): nothing leaves in the test
    "POST /v1/custody/handovers": (
        lambda w, c, r: c.post("/v1/custody/handovers", json={"successor": w.a.address}),
        {"local": 422, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401},
    ),
    "GET /v1/custody/handovers/{handover_id}": (
        lambda w, c, r: c.get("/v1/custody/handovers/999999"),
        {"local": 404, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401},
    ),
    "POST /v1/custody/agreements": (
        lambda w, c, r: c.post(
            "/v1/custody/agreements", json={"predecessor": w.b.address, "max_records": 1, "max_bytes": 1000}
        ),
        {"local": 201, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401},
    ),
    "GET /v1/custody/agreements": (
        lambda w, c, r: c.get("/v1/custody/agreements"),
        {"local": 200, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401},
    ),
    "DELETE /v1/custody/agreements/{agreement_id}": (
        lambda w, c, r: c.delete("/v1/custody/agreements/999999"),
        {"local": 404, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401},
    ),
    # only the member the chain names as the record's custodian may push a version here
    "PUT /v1/custody/incoming/{record_id}/versions/{version}": (
        lambda w, c, r: (
            w.node.drain()
            or c.put(
                f"/v1/custody/incoming/{r}/versions/1",
                content=b"x",
                params={"media_type": "text/plain", "sealed_by": w.a.address},
                headers={
                    "content-type": "application/octet-stream",
                    header_names.WRAPPED_KEY: "A" * 32,
                    header_names.PATIENT: w.patient.address,
                    header_names.CATEGORY: "0",
                    header_names.SUBJECT_SALT: "0" * 64,
                },
            )
        ),
        {"local": 403, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401},
    ),
    "DELETE /v1/subscriptions/{subscription_id}": (
        lambda w, c, r: c.delete(f"/v1/subscriptions/{_subscription(w)}"),
        {"local": 404, "remote": 404, "auditor": 404, "own": 204, "other": 404, "anonymous": 401},
    ),
    "GET /v1/subscriptions/{subscription_id}/notifications": (
        lambda w, c, r: c.get(f"/v1/subscriptions/{_subscription(w)}/notifications"),
        {"local": 404, "remote": 404, "auditor": 404, "own": 200, "other": 404, "anonymous": 401},
    ),
    # enrolment: the hospital links; the patient offers a code (signed in there) and removes (anywhere)
    "POST /v1/patient-links": (
        lambda w, c, r: c.post("/v1/patient-links", json={"statement": _link_statement(w)}),
        {"local": 200, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401},
    ),
    "POST /v1/patient-links/offers": (
        lambda w, c, r: c.post("/v1/patient-links/offers", json=_link_statement(w)),
        {"local": 403, "remote": 403, "auditor": 403, "own": 201, "other": 403, "anonymous": 401},
    ),
    "POST /v1/patient-links/removals": (
        # another member passes the patient's signed removal on: the signature is the authority
        lambda w, c, r: (_linked(w), c.post("/v1/patient-links/removals", json=_link_statement(w, linked=False)))[1],
        {"local": 403, "remote": 200, "auditor": 403, "own": 200, "other": 403, "anonymous": 401},
    ),
    "POST /v1/patient-links/lookup": (
        lambda w, c, r: c.post("/v1/patient-links/lookup", json={"id_card_number": ID_CARD}),
        {"local": 404, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401},
    ),
    "GET /v1/patients/{patient}/links": (
        lambda w, c, r: c.get(f"/v1/patients/{w.patient.address}/links"),
        {"local": 200, "remote": 403, "auditor": 403, "own": 200, "other": 403, "anonymous": 401},
    ),
    "GET /v1/patients/{patient}/overview/links": (
        lambda w, c, r: c.get(f"/v1/patients/{w.patient.address}/overview/links"),
        {"local": 403, "remote": 403, "auditor": 403, "own": 200, "other": 403, "anonymous": 401},
    ),
    # consent requests: raised, listed and withdrawn by the hospital; seen and refused by the patient
    "POST /v1/consent-requests": (
        lambda w, c, r: c.post("/v1/consent-requests", json=request_body(w.patient.address)),
        {"local": 201, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401},
    ),
    "GET /v1/consent-requests": (
        lambda w, c, r: c.get("/v1/consent-requests"),
        {"local": 200, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401},
    ),
    "GET /v1/consent-requests/{request_id}": (
        lambda w, c, r: c.get(f"/v1/consent-requests/{_open_request(w)}"),
        {"local": 200, "remote": 403, "auditor": 403, "own": 200, "other": 404, "anonymous": 401},
    ),
    "GET /v1/consent-requests/{request_id}/fhir": (
        lambda w, c, r: c.get(f"/v1/consent-requests/{_open_request(w)}/fhir"),
        {"local": 200, "remote": 403, "auditor": 403, "own": 200, "other": 404, "anonymous": 401},
    ),
    "POST /v1/consent-requests/{request_id}/withdrawal": (
        lambda w, c, r: c.post(f"/v1/consent-requests/{_open_request(w)}/withdrawal"),
        {"local": 200, "remote": 403, "auditor": 403, "own": 403, "other": 403, "anonymous": 401},
    ),
    "POST /v1/consent-requests/{request_id}/refusal": (
        lambda w, c, r: (body := _refusal(w), c.post(f"/v1/consent-requests/{_open_request(w)}/refusal", json=body))[1],
        {"local": 403, "remote": 200, "auditor": 403, "own": 200, "other": 403, "anonymous": 401},
    ),
    "GET /v1/patients/{patient}/consent-requests": (
        lambda w, c, r: c.get(f"/v1/patients/{w.patient.address}/consent-requests"),
        {"local": 200, "remote": 403, "auditor": 403, "own": 200, "other": 403, "anonymous": 401},
    ),
    "GET /v1/patients/{patient}/overview/consent-requests": (
        lambda w, c, r: c.get(f"/v1/patients/{w.patient.address}/overview/consent-requests"),
        {"local": 403, "remote": 403, "auditor": 403, "own": 200, "other": 403, "anonymous": 401},
    ),
    "GET /v1/patients/{patient}/inbox": (
        lambda w, c, r: c.get(f"/v1/patients/{w.patient.address}/inbox"),
        {"local": 403, "remote": 403, "auditor": 403, "own": 200, "other": 403, "anonymous": 401},
    ),
    "POST /v1/patients/{patient}/inbox/seen": (
        lambda w, c, r: c.post(f"/v1/patients/{w.patient.address}/inbox/seen", json={}),
        {"local": 403, "remote": 403, "auditor": 403, "own": 200, "other": 403, "anonymous": 401},
    ),
}

#: operations anyone may call, and why
PUBLIC = {
    "POST /v1/auth/challenge": "a sign-in nonce: the start of signing in",
    "POST /v1/auth/session": "signing in: the signed message is the credential",
    "GET /healthz": "liveness probe for the orchestrator",
    "GET /readyz": "readiness probe; names the node's member account, which is public on chain",
    "GET /metrics": "Prometheus counters by route and status: no patient, record or account appears in them",
    "GET /v1/privacy-notice": "the consortium's privacy notice: shown to anyone before they consent",
    "GET /v1/privacy-notice/{version}": "an earlier privacy notice: the words behind consents signed under it",
}


@pytest.mark.parametrize("endpoint", list(CASES))
def test_authorization_matrix(world: World, endpoint: str) -> None:
    request, expected = CASES[endpoint]
    assert set(expected) == set(ROLES)
    observed = {}
    record_id = upload(world, **PAST_RETENTION).json()["id"]
    for index, role in enumerate(ROLES):
        if index and not endpoint.startswith("GET "):  # a fresh record for each role: a write may change it
            record_id = upload(world, **PAST_RETENTION).json()["id"]
        with _client(world, role) as client:
            observed[role] = request(world, client, record_id).status_code
        world.node.drain()  # a relay lands before the next role signs (a second one for a pending nonce is 409)
    assert observed == expected


def test_the_matrix_covers_every_operation_of_the_api(world: World) -> None:
    with world.node.anonymous() as client:
        schema = client.get("/openapi.json").json()
    operations = {f"{method.upper()} {path}" for path, item in schema["paths"].items() for method in item}
    assert operations - set(CASES) - set(PUBLIC) == set(), "operations without an authorisation case"
    assert set(CASES) - operations == set(), "cases for operations that no longer exist"
    with world.node.anonymous() as client:
        for operation in PUBLIC:
            method, path = operation.split(" ")
            assert client.request(method, path).status_code not in (401, 403), operation


def test_the_api_document_declares_the_security_the_matrix_observes(world: World) -> None:
    """What generated clients read: public operations say ``security: []``; every other operation names
    the signed-member scheme, and the patient session exactly where a patient may succeed."""
    with world.node.anonymous() as client:
        schema = client.get("/openapi.json").json()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            name = f"{method.upper()} {path}"
            schemes = [set(requirement) for requirement in operation["security"]]
            if name in PUBLIC:
                assert schemes == [], name
                continue
            member = {"memberSigner", "memberTimestamp", "memberNonce", "memberContentDigest", "memberSignature"}
            assert member in schemes, name
            patient_may = CASES[name][1]["own"] < 400 or CASES[name][1]["other"] < 400
            if patient_may:  # a patient succeeds only where the document says a patient session is accepted
                assert {"patientSession"} in schemes, name
            if {"patientSession"} not in schemes:  # ... and where it says not, a patient is refused outright
                assert CASES[name][1]["own"] == CASES[name][1]["other"] == 403, name


#: the matrix's roles as the policy names them (towards the patient of the case)
POLICY_ROLE: dict[str, policy.Role] = {
    "local": "local",
    "remote": "remote",
    "auditor": "auditor",
    "own": "patient",
    "other": "other-patient",
}


def test_every_operation_declares_a_rule_of_the_policy_and_no_role_outside_it_gets_through(world: World) -> None:
    """The same table as the node's: each operation's declared rule (``auth.policy``) is one of the
    policy's rules, and every role the rule does not name is refused in the matrix above (401, 403 or
    404): a rule that promised less than the route gives would show here."""
    declared = {
        f"{method} {route.path}": declared_rule(route)
        for route in api_routes(world.node.app.routes)
        for method in route.methods
    }
    for name, (_request, expected) in CASES.items():
        rule = declared[name]
        assert rule is not None and policy.RULES[rule.name] is rule, name
        for role, policy_role in POLICY_ROLE.items():
            if policy_role not in rule.allows:
                assert expected[role] in (401, 403, 404), (name, role, rule.name)
            else:
                assert expected[role] != 401, (name, role, rule.name)
    assert {rule.name for rule in declared.values() if rule is not None} <= set(policy.RULES)
