"""What the outbox knows of a chain write: a typed message and the kind that sends it.

The outbox itself knows no domain. Each domain declares, next to the code that enqueues them, its
messages (``ChainWrite`` subclasses: one per chain write, the same object from the request to the
transaction, stored as the row's payload) and the ``OutboxKind`` that tells the sender how to build
the call (through the typed client's prepare-only mode), how to see that it is already on chain,
what to do once it is confirmed, and whether consecutive rows may go as one transaction. The app
hands the list of kinds to the worker (``ledger_api.main.OUTBOX_KINDS``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from ledger_api.chain.contract import UnsignedTransaction
from ledger_api.chain.deployment import Consortium
from ledger_api.chain.types import DecodedEvent
from ledger_api.node import Node


class OutboxState(StrEnum):
    """A row's way to the chain: pending -> sent -> confirmed, or failed."""

    PENDING = "pending"
    SENT = "sent"
    CONFIRMED = "confirmed"
    FAILED = "failed"


#: the states in which a row is still on its way
IN_FLIGHT = (OutboxState.PENDING, OutboxState.SENT)


class ChainWrite(BaseModel):
    """One chain write: a subclass per write, named by ``kind`` (the outbox row's ``kind`` column)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: ClassVar[str]

    def payload(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


M = TypeVar("M", bound=ChainWrite)


class NotItsTurn(Exception):
    """An ordered row whose predecessor has not landed yet: it waits, and so do the rows after it."""


class OutboxKind(Generic[M]):
    """How the sender handles one kind of chain write; one instance per node's worker."""

    message: ClassVar[type[ChainWrite]]
    #: rows of this kind must land in order: one the contract refuses blocks the ones after it
    ordered: ClassVar[bool] = False
    #: consecutive rows of this kind may go as one transaction (``batch_transaction``), when
    #: ``outbox.batch_size > 1``
    batchable: ClassVar[bool] = False

    def __init__(self, node: Node) -> None:
        self.node = node

    @classmethod
    def name(cls) -> str:
        return cls.message.kind

    def parse(self, payload: dict[str, Any]) -> M:
        return self.message.model_validate(payload)  # type: ignore[return-value]

    def transaction(self, chain: Consortium[UnsignedTransaction], message: M) -> UnsignedTransaction:
        """The contract call, built through the typed client in prepare-only mode."""
        raise NotImplementedError

    def already_done(self, message: M) -> bool:
        """Whether the chain already shows this write's effect (a crash after sending never sends it
        twice). May raise ``AnchorConflict`` when the chain shows something else in its place."""
        return False

    def check_turn(self, message: M) -> bool:
        """For ordered kinds, instead of ``already_done`` before sending: True if already on chain; raises
        ``NotItsTurn`` while an earlier one waits."""
        return False

    def outcome(self, message: M, events: list[DecodedEvent]) -> M | None:
        """The message to store once mined, when the receipt tells something worth keeping; else None."""
        return None

    def after_confirmed(self) -> None:
        """Runs after rows of this kind were marked confirmed (in their own transaction)."""

    # -- batching (batchable kinds) --------------------------------------------------------------
    def run_length(self, messages: list[M]) -> int:
        """How many of these pending rows (in id order) may go together, from the first."""
        return 1

    def batch_transaction(self, chain: Consortium[UnsignedTransaction], messages: list[M]) -> UnsignedTransaction:
        raise NotImplementedError

    def batch_done(self, messages: list[M]) -> bool:
        return all(self.already_done(m) for m in messages)
