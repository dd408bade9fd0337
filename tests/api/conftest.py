"""API fixtures: a consortium with real member keys; a fresh node (database + blob store) per test.

The API suite runs twice: on eth-tester with SQLite, and on anvil with PostgreSQL, so both chain
backends and both SQL dialects are exercised through real HTTP.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger_api.chain.backends import AnvilBackend, ChainBackend, EthTesterBackend
from ledger_api.chain.deployment import Consortium, DeploymentManifest
from ledger_api.chain.transactions import TransactionSender
from ledger_api.core.config import RetentionSettings
from tests.utils.nodes import Identities, RunningNode, database, deploy, start_node
from tests.utils.webhooks import Receiver, serve_receiver

COMBOS = [("eth_tester", "sqlite"), ("anvil", "postgresql")]


@dataclass
class World:
    """One test's consortium: the chain, the identities, node A running, and helpers."""

    backend: ChainBackend
    manifest: DeploymentManifest
    ids: Identities
    node: RunningNode
    patient: LocalAccount
    other_patient: LocalAccount
    stranger: LocalAccount
    db_kind: str
    #: node A's records officer "officer-li" (``retention.officers``): countersigns legal erasure orders
    officer: LocalAccount | None = None

    def chain_as(self, account: LocalAccount) -> Consortium:
        return Consortium(self.backend.w3, self.manifest, TransactionSender(self.backend.w3, account))

    @property
    def a(self):
        return self.ids.members["a"]

    @property
    def b(self):
        return self.ids.members["b"]

    @property
    def c(self):
        return self.ids.members["c"]


@pytest.fixture(scope="session", params=COMBOS, ids=lambda c: f"{c[0]}+{c[1]}")
def consortium(request: pytest.FixtureRequest) -> Iterator[tuple[ChainBackend, DeploymentManifest, Identities, str]]:
    chain_kind, db_kind = request.param
    backend = EthTesterBackend() if chain_kind == "eth_tester" else AnvilBackend()
    identities = Identities()
    try:
        yield backend, deploy(backend, identities, Account.create()), identities, db_kind
    finally:
        backend.close()


@pytest.fixture
def world(consortium, tmp_path: Path) -> Iterator[World]:
    backend, manifest, identities, db_kind = consortium
    snapshot = backend.snapshot()
    officer = Account.create()
    retention = RetentionSettings(officers={"officer-li": officer.address})
    try:
        with (
            database(db_kind, tmp_path) as url,
            start_node(backend, manifest, identities.members["a"], tmp_path, url, retention=retention) as node,
        ):
            patients = [Account.create() for _ in range(3)]
            for p in patients:
                backend.fund(p.address, 10**19)
            yield World(backend, manifest, identities, node, *patients, db_kind=db_kind, officer=officer)
    finally:
        backend.revert(snapshot)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on a loopback port (see tests.utils.webhooks)."""
    with serve_receiver() as state:
        yield state
