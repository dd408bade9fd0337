"""A patient moves to a new key without losing their records, consents or history (issue: consent v2, 6 and
7), through the node: a planned rotation the old key signs; a recovery the hospitals the patient is enrolled
at approve after an in-person check, which the old key may cancel during the time lock; a child's account a
guardian holds until the child, of age, claims it at a desk."""

from __future__ import annotations

import time
from datetime import date, timedelta

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from medledger_crypto import (
    ConsentConfirmation,
    KeyRotation,
    MinorClaim,
    RecoveryCancellation,
    TypedMessage,
    sign_typed,
)
from sqlmodel import select

from ledger_api.auth import siwe
from ledger_api.chain.days import day_number
from ledger_api.core.db import session_scope
from ledger_api.succession.models import MinorEnrolment
from ledger_api.succession.service import claim_day
from tests.api.conftest import World
from tests.utils.consents import grant_message, signature_json, signed_grant_body
from tests.utils.enrolment import fresh_mrn, link_statement
from tests.utils.records import fetch, grant, upload
from tests.utils.webhooks import Receiver

LOCK = 72 * 3600


def _domain(world: World) -> dict[str, object]:
    return {"chain_id": world.node.node.chain_id, "contract": world.manifest.address("ConsentRegistry")}


def _signature(world: World, signer: LocalAccount, message: TypedMessage) -> dict:
    return signature_json(sign_typed(signer, message.document(**_domain(world))))


def _nonce(world: World, account: str) -> int:
    return world.chain_as(world.stranger).consents.nonce(account)


def _sign_in(world: World, key: LocalAccount) -> httpx.Response:
    with world.node.anonymous() as client:
        challenge = client.post("/v1/auth/challenge").json()
        message = siwe.answer_to(challenge, address=key.address, lasts=timedelta(minutes=10))
        signature = key.sign_message(encode_defunct(text=message)).signature.hex()
        return client.post("/v1/auth/session", json={"message": message, "signature": signature})


def _rotation(world: World, signer: LocalAccount, account: str, new_key: str) -> dict:
    deadline, nonce = int(time.time()) + 600, _nonce(world, account)
    message = KeyRotation(patient=account, new_key=new_key, nonce=nonce, deadline=deadline)
    return {"new_key": new_key, "nonce": nonce, "deadline": deadline, "signature": _signature(world, signer, message)}


def _grant_signed_by(world: World, signer: LocalAccount, account: str) -> dict:
    message = grant_message(account, world.b.address, nonce=_nonce(world, account), lasts_s=30 * 86_400)
    return signed_grant_body(signer, message, **_domain(world))


def _enrol_at_a(world: World) -> None:
    statement = link_statement(world.patient, hospital=world.a.address, mrn=fresh_mrn(), **_domain(world))
    with world.node.member_client(world.a.account) as client:
        assert client.post("/v1/patient-links", json={"statement": statement}).status_code == 200


def test_a_planned_rotation_keeps_everything_and_the_new_key_signs_in_as_the_account(world: World) -> None:
    patient, new = world.patient, Account.create()
    account = patient.address
    record = upload(world).json()["id"]
    grant(world, world.b.address)
    earlier = world.node.patient_client(patient)
    with world.node.patient_client(patient) as client:
        forged = client.post(
            f"/v1/patients/{account}/key-rotation", json=_rotation(world, world.stranger, account, new.address)
        )
        assert (forged.status_code, forged.json()["code"]) == (403, "signature-wrong-signer")
        used = client.post(
            f"/v1/patients/{account}/key-rotation", json=_rotation(world, patient, account, world.b.address)
        )
        assert (used.status_code, used.json()["code"]) == (409, "key-in-use")  # a member's own account
        rotated = client.post(
            f"/v1/patients/{account}/key-rotation", json=_rotation(world, patient, account, new.address)
        )
        assert rotated.status_code == 200, rotated.text
        assert rotated.json()["key"] == new.address

    with earlier:  # a session the old key opened ends with it
        ended = earlier.get(f"/v1/patients/{account}/records")
        assert (ended.status_code, ended.json()["code"]) == (401, "key-retired")
    retired = _sign_in(world, patient)
    assert (retired.status_code, retired.json()["code"]) == (401, "key-retired")
    session = _sign_in(world, new)
    assert session.status_code == 201 and session.json()["patient"] == account  # the same account
    with world.node.patient_client(new) as client:
        assert [r["id"] for r in client.get(f"/v1/patients/{account}/records").json()] == [record]
        assert len(client.get(f"/v1/patients/{account}/consents").json()) == 1
        relayed = client.post("/v1/consents", json=_grant_signed_by(world, new, account))
        assert relayed.status_code == 202, relayed.text
        stale = client.post("/v1/consents", json=_grant_signed_by(world, patient, account))
        assert (stale.status_code, stale.json()["code"]) == (403, "signature-wrong-signer")
    world.node.drain()
    assert world.chain_as(world.stranger).consents.consent_count(account) == 2
    assert fetch(world, world.b, record).status_code == 200  # the hospitals' consents stand


def test_a_lost_key_is_recovered_by_the_hospitals_after_a_time_lock_the_old_key_may_cancel(world: World) -> None:
    patient, new = world.patient, Account.create()
    account = patient.address
    grant(world, world.b.address, hours=30 * 24)
    _enrol_at_a(world)
    desk = {"new_key": new.address, "identity_checked_by": "desk-07"}
    with world.node.member_client(world.a.account) as client:
        stranger = client.post(f"/v1/patients/{world.other_patient.address}/recovery/approvals", json=desk)
        assert (stranger.status_code, stranger.json()["code"]) == (409, "patient-not-enrolled-here")
        first = client.post(f"/v1/patients/{account}/recovery/approvals", json=desk)
        assert first.status_code == 200, first.text
        assert first.json()["recovery"].items() >= {"new_key": new.address, "approvals": 1, "threshold": 2}.items()
    world.chain_as(world.b.account).consents.approve_recovery(account, new.address)  # the second hospital

    with world.node.patient_client(new) as client:  # the new key, signed in as itself, follows its recovery
        mine = client.get("/v1/recoveries/mine").json()
        assert mine["account"] == account and mine["recovery"]["ready_at"] is not None
        early = client.post(f"/v1/patients/{account}/recovery/completion")
        assert (early.status_code, early.json()["code"]) == (409, "recovery-locked")
    with world.node.patient_client(world.other_patient) as client:
        nosy = client.post(f"/v1/patients/{account}/recovery/completion")
        assert (nosy.status_code, nosy.json()["code"]) == (404, "recovery-not-found")

    with world.node.patient_client(patient) as client:  # the key was not lost after all: cancel
        deadline, nonce = int(time.time()) + 600, _nonce(world, account)
        message = RecoveryCancellation(patient=account, new_key=new.address, nonce=nonce, deadline=deadline)
        body = {"new_key": new.address, "nonce": nonce, "deadline": deadline}
        cancelled = client.post(
            f"/v1/patients/{account}/recovery/cancellation",
            json=body | {"signature": _signature(world, patient, message)},
        )
        assert cancelled.status_code == 200 and cancelled.json()["recovery"]["new_key"] is None, cancelled.text
        again = client.post(
            f"/v1/patients/{account}/recovery/cancellation",
            json=body | {"signature": _signature(world, patient, message)},
        )
        assert (again.status_code, again.json()["code"]) == (409, "no-recovery")

    with world.node.member_client(world.a.account) as client:  # lost for real this time
        assert client.post(f"/v1/patients/{account}/recovery/approvals", json=desk).status_code == 200
    world.chain_as(world.b.account).consents.approve_recovery(account, new.address)
    world.backend.increase_time(LOCK + 1)
    with world.node.patient_client(new) as client:
        done = client.post(f"/v1/patients/{account}/recovery/completion")
        assert done.status_code == 200 and done.json()["key"] == new.address, done.text
    assert _sign_in(world, new).json()["patient"] == account
    assert _sign_in(world, patient).json()["code"] == "key-retired"


def test_a_guardian_holds_a_childs_account_until_the_child_claims_it_at_age(world: World) -> None:
    child, guardian, own_key = Account.create(), world.stranger, Account.create()
    born = date.today() - timedelta(days=14 * 365 - 40)  # fourteen in a month or so
    minor = {"account": child.address, "guardian": guardian.address, "identity_checked_by": "desk-02"}
    with world.node.member_client(world.a.account) as client:
        adult = client.post("/v1/minors", json=minor | {"date_of_birth": "1990-01-01"})
        assert (adult.status_code, adult.json()["code"]) == (422, "not-a-minor")
        enrolled = client.post("/v1/minors", json=minor | {"date_of_birth": born.isoformat()})
        assert enrolled.status_code == 201, enrolled.text
    until = claim_day(born, 14)
    assert enrolled.json()["minor_until"] == until.isoformat() and until.day == 1  # a month, not a birth date
    assert world.chain_as(world.stranger).consents.minor_until(child.address) == day_number(until)
    with session_scope(world.node.node.engine) as session:  # the date of birth stays at the enrolling member
        assert session.exec(select(MinorEnrolment.date_of_birth)).one() == born

    with world.node.patient_client(guardian) as client:  # the guardian decides for the child meanwhile
        assert client.post("/v1/consents", json=_grant_signed_by(world, guardian, child.address)).status_code == 202
    world.node.drain()

    def claim(scope: str) -> httpx.Response:
        deadline = max(int(time.time()), world.backend.w3.eth.get_block("latest")["timestamp"]) + 600
        message = MinorClaim(account=child.address, key=own_key.address, guardian_scope=1, deadline=deadline)
        body = {"key": own_key.address, "guardian_scope": scope, "deadline": deadline, "identity_checked_by": "desk-02"}
        with world.node.member_client(world.a.account) as client:
            return client.post(
                f"/v1/minors/{child.address}/claim", json=body | {"signature": _signature(world, own_key, message)}
            )

    early = claim("view")
    assert (early.status_code, early.json()["code"]) == (409, "minor-not-of-age")
    chain_now = world.chain_as(world.stranger).consents.reader.block_timestamp(world.backend.w3.eth.block_number)
    world.backend.increase_time(day_number(until) * 86_400 - chain_now + 3600)
    other_terms = claim("manage")  # signed for "view": the signature does not cover these terms
    assert (other_terms.status_code, other_terms.json()["code"]) == (403, "signature-wrong-signer")
    claimed = claim("view")
    assert claimed.status_code == 200 and claimed.json()["key"] == own_key.address, claimed.text
    assert claimed.json()["minor_until"] is None

    assert _sign_in(world, own_key).json()["patient"] == child.address
    with world.node.patient_client(own_key) as client:
        delegates = client.get(f"/v1/patients/{child.address}/delegates").json()["delegates"]
        assert [(d["delegate"], d["scope"]) for d in delegates] == [(guardian.address, "view")]
        changes = client.get(f"/v1/patients/{child.address}/account-history").json()
    grants = [c for c in changes if c["kind"] == "grant"]
    assert [(c["by"], c["signer"]) for c in grants] == [("delegate", guardian.address)]  # for the child to judge
    assert [(c["kind"], c["how"]) for c in changes if c["kind"] in ("key", "minor")] == [
        ("key", "minor-claim"),
        ("minor", None),
    ]

    # the consent the guardian gave is the child's to confirm (or revoke)
    with world.node.patient_client(own_key) as client:
        (given,) = client.get(f"/v1/patients/{child.address}/consents").json()
        assert (given["given_by_delegate"], given["confirmed"]) == (True, False)
        consent_id = int(given["consent_id"])

        def confirmation(signer: LocalAccount) -> dict:
            deadline, nonce = world.backend.w3.eth.get_block("latest")["timestamp"] + 600, _nonce(world, child.address)
            message = ConsentConfirmation(patient=child.address, consent_id=consent_id, nonce=nonce, deadline=deadline)
            body = {"consent_id": str(consent_id), "nonce": nonce, "deadline": deadline}
            return body | {"signature": _signature(world, signer, message)}

        by_guardian = client.post("/v1/consents/confirmations", json=confirmation(guardian))
        assert (by_guardian.status_code, by_guardian.json()["code"]) == (403, "signature-wrong-signer")
        assert client.post("/v1/consents/confirmations", json=confirmation(own_key)).status_code == 202
        world.node.drain()
        (given,) = client.get(f"/v1/patients/{child.address}/consents").json()
        assert given["confirmed"] is True


def test_the_claim_day_is_the_first_of_the_month_after_the_birthday() -> None:
    assert claim_day(date(2012, 5, 17), 14) == date(2026, 6, 1)
    assert claim_day(date(2012, 12, 3), 14) == date(2027, 1, 1)
    assert claim_day(date(2012, 2, 29), 14) == date(2026, 3, 1)


def test_the_old_key_hears_of_a_recovery_while_it_can_still_cancel_it(world: World, receiver: Receiver) -> None:
    patient, new = world.patient, Account.create()
    with world.node.patient_client(patient) as client:
        created = client.post("/v1/subscriptions", json={"url": receiver.url, "events": ["key"]})
    assert created.status_code == 201, created.text
    world.chain_as(world.a.account).consents.approve_recovery(patient.address, new.address)
    started = world.chain_as(world.b.account).consents.approve_recovery(patient.address, new.address)
    ready_at = started.event("RecoveryStarted").args["readyAt"]
    world.backend.increase_time(LOCK + 1)
    world.chain_as(world.c.account).consents.complete_recovery(patient.address)
    world.node.drain()
    for _ in range(5):
        if not world.node.app.state.notifier.run_once():
            break
    bodies = receiver.bodies()
    assert [(b["type"], b["data"]["stage"]) for b in bodies] == [("key", "recovery"), ("key", "changed")]
    assert bodies[0]["data"] == {"stage": "recovery", "new_key": new.address, "ready_at": ready_at}
    assert {b["patient"] for b in bodies} == {patient.address}
    with world.node.patient_client(new) as client:  # the inbox of the account shows both
        inbox = client.get(f"/v1/patients/{patient.address}/inbox", params={"deadline_ms": 2000}).json()
    keys = [item for item in inbox["items"] if item["kind"] == "key"]
    assert [item["detail"]["stage"] for item in keys] == ["changed", "recovery"]  # newest first
    assert not any(item["needs_answer"] for item in keys)  # it completed: nothing left to cancel
