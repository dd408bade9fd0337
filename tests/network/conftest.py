"""The network tier: three member nodes, each on its own validator of a 4-validator Clique network.

One network per test module (they take ~20 s to start and deploy): tests that stop validators bring
them back before they end. Nodes run in this process (uvicorn threads) so a test can hold every piece:
the validators' processes, each node's outbox, and the chain.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from medledger_crypto import ConsentRevocation, sign_typed
from sqlmodel import col, select

from ledger_api.audit.chain_view import read_chain
from ledger_api.audit.sources import MemberExport
from ledger_api.audit.verify import verify
from ledger_api.chain.backends import RpcBackend
from ledger_api.chain.clique import CliqueNetwork
from ledger_api.chain.devnet import Devnet, start_network
from ledger_api.cli.consortium import CLIQUE_CONFIRMATIONS, NETWORK_OUTBOX
from ledger_api.core.config import ChainSettings, OutboxSettings
from ledger_api.core.db import session_scope
from ledger_api.node import build_node
from ledger_api.outbox.kinds import IN_FLIGHT
from ledger_api.outbox.models import OutboxItem
from tests.utils.consents import grant_message, signature_json, signed_grant_body
from tests.utils.nodes import RunningNode, loopback_listener, node_settings

pytestmark = pytest.mark.network


@dataclass
class NetworkWorld:
    devnet: Devnet
    nodes: dict[str, RunningNode]
    #: every response status seen by a test's load, by member (see ``record``)
    seen: dict[str, list[int]] = field(default_factory=dict)

    @property
    def network(self) -> CliqueNetwork:
        assert self.devnet.network is not None
        return self.devnet.network

    def account(self, slug: str) -> LocalAccount:
        return self.devnet.identities[slug].account

    def client(self, slug: str) -> httpx.Client:
        """The member's own system, signing its requests."""
        return self.nodes[slug].member_client(self.account(slug))

    @property
    def registry_address(self) -> str:
        return self.devnet.manifest.address("ConsentRegistry")

    # -- what the tests do ---------------------------------------------------------------------------
    def upload(self, slug: str, patient: str, body: bytes = b"HbA1c 6.1 %\n" * 40) -> httpx.Response:
        with self.client(slug) as client:
            return client.post(
                "/v1/records",
                content=body,
                headers={"content-type": "application/octet-stream"},
                params={"patient": patient, "category": "labs", "media_type": "text/plain"},
            )

    def read(self, reader: str, custodian: str, record_id: str) -> httpx.Response:
        """``reader``'s system reads a record held by ``custodian`` through its own node, for treatment."""
        params = {"custodian": self.account(custodian).address, "purpose": "treatment", "clinician": "dr-net-01"}
        with self.client(reader) as client:
            return client.get(f"/v1/consortium/records/{record_id}", params=params)

    def nonce(self, via: str, patient: str) -> int:
        with self.client(via) as client:
            return int(client.get(f"/v1/patients/{patient}/signing-domain").json()["nonce"])

    def relay_grant(self, via: str, patient: LocalAccount, grantee: str, nonce: int | None = None) -> httpx.Response:
        """The patient's signed grant to ``grantee`` (labs, treatment, a day), relayed by ``via``'s node."""
        nonce = self.nonce(via, patient.address) if nonce is None else nonce
        message = grant_message(patient.address, self.account(grantee).address, nonce=nonce, lasts_s=86_400)
        body = signed_grant_body(
            patient, message, chain_id=self.devnet.manifest.chain_id, contract=self.registry_address
        )
        with self.client(via) as client:
            return client.post("/v1/consents", json=body)

    def relay_revocation(self, via: str, patient: LocalAccount, consent_id: int) -> httpx.Response:
        nonce, deadline = self.nonce(via, patient.address), int(time.time()) + 600
        message = ConsentRevocation(patient=patient.address, consent_id=consent_id, nonce=nonce, deadline=deadline)
        signature = sign_typed(
            patient, message.document(chain_id=self.devnet.manifest.chain_id, contract=self.registry_address)
        )
        body = {
            "consent_id": str(consent_id),
            "nonce": nonce,
            "deadline": deadline,
            "signature": signature_json(signature),
        }
        with self.client(via) as client:
            return client.post("/v1/consents/revocations", json=body)

    def relay_settled(self, via: str, relay_id: int, timeout: float = 60) -> dict[str, Any]:
        """Waits until the relay is confirmed (or failed) on chain; its status."""
        deadline = time.monotonic() + timeout
        with self.client(via) as client:
            while True:
                status = client.get(f"/v1/relays/{relay_id}").json()
                if status["state"] in ("confirmed", "failed") or time.monotonic() > deadline:
                    return dict(status)
                time.sleep(0.05)

    def pending_writes(self) -> int:
        """Chain writes still waiting in the members' outboxes."""
        total = 0
        for running in self.nodes.values():
            with session_scope(running.node.engine) as session:
                total += len(session.exec(select(OutboxItem).where(col(OutboxItem.state).in_(IN_FLIGHT))).all())
        return total

    def outbox_rows(self, slug: str) -> list[tuple[Any, ...]]:
        """(id, kind, state, attempts, block, error) of every row of a member's outbox (for failures' messages)."""
        with session_scope(self.nodes[slug].node.engine) as session:
            rows = session.exec(select(OutboxItem).order_by(col(OutboxItem.id))).all()
            return [(r.id, r.kind, r.state, r.attempts, r.block_number, r.nonce, r.last_error) for r in rows]

    def diagnose(self, slug: str) -> dict[str, Any]:
        """Where a member's account stands at each validator (for failures' messages)."""
        address = self.account(slug).address
        found: dict[str, Any] = {}
        for name in self.network.rpc_urls:
            try:
                found[name] = {
                    "head": self.network.head(name),
                    "nonce": int(self.network._ask(name, "eth_getTransactionCount", [address, "latest"]), 16),
                    "pending": int(self.network._ask(name, "eth_getTransactionCount", [address, "pending"]), 16),
                    "pool": self.network._ask(name, "txpool_status"),
                    "gas_price": self.network._ask(name, "eth_gasPrice"),
                }
            except Exception as exc:
                found[name] = str(exc)[:80]
        return found

    def wait_drained(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while self.pending_writes():
            if time.monotonic() > deadline:
                waiting = Counter(
                    (slug, row[1], row[2], str(row[6])[:80])
                    for slug in self.nodes
                    for row in self.outbox_rows(slug)
                    if row[2] in IN_FLIGHT
                )
                sent = [(r[0], r[2], r[5]) for r in self.outbox_rows("dapeng") if r[2] == "sent"][:5]
                raise AssertionError(
                    f"{self.pending_writes()} chain writes still waiting: {waiting}; dapeng's first sent rows "
                    f"(id, state, nonce) {sent}; at the validators {self.diagnose('dapeng')}"
                )
            time.sleep(0.2)

    def audit(self) -> Any:
        """The auditor's verification of every member's log against the chain, read from the audit
        office's own validator."""
        auditor = self.account("auditor")
        exports = []
        for running in self.nodes.values():
            with running.member_client(auditor) as client:
                entries = [json.loads(line) for line in client.get("/v1/access-log/export").text.splitlines()]
                records = [json.loads(line) for line in client.get("/v1/audit/records").text.splitlines()]
            exports.append(MemberExport(running.node.address, entries, records))
        backend = RpcBackend(self.network.rpc_url("auditor"))
        chain = read_chain(backend.w3, self.devnet.manifest)
        return verify(chain, self.devnet.manifest.chain_id, exports, None), chain

    def heads(self, names: list[str] | None = None) -> dict[str, int]:
        return {n: self.network.head(n) for n in (names or list(self.network.rpc_urls))}


MEMBERS = ("dapeng", "kuichong", "nanao")


@pytest.fixture(scope="module")
def network_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetworkWorld]:
    tmp: Path = tmp_path_factory.mktemp("network")
    listeners = {slug: loopback_listener() for slug in MEMBERS}
    endpoints = {slug: f"http://127.0.0.1:{sock.getsockname()[1]}" for slug, sock in listeners.items()}
    devnet = start_network(tmp / "chain", endpoints=endpoints)
    assert devnet.network is not None
    urls = devnet.network.rpc_urls
    try:
        with ExitStack() as stack:
            nodes = {}
            for slug in MEMBERS:
                fallbacks = [u for s, u in urls.items() if s != slug]
                chain = ChainSettings(
                    rpc_url=urls[slug],
                    fallback_urls=fallbacks,
                    manifest_path=tmp / slug / "deployment.json",
                    confirmations=CLIQUE_CONFIRMATIONS,
                    validator_votes="clique",
                    receipt_timeout_s=15,
                    rpc_timeout_s=3,
                )
                settings = node_settings(
                    tmp / slug,
                    f"sqlite:///{tmp / slug}.db",
                    devnet.manifest,
                    chain=chain,
                    run_outbox_worker=True,
                    outbox=OutboxSettings(**NETWORK_OUTBOX),  # type: ignore[arg-type]
                    public_url=endpoints[slug],
                )
                w3 = RpcBackend(urls[slug], timeout=3, fallbacks=fallbacks).w3
                node = build_node(settings, w3=w3, identity=devnet.identities[slug])
                nodes[slug] = stack.enter_context(RunningNode(node, listener=listeners[slug]))
            yield NetworkWorld(devnet, nodes)
    finally:
        devnet.close()


@pytest.fixture
def patient() -> LocalAccount:
    return Account.create()
