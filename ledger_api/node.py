"""Everything one member node runs on, built once from the settings and held by the app.

No global state: the app keeps one ``Node`` in ``app.state.node``; tests build their own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from anyio import CapacityLimiter
from medledger_crypto import MemberIdentity, load_passphrase
from sqlalchemy.engine import Engine
from web3 import Web3

from ledger_api.chain.backends import RpcBackend
from ledger_api.chain.deployment import Consortium, DeploymentManifest
from ledger_api.chain.transactions import TransactionSender
from ledger_api.chain.types import Receipt
from ledger_api.core.config import Settings
from ledger_api.core.crash_drill import CrashDrill
from ledger_api.core.db import WriteTurns, make_engine, migrate
from ledger_api.core.key_vault import KeyVault
from ledger_api.core.rate_limit import InFlightSlots, TokenBuckets

T = TypeVar("T")


@dataclass
class Node:
    """One member hospital's node: its identity, database, chain view and blob store."""

    settings: Settings
    identity: MemberIdentity
    engine: Engine
    w3: Web3
    manifest: DeploymentManifest
    sender: TransactionSender
    chain: Consortium[Receipt] = field(init=False)
    access_lock: threading.Lock = field(default_factory=threading.Lock)
    #: kept-alive HTTP clients to other members' nodes, by member account (see consortium.peers)
    peer_clients: dict[str, Any] = field(default_factory=dict)
    peer_lock: threading.Lock = field(default_factory=threading.Lock)
    crash_drill: CrashDrill = field(init=False)
    #: one write transaction at a time on a SQLite file, across this node's processes (see core.db)
    write_turns: WriteTurns = field(init=False)
    #: the threads per-request chain and database work runs in (``settings.limits.request_threads``)
    request_threads: CapacityLimiter = field(init=False)
    #: consortium fan-outs in flight (see consortium.peers.ask_every_member)
    fanout_slots: InFlightSlots = field(init=False)
    #: per-record key-encryption keys, destroyed at erasure (see core.key_vault)
    key_vault: KeyVault = field(init=False)
    #: anonymous sign-in challenges per client address (see core.rate_limit)
    challenge_buckets: TokenBuckets = field(init=False)
    #: what a domain keeps per node and makes on first use (``part``): the access-log writer, the nonce book
    _parts: dict[type, Any] = field(default_factory=dict)
    _parts_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.chain = Consortium(self.w3, self.manifest, self.sender)
        self.crash_drill = CrashDrill(self.settings.crash_at, self.settings.crash_after)
        self.write_turns = WriteTurns(self.settings.resolved_database_url)
        self.request_threads = CapacityLimiter(self.settings.limits.request_threads)
        self.key_vault = KeyVault(self.settings.vault_dir)
        self.fanout_slots = InFlightSlots(
            per_key=self.settings.peers.fanouts_per_key, total=self.settings.peers.max_fanouts
        )
        auth = self.settings.auth
        self.challenge_buckets = TokenBuckets(
            rate_per_s=auth.challenge_rate_per_minute / 60, burst=auth.challenge_burst
        )
        self.settings.blob_dir.mkdir(parents=True, exist_ok=True)

    def part(self, kind: type[T], make: Callable[[Node], T]) -> T:
        """This node's one ``kind`` (made by ``make`` on first use). Why: the access-log writer and the
        nonce book are state of their domains, which build them; the node only keeps them for its
        lifetime, so it imports no domain (the layers run one way)."""
        with self._parts_lock:
            existing = self._parts.get(kind)
            if existing is None:
                existing = self._parts[kind] = make(self)
            return existing

    def close(self) -> None:
        """Closes the node's database connections (its own database and what its parts opened, such as
        the nonce file on SQLite)."""
        with self._parts_lock:
            parts, self._parts = list(self._parts.values()), {}
        for part in parts:
            close = getattr(part, "close", None)
            if close is not None:
                close()
        self.engine.dispose()

    @property
    def address(self) -> str:
        return self.identity.address

    @property
    def chain_id(self) -> int:
        return self.manifest.chain_id

    @property
    def blob_dir(self) -> Path:
        return self.settings.blob_dir


def build_node(settings: Settings, *, w3: Web3 | None = None, identity: MemberIdentity | None = None) -> Node:
    """Loads identity, opens and migrates the database, connects to the chain (lazily: no call yet)."""
    if identity is None:
        identity = MemberIdentity.load(settings.keystore_path, load_passphrase(file=settings.keystore_passphrase_file))
    manifest = DeploymentManifest.load(settings.chain.manifest_path)
    if w3 is None:
        chain = settings.chain
        w3 = RpcBackend(chain.rpc_url, timeout=chain.rpc_timeout_s, fallbacks=chain.fallback_urls).w3
    engine = make_engine(settings.resolved_database_url)
    migrate(engine)
    sender = TransactionSender(
        w3,
        identity.account,
        chain_id=manifest.chain_id,
        confirmations=settings.chain.confirmations,
        receipt_timeout=settings.chain.receipt_timeout_s,
        gas_price=settings.chain.gas_price_wei,
    )
    return Node(settings=settings, identity=identity, engine=engine, w3=w3, manifest=manifest, sender=sender)
