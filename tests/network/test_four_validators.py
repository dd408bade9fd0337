"""The consortium on a real BFT network: four validators (three hospitals and the audit office), every
member node on its own validator with the others as fallbacks.

What must hold when validators die: blocks keep coming with one down and stop with two down; no
request fails for any reason but the documented 503 of a member whose chain is unreachable; nothing
written is lost or written twice; and a revocation is honoured by every member on its next request.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from eth_account import Account
from web3 import Web3

from ledger_api.chain.deployment import Consortium
from ledger_api.chain.transactions import TransactionSender
from ledger_api.chain.types import ProposalKind, Role
from tests.network.conftest import MEMBERS, NetworkWorld

pytestmark = [pytest.mark.network, pytest.mark.slow, pytest.mark.xdist_group("network")]


def _consent(world: NetworkWorld, via: str, patient, grantee: str) -> int:
    relay = world.relay_grant(via, patient, grantee)
    assert relay.status_code == 202, relay.text
    settled = world.relay_settled(via, relay.json()["id"])
    assert settled["state"] == "confirmed", settled
    return int(settled["consent_id"])


def test_a_revocation_is_honoured_by_every_member_on_its_next_request_whichever_validator_it_asks(
    network_world: NetworkWorld,
) -> None:
    world, patient = network_world, Account.create()
    record = world.upload("dapeng", patient.address)
    assert record.status_code == 201, record.text
    record_id = record.json()["id"]
    readers = ("kuichong", "nanao")
    consents = {reader: _consent(world, "dapeng", patient, reader) for reader in readers}
    for reader in readers:
        assert world.read(reader, "dapeng", record_id).status_code == 200

    for reader, consent_id in consents.items():  # each revocation relayed by the other reader's node
        via = next(r for r in readers if r != reader)
        relay = world.relay_revocation(via, patient, consent_id)
        assert relay.status_code == 202, relay.text
        assert world.relay_settled(via, relay.json()["id"])["state"] == "confirmed"
        # the very next request, at the member the consent named, on its own validator
        refused = world.read(reader, "dapeng", record_id)
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")


def test_one_validator_killed_under_load_nothing_fails_but_the_documented_503_and_nothing_is_lost(
    network_world: NetworkWorld,
) -> None:
    """dapeng's validator is SIGKILLed while dapeng uploads, kuichong reads dapeng's records under consent
    and nanao relays grants and revocations; dapeng fails over to the other validators."""
    world = network_world
    patients = [Account.create() for _ in range(2)]
    seed = [world.upload("dapeng", p.address).json()["id"] for p in patients]
    for p in patients:
        _consent(world, "dapeng", p, "kuichong")
    world.wait_drained()
    uploaded: list[str] = []
    statuses: dict[str, Counter[int]] = {m: Counter() for m in MEMBERS}
    unexpected: list[str] = []
    stop = threading.Event()

    reasons: Counter[str] = Counter()

    def note(member: str, action: str, status: int, body: str) -> None:
        statuses[member][status] += 1
        if status == 503:
            reasons[f"{member} {action} {time.monotonic() - started:.0f}s: {body[:160]}"] += 1
        if status >= 500 and not (status == 503 and "chain-unavailable" in body):
            unexpected.append(f"{member} {action}: {status} {body[:200]}")

    def uploads() -> None:
        while not stop.is_set():
            response = world.upload("dapeng", patients[0].address)
            note("dapeng", "upload", response.status_code, response.text)
            if response.status_code == 201:
                uploaded.append(response.json()["id"])
            elif response.status_code != 503:
                unexpected.append(f"dapeng upload: {response.status_code} {response.text[:200]}")
            stop.wait(0.1)  # a busy hospital's pace, not a flood: the load is about failures, not throughput

    def reads() -> None:
        while not stop.is_set():
            response = world.read("kuichong", "dapeng", seed[1])
            note("kuichong", "read", response.status_code, response.text)
            if response.status_code not in (200, 503):
                unexpected.append(f"kuichong read: {response.status_code} {response.text[:200]}")
            stop.wait(0.1)

    def consent_churn() -> None:
        patient = Account.create()
        while not stop.is_set():
            relay = world.relay_grant("nanao", patient, "kuichong")
            note("nanao", "grant", relay.status_code, relay.text)
            if relay.status_code != 202:
                continue
            settled = world.relay_settled("nanao", relay.json()["id"], timeout=90)
            if settled["state"] != "confirmed":
                unexpected.append(f"nanao grant relay: {settled}")
                continue
            revoked = world.relay_revocation("nanao", patient, int(settled["consent_id"]))
            note("nanao", "revoke", revoked.status_code, revoked.text)
            if revoked.status_code == 202:
                world.relay_settled("nanao", revoked.json()["id"], timeout=90)

    started = time.monotonic()
    threads = [threading.Thread(target=t, daemon=True) for t in (uploads, reads, consent_churn)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    before = world.heads(["kuichong", "nanao", "auditor"])
    world.network.kill("dapeng")
    time.sleep(6)
    during = world.heads(["kuichong", "nanao", "auditor"])
    assert min(during.values()) >= max(before.values()) + 3, (before, during)  # blocks kept coming
    world.network.start(["dapeng"])
    world.network.wait_until_agreeing(60)  # the restarted validator caught up with the others
    time.sleep(1)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)

    assert not unexpected, (unexpected, world.outbox_rows("nanao")[-3:], world.diagnose("nanao"))
    assert statuses["kuichong"][200] > 0 and statuses["dapeng"][201] > 0, statuses
    assert statuses["kuichong"][503] == 0 and statuses["nanao"][503] == 0, (statuses, reasons)  # validators lived
    world.wait_drained()
    report, chain = world.audit()
    assert report.passed, report.findings
    assert len(set(uploaded)) == len(uploaded)
    lost = [r for r in uploaded if r not in chain.records]
    assert not lost, f"{len(lost)} of {len(uploaded)} uploads not anchored"
    assert all(list(chain.records[r].versions) == [1] for r in uploaded)  # each anchored once, as version 1


def test_with_two_of_four_validators_down_writes_wait_in_the_outbox_and_land_exactly_once_after(
    network_world: NetworkWorld,
) -> None:
    world, patient = network_world, Account.create()
    existing = world.upload("dapeng", patient.address)
    consent_id = _consent(world, "dapeng", patient, "kuichong")
    world.wait_drained()
    world.network.kill("nanao")
    world.network.kill("auditor")
    try:
        # the two left may still seal a block or two (each may seal one of every three): then nothing
        stalled, deadline = world.heads(["dapeng", "kuichong"]), time.monotonic() + 20
        while True:
            time.sleep(2.5)
            now = world.heads(["dapeng", "kuichong"])
            if now == stalled or time.monotonic() > deadline:
                break
            stalled = now
        # chain writes: accepted, and waiting (no block can be sealed by two of four)
        written = world.upload("dapeng", patient.address)
        assert written.status_code == 201, written.text
        relay = world.relay_grant("kuichong", Account.create(), "dapeng")
        assert relay.status_code == 202, relay.text
        time.sleep(3)
        assert world.heads(["dapeng", "kuichong"]) == stalled  # no blocks
        assert world.pending_writes() >= 2
        # reads that need only state keep working: a consented read (the access entry waits to be anchored)
        assert world.read("kuichong", "dapeng", existing.json()["id"]).status_code == 200
    finally:
        world.network.start(["nanao", "auditor"])
    world.network.wait_until_agreeing(90)
    world.wait_drained(180)
    assert world.relay_settled("kuichong", relay.json()["id"])["state"] == "confirmed"
    report, chain = world.audit()
    assert report.passed, report.findings
    assert list(chain.records[written.json()["id"]].versions) == [1]
    assert consent_id in {c.consent_id for c in chain.consents.values()}


def test_a_member_admitted_by_governance_brings_its_validator_in_and_its_removal_takes_it_out(
    network_world: NetworkWorld,
) -> None:
    """Member = validator: the member nodes vote the network's validator set to follow the registry."""
    world = network_world
    w3 = world.devnet.backend.w3
    registry = Consortium(w3, world.devnet.manifest).registry
    founding = {slug: world.network.validator(slug).address for slug in (*MEMBERS, "auditor")}
    assert {slug: registry.validator_of(world.account(slug).address) for slug in founding} == founding

    def signers() -> set[str]:
        return {Web3.to_checksum_address(a) for a in world.network._ask("kuichong", "clique_getSigners")}

    def as_member(slug: str) -> Consortium:
        # two blocks on top before a write counts: with a voted-in validator that never seals, the others
        # seal its turns out of turn, and such blocks can fork and be replaced (a proposal seen in one
        # block was then missing when the next vote was estimated: UnknownProposal)
        return Consortium(w3, world.devnet.manifest, TransactionSender(w3, world.account(slug), confirmations=2))

    def until(predicate, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, f"not within {timeout:.0f}s: {what} (signers {signers()})"
            time.sleep(0.5)

    newcomer, validator = Account.create(), Account.create().address  # its validator is not running
    funding = {  # gas costs 1 wei here: the newcomer needs a little to declare its validator
        "to": newcomer.address,
        "value": 10**18,
        "gas": 21_000,
        "gasPrice": w3.eth.gas_price,
        "nonce": w3.eth.get_transaction_count(world.devnet.deployer.address, "pending"),
        "chainId": world.devnet.manifest.chain_id,
    }
    signed = world.devnet.deployer.sign_transaction(funding)
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction))
    identity = world.devnet.identities["kuichong"]  # any valid HPKE key: the newcomer never serves here
    proposal = (
        as_member("dapeng")
        .registry.propose_add_member(
            newcomer.address,
            Role.MEMBER,
            "Dapeng Maternal and Child Health Hospital",
            "",
            identity.hpke_public_key.to_bytes(),
        )
        .event("ProposalCreated")
        .args["proposalId"]
    )
    as_member("kuichong").registry.vote(proposal, True)
    as_member("kuichong").registry.execute(proposal)
    Consortium(w3, world.devnet.manifest, TransactionSender(w3, newcomer)).registry.declare_validator(validator)
    until(lambda: validator in signers(), "the admitted member's validator voted in")
    assert set(founding.values()) <= signers()

    removal = as_member("dapeng").registry.propose_status_change(ProposalKind.REMOVE_MEMBER, newcomer.address)
    proposal = removal.event("ProposalCreated").args["proposalId"]
    for voter in ("kuichong", "nanao"):  # the newcomer is in the electorate now: 3 of 4
        as_member(voter).registry.vote(proposal, True)
    as_member("nanao").registry.execute(proposal)
    until(lambda: validator not in signers(), "the removed member's validator voted out")
    assert signers() == set(founding.values())
