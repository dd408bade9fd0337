"""Webhooks under hostile subscribers: rights are read from the chain at every delivery and listing;
a subscriber cannot use the node to reach or scan internal addresses, nor learn what answered there;
subscriptions are capped; a slow receiver delays nobody else (issue: hostile patients and members, 3, 8)."""

from __future__ import annotations

import socket
import time

import pytest

from ledger_api.chain.types import ProposalKind
from ledger_api.consents.wire import terms_under_notice
from ledger_api.notifications.delivery import ReceiverPolicy, ReceiverRefused, post_pinned
from tests.api.conftest import World
from tests.utils.actors import manages, removal
from tests.utils.records import grant
from tests.utils.webhooks import Receiver, serve_receiver


def _subscribe(client, url: str, events: list[str], patient: str | None = None):
    return client.post(
        "/v1/subscriptions", json={"url": url, "events": events, **({"patient": patient} if patient else {})}
    )


def _notify(world: World) -> None:
    world.node.drain()
    for _ in range(5):
        if not world.node.app.state.notifier.run_once():
            return


def test_a_delegate_the_patient_removed_gets_nothing_more(world: World, receiver: Receiver) -> None:
    delegate = world.stranger
    world.chain_as(world.patient).consents.set_delegate(manages(delegate.address))
    with world.node.patient_client(delegate) as client:
        created = _subscribe(client, receiver.url, ["grant"], world.patient.address)
    assert created.status_code == 201, created.text
    sub = created.json()["id"]
    grant(world, world.b.address)
    _notify(world)
    assert len(receiver.received) == 1
    world.chain_as(world.patient).consents.set_delegate(removal(delegate.address))
    grant(world, world.c.address)
    _notify(world)
    assert len(receiver.received) == 1  # the delivery re-read the right and found it gone
    with world.node.patient_client(delegate) as client:
        assert client.get(f"/v1/subscriptions/{sub}/notifications").status_code == 403
        assert client.get(f"/v1/patients/{world.patient.address}/notifications").status_code == 403
        assert [s["active"] for s in client.get("/v1/subscriptions").json()] == [False]
    with world.node.patient_client(world.patient) as client:  # the patient's own history keeps what happened
        states = [n["state"] for n in client.get(f"/v1/patients/{world.patient.address}/notifications").json()]
    assert states == ["delivered", "cancelled"]


def test_an_auditor_governance_suspended_loses_its_all_patients_subscription(world: World, receiver: Receiver) -> None:
    with world.node.member_client(world.ids.auditor.account) as client:
        created = _subscribe(client, receiver.url, ["break_glass"])
    assert created.status_code == 201
    registry_a = world.chain_as(world.a.account).registry
    pid = (
        registry_a.propose_status_change(ProposalKind.SUSPEND_MEMBER, world.ids.auditor.address)
        .event("ProposalCreated")
        .args["proposalId"]
    )
    world.chain_as(world.b.account).registry.vote(pid, True)
    registry_a.execute(pid)
    world.chain_as(world.c.account).consents.declare_break_glass(world.patient.address, b"\x01" * 32)
    _notify(world)
    assert receiver.received == []
    with world.node.member_client(world.a.account) as hospital:
        listed = hospital.get(f"/v1/patients/{world.patient.address}/notifications").json()
    assert [n["state"] for n in listed] == ["cancelled"]


def test_subscriptions_per_subscriber_are_capped(world: World, receiver: Receiver) -> None:
    world.node.node.settings.notifications.max_subscriptions_per_subscriber = 2
    with world.node.patient_client(world.patient) as client:
        first, second, third = (_subscribe(client, receiver.url, ["grant"]) for _ in range(3))
        assert (first.status_code, second.status_code, third.status_code) == (201, 201, 409)
        assert "most allowed (2)" in third.json()["detail"]
        assert client.delete(f"/v1/subscriptions/{first.json()['id']}").status_code == 204
        assert _subscribe(client, receiver.url, ["grant"]).status_code == 201


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://203.0.113.7/hook", "https only"),
        ("https://127.0.0.1/hook", "not a public address"),
        ("https://localhost:8443/hook", "not a public address"),
        ("https://10.1.2.3/hook", "not a public address"),
        ("https://192.168.1.20/hook", "not a public address"),
        ("https://169.254.169.254/latest/meta-data", "not a public address"),
        ("https://[::1]/hook", "not a public address"),
        ("https://[::ffff:10.0.0.1]/hook", "not a public address"),
        ("https://[fd00::1]/hook", "not a public address"),
    ],
)
def test_production_nodes_deliver_only_to_public_https_receivers(world: World, url: str, why: str) -> None:
    world.node.node.settings.mode = "production"
    try:
        with world.node.patient_client(world.patient) as client:
            response = _subscribe(client, url, ["grant"])
    finally:
        world.node.node.settings.mode = "dev"
    assert response.status_code == 422 and why in response.json()["detail"], response.text


def test_the_address_is_checked_again_when_connecting_so_dns_rebinding_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Public when subscribed, private when delivered: the connection is never made."""
    policy = ReceiverPolicy(public_only=True)
    answers = iter(
        [
            [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 443))],
            [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", 443))],
        ]
    )
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args, **kwargs: next(answers))
    assert str(policy.resolve("hooks.example.org", 443)) == "93.184.216.34"  # at subscription

    class NeverConnect:
        def post(self, *args: object, **kwargs: object) -> None:
            raise AssertionError("connected to a refused address")

    with pytest.raises(ReceiverRefused, match="not a public address"):
        post_pinned(NeverConnect(), policy, "https://hooks.example.org/hook", content=b"{}", headers={})  # type: ignore[arg-type]


def test_a_slow_receiver_delays_no_other_patients_notification(world: World, receiver: Receiver) -> None:
    world.node.node.settings.notifications.timeout_s = 10
    with serve_receiver() as slow:
        slow.delay_s = 6.0
        with world.node.patient_client(world.patient) as client:
            assert _subscribe(client, slow.url, ["grant"]).status_code == 201
        with world.node.patient_client(world.other_patient) as client:
            assert _subscribe(client, receiver.url, ["grant"]).status_code == 201
        grant(world, world.b.address)  # the slow receiver's patient: first in line
        now = int(world.backend.w3.eth.get_block("latest")["timestamp"])
        terms = terms_under_notice(
            grantees=(world.b.address,), categories=1, purposes=1, valid_from=now - 1, valid_until=now + 3600
        )
        world.chain_as(world.other_patient).consents.grant(world.other_patient.address, terms)
        notifier = world.node.app.state.notifier
        started = time.monotonic()
        notifier.start()
        try:
            while not receiver.received and time.monotonic() - started < 5:
                time.sleep(0.05)
            fast_after = time.monotonic() - started
            assert receiver.received, "the other patient's notification waited behind the slow receiver"
            assert fast_after < 3.0
            assert slow.received == []  # still being answered, slowly
        finally:
            notifier.stop()
