"""Two member nodes (A and B) on one anvil chain, each its own database and blob store; C is registered only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger_api.chain.backends import AnvilBackend, free_port
from ledger_api.chain.deployment import Consortium
from ledger_api.chain.transactions import TransactionSender
from ledger_api.consents.wire import terms_under_notice
from ledger_api.vocabulary import Purpose, bitset
from tests.utils.nodes import Identities, RunningNode, deploy, loopback_listener, start_node


@dataclass
class TwoNodes:
    backend: AnvilBackend
    ids: Identities
    a: RunningNode
    b: RunningNode
    patient: LocalAccount

    def grant_b(self, categories: int, purposes: int = bitset([Purpose.TREATMENT])) -> int:
        now = int(self.backend.w3.eth.get_block("latest")["timestamp"])
        consents = Consortium(
            self.backend.w3, self.a.node.manifest, TransactionSender(self.backend.w3, self.patient)
        ).consents
        terms = terms_under_notice(
            grantees=(self.ids.members["b"].address,),
            categories=categories,
            purposes=purposes,
            valid_from=now - 1,
            valid_until=now + 3600,
        )
        return consents.grant(self.patient.address, terms).event("ConsentGranted").args["consentId"]


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[TwoNodes]:
    listeners = {slug: loopback_listener() for slug in ("a", "b")}
    ports = {"c": free_port()} | {slug: sock.getsockname()[1] for slug, sock in listeners.items()}
    ids = Identities({slug: f"http://127.0.0.1:{port}" for slug, port in ports.items()})  # C: registered, never up
    with AnvilBackend() as backend, ExitStack() as stack:
        manifest = deploy(backend, ids, Account.create())
        nodes = {
            slug: stack.enter_context(
                start_node(
                    backend,
                    manifest,
                    ids.members[slug],
                    tmp_path / slug,
                    f"sqlite:///{tmp_path / slug}.db",
                    listener=listeners[slug],
                )
            )
            for slug in ("a", "b")
        }
        patient = Account.create()
        backend.fund(patient.address, 10**19)
        yield TwoNodes(backend, ids, nodes["a"], nodes["b"], patient)
