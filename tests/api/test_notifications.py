"""Notifications: patients and auditors subscribe a webhook and get signed, retried deliveries
of what happens to an account, read from the chain and listed in the patient's history.

A real HTTP receiver runs on a loopback port for each test and records what it is sent; it can
be told to fail the first deliveries to exercise retries.
"""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import update
from sqlmodel import col

from ledger_api.core import headers as header_names
from ledger_api.core.db import session_scope
from ledger_api.notifications.models import Notification
from ledger_api.notifications.service import NOT_DELIVERED, SIGNATURE_HEADER, sign, verify_signature
from tests.api.conftest import World
from tests.utils.records import fetch, grant, upload
from tests.utils.webhooks import Receiver

ALL_EVENTS = ["access", "grant", "revocation", "break_glass", "review"]


def _subscribe(world: World, client, url: str, events: list[str], patient: str | None = None):
    body = {"url": url, "events": events, **({"patient": patient} if patient else {})}
    return client.post("/v1/subscriptions", json=body)


def _notify(world: World, rounds: int = 5) -> None:
    """Anchors what is pending, then lets the notification worker scan and deliver until idle."""
    world.node.drain()
    for _ in range(rounds):
        if not world.node.app.state.notifier.run_once():
            return


def _make_due(world: World) -> None:
    """Skips the backoff wait (the retry schedule itself is checked on the rows)."""
    with session_scope(world.node.node.engine) as session:
        session.exec(
            update(Notification)
            .where(col(Notification.state) == "pending")  # type: ignore[call-overload]
            .values(next_attempt_at=Notification.created_at)
        )


def test_a_patient_gets_every_event_of_their_account_signed_and_in_order(world: World, receiver: Receiver) -> None:
    grant(world, world.c.address)  # before the subscription: not notified
    with world.node.patient_client(world.patient) as client:
        created = _subscribe(world, client, receiver.url, ALL_EVENTS)
    assert created.status_code == 201, created.text
    secret = created.json()["secret"]
    labs = upload(world).json()["id"]
    consent_id = grant(world, world.b.address)
    assert fetch(world, world.b, labs).status_code == 200
    world.node.drain()  # the access entry goes on chain (events are notified in chain order)
    world.chain_as(world.patient).consents.revoke(consent_id)
    declared = world.chain_as(world.c.account).consents.declare_break_glass(world.patient.address, b"\x22" * 32)
    bg_id = declared.event("BreakGlassDeclared").args["breakGlassId"]
    world.chain_as(world.ids.auditor.account).consents.review_break_glass(bg_id, True, b"\x33" * 32)
    _notify(world)

    bodies = receiver.bodies()
    assert [b["type"] for b in bodies] == ["grant", "access", "revocation", "break_glass", "review"]
    assert {b["patient"] for b in bodies} == {world.patient.address}
    grant_body, access, revocation, emergency, review = bodies
    assert grant_body["data"]["consent_id"] == str(consent_id) and grant_body["data"]["grantees"] == [world.b.address]
    assert access["data"]["requester"] == world.b.address and access["data"]["record_id"] == labs
    assert access["id"] == f"access:{world.a.address}:1" and access["data"]["basis"] == "consent"
    assert revocation["data"]["consent_id"] == str(consent_id)
    assert emergency["data"]["member"] == world.c.address
    assert review["data"] == {
        "break_glass_id": str(bg_id),
        "member": world.c.address,
        "decision": "justified",
        "auditor": world.ids.auditor.address,
    }
    for headers, body in receiver.received:
        assert verify_signature(secret, headers[SIGNATURE_HEADER.lower()], body)
        assert not verify_signature("another-secret", headers[SIGNATURE_HEADER.lower()], body)
        assert headers[header_names.EVENT_ID.lower()] == json.loads(body)["id"]
        assert b"dr-wang" not in body  # the clinician stays in the member's log
    with world.node.patient_client(world.patient) as client:
        listed = client.get(f"/v1/patients/{world.patient.address}/notifications").json()
    assert [n["event_type"] for n in listed] == ["grant", "access", "revocation", "break_glass", "review"]
    assert all(n["state"] == "delivered" and n["attempts"] == 1 and n["last_status"] is None for n in listed)
    with world.node.member_client(world.a.account) as hospital:  # the node's operators see the receiver's answer
        operated = hospital.get(f"/v1/patients/{world.patient.address}/notifications").json()
    assert all(n["last_status"] == 204 for n in operated)
    _notify(world)
    assert len(receiver.received) == 5  # each event once


def test_a_failing_receiver_is_retried_with_backoff_then_given_up(world: World, receiver: Receiver) -> None:
    world.node.node.settings.notifications.max_attempts = 3
    receiver.fail_first = 2
    with world.node.patient_client(world.patient) as client:
        assert _subscribe(world, client, receiver.url, ["grant"]).status_code == 201
    grant(world, world.b.address)
    _notify(world)
    with world.node.patient_client(world.patient) as client:
        (pending,) = client.get(f"/v1/patients/{world.patient.address}/notifications").json()
    assert pending["state"] == "pending" and pending["attempts"] == 1 and pending["last_status"] is None
    assert pending["last_error"] == NOT_DELIVERED  # the subscriber learns nothing of the receiver's answer
    with world.node.member_client(world.a.account) as hospital:
        (operated,) = hospital.get(f"/v1/patients/{world.patient.address}/notifications").json()
    assert operated["last_status"] == 500
    with session_scope(world.node.node.engine) as session:
        row = session.get(Notification, pending["id"])
        assert row is not None and row.next_attempt_at > row.created_at  # backing off
    for _ in range(2):
        _make_due(world)
        _notify(world)
    assert len(receiver.received) == 1
    with world.node.patient_client(world.patient) as client:
        (delivered,) = client.get(f"/v1/patients/{world.patient.address}/notifications").json()
    assert delivered["state"] == "delivered" and delivered["attempts"] == 3

    receiver.fail_first, receiver.answered = 10, 0
    grant(world, world.c.address)
    for _ in range(4):
        _notify(world)
        _make_due(world)
    with world.node.patient_client(world.patient) as client:
        second = client.get(f"/v1/patients/{world.patient.address}/notifications").json()[1]
    assert second["state"] == "failed" and second["attempts"] == 3


def test_an_unreachable_receiver_does_not_stop_the_others(world: World, receiver: Receiver) -> None:
    with world.node.patient_client(world.patient) as client:
        assert _subscribe(world, client, "http://127.0.0.1:9/closed", ["grant"]).status_code == 201
        assert _subscribe(world, client, receiver.url, ["grant"]).status_code == 201
    grant(world, world.b.address)
    _notify(world)
    assert [b["type"] for b in receiver.bodies()] == ["grant"]
    with world.node.patient_client(world.patient) as client:
        states = {
            n["state"] + ":" + (n["last_error"] or "")
            for n in client.get(f"/v1/patients/{world.patient.address}/notifications").json()
        }
    assert states == {"delivered:", f"pending:{NOT_DELIVERED}"}


def test_an_auditor_is_told_of_every_break_glass_and_review_only(world: World, receiver: Receiver) -> None:
    with world.node.member_client(world.ids.auditor.account) as client:
        assert _subscribe(world, client, receiver.url, ["grant"]).status_code == 422
        created = _subscribe(world, client, receiver.url, ["break_glass", "review"])
    assert created.status_code == 201 and created.json()["patient"] is None
    grant(world, world.b.address)
    for patient in (world.patient, world.other_patient):
        world.chain_as(world.c.account).consents.declare_break_glass(patient.address, b"\x44" * 32)
    _notify(world)
    bodies = receiver.bodies()
    assert [(b["type"], b["patient"]) for b in bodies] == [
        ("break_glass", world.patient.address),
        ("break_glass", world.other_patient.address),
    ]
    with world.node.member_client(world.ids.auditor.account) as client:
        sent = client.get(f"/v1/subscriptions/{created.json()['id']}/notifications").json()
    assert [n["state"] for n in sent] == ["delivered", "delivered"]


def test_accesses_anchored_in_merkle_batches_are_notified_by_their_custodian(world: World, receiver: Receiver) -> None:
    world.node.node.settings.outbox.batch_size = 4
    world.node.node.settings.outbox.batch_delay_s = 0.0
    with world.node.patient_client(world.patient) as client:
        assert _subscribe(world, client, receiver.url, ["access"]).status_code == 201
    labs = upload(world).json()["id"]
    grant(world, world.b.address)
    for _ in range(3):
        assert fetch(world, world.b, labs).status_code == 200
    other = upload(world, patient=world.other_patient.address).json()["id"]
    assert fetch(world, world.a, other).status_code == 200  # another patient's: not for this subscriber
    _notify(world)
    bodies = receiver.bodies()
    assert [b["data"]["sequence"] for b in bodies] == [1, 2, 3]
    assert all(b["data"]["requester"] == world.b.address for b in bodies)


def test_unsubscribing_stops_deliveries(world: World, receiver: Receiver) -> None:
    with world.node.patient_client(world.patient) as client:
        sub = _subscribe(world, client, receiver.url, ["grant"]).json()
        assert [s["id"] for s in client.get("/v1/subscriptions").json()] == [sub["id"]]
        assert "secret" not in client.get("/v1/subscriptions").json()[0]
    with world.node.patient_client(world.other_patient) as client:
        assert client.delete(f"/v1/subscriptions/{sub['id']}").status_code == 404  # not theirs
    with world.node.patient_client(world.patient) as client:
        assert client.delete(f"/v1/subscriptions/{sub['id']}").status_code == 204
    grant(world, world.b.address)
    _notify(world)
    assert receiver.received == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"url": "ftp://127.0.0.1/x", "events": ["grant"]}, "http(s)"),
        ({"url": "http://user:pw@127.0.0.1/x", "events": ["grant"]}, "credentials"),
        ({"url": "http://127.0.0.1/x", "events": ["gossip"]}, "unknown event types"),
        ({"url": "http://127.0.0.1/x", "events": []}, "events"),
        ({"url": "not a url", "events": ["grant"]}, "url"),
    ],
)
def test_bad_subscriptions_are_rejected_naming_the_problem(world: World, body: dict, problem: str) -> None:
    with world.node.patient_client(world.patient) as client:
        response = client.post("/v1/subscriptions", json=body)
        assert response.status_code == 422 and problem in response.json()["detail"]
        assert client.get("/v1/subscriptions").json() == []


def test_others_cannot_subscribe_to_a_patients_account(world: World, receiver: Receiver) -> None:
    with world.node.patient_client(world.other_patient) as client:
        assert _subscribe(world, client, receiver.url, ["access"], world.patient.address).status_code == 403
    with world.node.member_client(world.b.account) as client:
        assert _subscribe(world, client, receiver.url, ["access"], world.patient.address).status_code == 403


def test_a_signature_is_bound_to_the_body_and_fresh() -> None:
    body, header = b'{"id":"x"}', sign("s3cret", b'{"id":"x"}')
    assert verify_signature("s3cret", header, body)
    assert not verify_signature("s3cret", header, b'{"id":"y"}')
    assert not verify_signature("s3cret", header, body, now=time.time() + 3600)
    assert not verify_signature("s3cret", "t=1,v2=zz", body)
