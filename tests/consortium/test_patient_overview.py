"""One sign-in, the whole consortium: a patient signed in at B sees their records and history at A too.

B's node forwards the patient's own signed sign-in message (the consortium-view proof) to A; A
answers only for that patient, only to the member the patient signed in at, only to read.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from sqlmodel import select

from ledger_api.auth.models import EndedProof
from ledger_api.auth.patient_proof import CONSORTIUM_VIEW, HEADER
from ledger_api.auth.service import session_proof
from ledger_api.auth.siwe import build_message
from ledger_api.chain.deployment import Consortium
from ledger_api.chain.transactions import TransactionSender
from ledger_api.core.db import session_scope
from ledger_api.vocabulary import Category, bitset
from tests.consortium.conftest import TwoNodes
from tests.utils.actors import manages, removal, views
from tests.utils.records import upload_to

VIEW = (CONSORTIUM_VIEW,)


def _upload(world: TwoNodes, slug: str, body: bytes, category: Category, patient: str | None = None) -> str:
    node = world.a if slug == "a" else world.b
    response = upload_to(node, world.ids.members[slug].account, patient or world.patient.address, body, category)
    assert response.status_code == 201, response.text
    node.drain()  # anchor it (the tests run each node's outbox by hand)
    return response.json()["id"]


def _read_via_b(world: TwoNodes, record_id: str, clinician: str = "dr-li-22") -> int:
    with world.b.member_client(world.ids.members["b"].account) as client:
        return client.get(
            f"/v1/consortium/records/{record_id}",
            params={"custodian": world.ids.members["a"].address, "purpose": "treatment", "clinician": clinician},
        ).status_code


def test_one_sign_in_shows_records_and_history_from_every_member(two_nodes: TwoNodes) -> None:
    world = two_nodes
    a, b, c = (world.ids.members[s].address for s in ("a", "b", "c"))
    labs = _upload(world, "a", b"HbA1c 6.1 %", Category.LABS)
    notes = _upload(world, "a", b"psychiatric assessment", Category.MENTAL_HEALTH)
    _upload(world, "b", b"Hepatitis B dose 3", Category.IMMUNIZATIONS)
    consent_id = world.grant_b(bitset([Category.LABS]))
    assert _read_via_b(world, labs) == 200
    # break-glass for the record the consent does not cover; the auditor then reviews it on chain
    with world.b.member_client(world.ids.members["b"].account) as client:
        declared = client.post(
            "/v1/emergency",
            json={
                "patient": world.patient.address,
                "reason_code": 1,
                "justification": "unconscious, no relatives reachable",
                "clinician": "dr-er-7",
            },
        )
    assert declared.status_code == 201, declared.text
    assert _read_via_b(world, notes, clinician="dr-er-7") == 200

    with world.b.patient_client(world.patient, resources=VIEW) as patient:
        records = patient.get(f"/v1/patients/{world.patient.address}/overview/records", params={"deadline_ms": 2000})
        history = patient.get(f"/v1/patients/{world.patient.address}/overview/access-log")
    assert records.status_code == 200, records.text
    outcome = {m["member"]: m["status"] for m in records.json()["members"]}
    assert outcome == {a: "returned", b: "returned", c: "unreachable"}  # C is registered, its node is down
    held = {(r["custodian"], r["category"]) for r in records.json()["records"]}
    assert held == {(a, int(Category.LABS)), (a, int(Category.MENTAL_HEALTH)), (b, int(Category.IMMUNIZATIONS))}
    assert {r["custodian_name"] for r in records.json()["records"]} == {
        "Dapeng New District People's Hospital",
        "Kuichong Community Health Center",
    }
    assert history.status_code == 200, history.text
    timeline = history.json()["timeline"]
    assert [(e["logged_by"], e["requester"], e["basis"], e["clinician"]) for e in timeline] == [
        (a, b, "break_glass", "dr-er-7"),
        (a, b, "consent", "dr-li-22"),
    ]  # newest first
    assert timeline[1]["authorization"] == f"{consent_id:064x}"
    assert timeline[0]["review"] == "pending" and timeline[0]["requester_name"] == "Kuichong Community Health Center"

    auditor = Consortium(
        world.backend.w3, world.a.node.manifest, TransactionSender(world.backend.w3, world.ids.auditor.account)
    )
    auditor.consents.review_break_glass(declared.json()["break_glass_id"], True, hashlib.sha256(b"ok").digest())
    with world.b.patient_client(world.patient, resources=VIEW) as patient:
        again = patient.get(f"/v1/patients/{world.patient.address}/overview/access-log").json()["timeline"]
    assert again[0]["review"] == "justified"


def test_a_sign_in_without_the_consortium_view_shows_this_node_only(two_nodes: TwoNodes) -> None:
    world = two_nodes
    _upload(world, "a", b"HbA1c 6.1 %", Category.LABS)
    _upload(world, "b", b"Hepatitis B dose 3", Category.IMMUNIZATIONS)
    with world.b.patient_client(world.patient) as patient:
        view = patient.get(f"/v1/patients/{world.patient.address}/overview/records").json()
    assert [r["category"] for r in view["records"]] == [int(Category.IMMUNIZATIONS)]
    a = world.ids.members["a"].address
    (at_a,) = [m for m in view["members"] if m["member"] == a]
    assert at_a["status"] == "denied" and "consortium-wide" in at_a["detail"]


def test_the_overview_is_the_patients_own(two_nodes: TwoNodes) -> None:
    world = two_nodes
    other = Account.create()
    with world.b.patient_client(other, resources=VIEW) as stranger:
        assert stranger.get(f"/v1/patients/{world.patient.address}/overview/records").status_code == 403
        assert stranger.get(f"/v1/patients/{world.patient.address}/overview/access-log").status_code == 403
    with world.b.member_client(world.ids.members["b"].account) as hospital:
        assert hospital.get(f"/v1/patients/{world.patient.address}/overview/records").status_code == 403


def _proof(
    world: TwoNodes,
    *,
    uri: str | None = None,
    resources: tuple[str, ...] = VIEW,
    chain_id: int | None = None,
    expires_in: int = 600,
    signer=None,
    address: str | None = None,
    issued_ago: int = 30,
) -> str:
    moment = datetime.now(UTC)
    message = build_message(
        domain="127.0.0.1",
        address=address or world.patient.address,
        uri=uri or world.b.url,
        chain_id=chain_id or world.a.node.chain_id,
        nonce="abcdef0123456789",
        issued_at=moment - timedelta(seconds=issued_ago),
        expiration=moment + timedelta(seconds=expires_in),
        resources=resources,
    )
    signature = (signer or world.patient).sign_message(encode_defunct(text=message)).signature.hex()
    return base64.urlsafe_b64encode(json.dumps({"message": message, "signature": signature}).encode()).decode()


def _at_a_as(world: TwoNodes, slug: str, proof: str, method: str = "GET", path: str | None = None):
    node = world.a
    with node.member_client(world.ids.members[slug].account) as client:
        if method == "GET":
            return client.get(path or f"/v1/patients/{world.patient.address}/records", headers={HEADER: proof})
        return client.post(
            path or "/v1/subscriptions",
            json={"url": "http://127.0.0.1:9/hook", "events": ["access"]},
            headers={HEADER: proof},
        )


def test_a_member_answers_for_the_patient_on_a_valid_proof(two_nodes: TwoNodes) -> None:
    world = two_nodes
    _upload(world, "a", b"psychiatric assessment", Category.MENTAL_HEALTH)
    # without a proof B sees nothing of it (no consent); with the patient's proof, the patient's own listing
    with world.a.member_client(world.ids.members["b"].account) as client:
        assert client.get(f"/v1/patients/{world.patient.address}/records").json() == []
    answered = _at_a_as(world, "b", _proof(world))
    assert answered.status_code == 200 and [r["category"] for r in answered.json()] == [int(Category.MENTAL_HEALTH)]


@pytest.mark.parametrize(
    ("case", "status", "words"),
    [
        ("signed in at another member", 403, "another member"),
        ("no consortium-view resource", 403, "did not allow"),
        ("expired", 401, "expired"),
        ("asking to last ten years", 401, "last at most 30 minutes"),
        ("issued an hour ago", 401, "last at most 30 minutes"),
        ("other chain", 401, "chain"),
        ("signed by someone else", 401, "not signed by"),
        ("garbage", 401, "malformed"),
        ("writes", 403, "reading only"),
        ("presented by the patient's own node to itself", 403, "another member's node"),
        ("another patient's records", 403, "patients see only"),
    ],
)
def test_a_member_refuses_a_proof_that_does_not_hold(two_nodes: TwoNodes, case: str, status: int, words: str) -> None:
    world = two_nodes
    presenter, method, path = "b", "GET", None
    proof = {
        "signed in at another member": lambda: _proof(world, uri=world.a.url),
        "no consortium-view resource": lambda: _proof(world, resources=()),
        "expired": lambda: _proof(world, expires_in=-1),
        "asking to last ten years": lambda: _proof(world, expires_in=10 * 365 * 86_400),
        "issued an hour ago": lambda: _proof(world, issued_ago=3600, expires_in=60),
        "other chain": lambda: _proof(world, chain_id=1),
        "signed by someone else": lambda: _proof(world, signer=Account.create()),
        "garbage": lambda: "bm90IGEgcHJvb2Y=",
        "writes": lambda: _proof(world),
        "presented by the patient's own node to itself": lambda: _proof(world, uri=world.a.url),
        "another patient's records": lambda: _proof(world),
    }[case]()
    if case == "writes":
        method = "POST"
    if case == "presented by the patient's own node to itself":
        presenter = "a"
    if case == "another patient's records":
        path = f"/v1/patients/{Account.create().address}/records"
    response = _at_a_as(world, presenter, proof, method=method, path=path)
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]


def test_delegates_are_listed_from_the_chain(two_nodes: TwoNodes) -> None:
    world = two_nodes
    guardian, second = Account.create(), Account.create()
    consents = Consortium(
        world.backend.w3, world.a.node.manifest, TransactionSender(world.backend.w3, world.patient)
    ).consents
    consents.set_delegate(views(guardian.address, excluded_categories=1 << Category.MENTAL_HEALTH))
    consents.set_delegate(manages(second.address))
    consents.set_delegate(removal(second.address))
    with world.a.patient_client(world.patient) as patient:
        listed = patient.get(f"/v1/patients/{world.patient.address}/delegates")
    assert listed.status_code == 200
    assert listed.json()["delegates"] == [
        {"delegate": guardian.address, "scope": "view", "valid_until": 0, "excluded_categories": 16}
    ]
    with world.a.patient_client(guardian) as delegate:  # a guardian sees the patient's guardians too
        assert delegate.get(f"/v1/patients/{world.patient.address}/delegates").status_code == 200
    with world.a.patient_client(second) as removed:
        assert removed.get(f"/v1/patients/{world.patient.address}/delegates").status_code == 403


def test_a_proof_ends_at_sign_out_at_every_member(two_nodes: TwoNodes) -> None:
    """The attack: after the patient signed out at B, B's node kept reading the patient's data at A."""
    world = two_nodes
    _upload(world, "a", b"psychiatric assessment", Category.MENTAL_HEALTH)
    patient = world.b.patient_client(world.patient, resources=VIEW)
    token = patient.headers["authorization"][7:]
    proof = session_proof(world.b.node, token)
    assert proof is not None
    assert _at_a_as(world, "b", proof).status_code == 200
    with patient:
        assert patient.delete("/v1/auth/session").status_code == 204
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with session_scope(world.a.node.engine) as session:
            if session.exec(select(EndedProof)).first() is not None:
                break
        time.sleep(0.05)
    refused = _at_a_as(world, "b", proof)
    assert refused.status_code == 401 and "signed out" in refused.json()["detail"]
    with world.a.member_client(world.ids.members["c"].account) as client:  # only the presenter ends a proof
        assert client.post("/v1/auth/proofs/ended", json={"proof": _proof(world)}).status_code == 403
    assert _at_a_as(world, "b", _proof(world)).status_code == 200  # a new sign-in's proof is not affected
