"""The access trail on chain: each access-log entry's hash, in sequence order, through the outbox.

Entries are ordered: the AccessTrail accepts sequence n only after n - 1, so an entry waits for
its predecessor, and one the contract refuses blocks those after it. With ``outbox.batch_size > 1``
consecutive entries go as one RFC 6962 Merkle root over the member's whole log (``anchorAccessBatch``).
"""

from __future__ import annotations

from typing import ClassVar

from medledger_crypto import merkle
from sqlmodel import col, select

from ledger_api.access.models import AccessEntry
from ledger_api.chain.contract import UnsignedTransaction
from ledger_api.chain.deployment import Consortium
from ledger_api.core.db import session_scope
from ledger_api.node import Node
from ledger_api.outbox.kinds import ChainWrite, NotItsTurn, OutboxKind


class AccessEntryAnchor(ChainWrite):
    """One access-log entry's hash at its sequence: all the chain learns of an access."""

    kind: ClassVar[str] = "access_entry"
    sequence: int
    entry_hash: str


class AccessEntryKind(OutboxKind[AccessEntryAnchor]):
    message = AccessEntryAnchor
    ordered = True
    batchable = True

    def __init__(self, node: Node) -> None:
        super().__init__(node)
        self._frontier: merkle.RootBuilder | None = None

    def _anchored(self) -> int:
        return self.node.chain.trail.last_sequence(self.node.address)

    def transaction(self, chain: Consortium[UnsignedTransaction], message: AccessEntryAnchor) -> UnsignedTransaction:
        return chain.trail.record_access(bytes.fromhex(message.entry_hash), message.sequence)

    def already_done(self, message: AccessEntryAnchor) -> bool:
        return self._anchored() >= message.sequence

    def check_turn(self, message: AccessEntryAnchor) -> bool:
        anchored = self._anchored()
        if anchored >= message.sequence:
            return True
        if anchored < message.sequence - 1:  # an earlier entry has not landed: not this one's turn
            raise NotItsTurn(f"access entry {message.sequence} waits for entry {anchored + 1}")
        return False

    def run_length(self, messages: list[AccessEntryAnchor]) -> int:
        """Entries whose sequences follow one another without a gap."""
        length = 1
        while length < len(messages) and messages[length].sequence == messages[length - 1].sequence + 1:
            length += 1
        return length

    def batch_done(self, messages: list[AccessEntryAnchor]) -> bool:
        return self._anchored() >= messages[-1].sequence

    def batch_transaction(
        self, chain: Consortium[UnsignedTransaction], messages: list[AccessEntryAnchor]
    ) -> UnsignedTransaction:
        first, last = messages[0].sequence, messages[-1].sequence
        return chain.trail.anchor_batch(self._log_root_builder(last).root(), first, last)

    def _log_root_builder(self, last: int) -> merkle.RootBuilder:
        """The Merkle frontier of this member's log 1..last, advanced from the one kept since the
        last batch (entries never change, so it stays valid): each batch costs its own entries,
        not the whole log again. After a restart the first batch rebuilds it from the database.
        """
        builder = self._frontier if self._frontier is not None and self._frontier.size <= last else None
        builder = builder or merkle.RootBuilder()
        with session_scope(self.node.engine) as session:
            hashes = session.exec(
                select(AccessEntry.entry_hash)
                .where(AccessEntry.sequence > builder.size, AccessEntry.sequence <= last)
                .order_by(col(AccessEntry.sequence))
            )
            for entry_hash in hashes:
                builder.append(merkle.leaf_hash(bytes.fromhex(entry_hash)))
        self._frontier = builder
        return builder


KINDS: tuple[type[OutboxKind[AccessEntryAnchor]], ...] = (AccessEntryKind,)
