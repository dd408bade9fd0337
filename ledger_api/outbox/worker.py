"""Sends outbox rows to the chain: idempotent, crash-safe, nonce-safe, with backoff.

For each due row, in id order:
1. If the chain already shows the row's effect (its kind's ``already_done``), mark it confirmed:
   a crash after sending never writes twice.
2. Otherwise build the call (its kind's ``transaction``, through the typed client's prepare-only
   mode), sign it, store it (raw bytes, hash, nonce) in the row, commit, and only then broadcast:
   a crash after this point re-broadcasts the very same transaction.
3. Wait for the receipt and mark the row confirmed with its block. Rows of unordered kinds (record
   anchors, relays) are all signed and broadcast first and their receipts awaited together at the end
   of the pass: on a network with real blocks a transaction takes a block or two to confirm, and one
   at a time a member could anchor no more than a record every block or two.
A chain outage leaves rows as they are with a growing backoff; a deterministic rejection by the
contract marks the row failed with the decoded reason. Ordered kinds go strictly in order, and
batchable kinds go as one transaction per run of their rows (rows of other kinds in between do not
end a run) when ``outbox.batch_size > 1``.

This module knows no domain: what each kind does is its ``OutboxKind`` (see ``outbox.kinds``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import takewhile
from typing import Any

import structlog
from sqlalchemy import update
from sqlmodel import col, select

from ledger_api.chain.contract import UnsignedTransaction
from ledger_api.chain.types import DecodedEvent, PreparedTransaction
from ledger_api.core.background import BackgroundLoop
from ledger_api.core.db import as_utc, session_scope
from ledger_api.errors import AnchorConflict, ChainUnavailable, ContractReverted, LedgerError, TransactionFailed
from ledger_api.node import Node
from ledger_api.outbox.kinds import IN_FLIGHT, ChainWrite, NotItsTurn, OutboxKind, OutboxState
from ledger_api.outbox.models import OutboxItem

log = structlog.get_logger("medledger.outbox")


class OutboxWorker(BackgroundLoop):
    """Background thread draining the outbox; ``run_once`` is the unit tests and crash drills call."""

    job = "outbox"

    def __init__(self, node: Node, kinds: Sequence[type[OutboxKind[Any]]]) -> None:
        super().__init__()
        self.node = node
        self.kinds: dict[str, OutboxKind[Any]] = {kind.name(): kind(node) for kind in kinds}
        self._unsigned = node.chain.prepare_only()
        #: broadcast this pass, receipts not yet awaited (see the module docstring, step 3)
        self._in_flight: list[tuple[OutboxKind[Any], list[OutboxItem], PreparedTransaction]] = []

    def tick(self) -> int:
        return self.run_once()

    def idle_interval_s(self) -> float:
        return self.node.settings.outbox.poll_interval_s

    # ------------------------------------------------------------------------------------------
    def run_once(self) -> int:
        """Processes the due rows once; returns how many were handled."""
        moment = datetime.now(UTC)
        window = max(200, self.node.settings.outbox.batch_size)
        with session_scope(self.node.engine) as session:
            # A light look first (a few columns, no payloads, no objects): the worker polls several
            # times a second, and most polls under load find only a batch of access entries that
            # is not due yet; loading hundreds of rows for that cost the API's requests their latency.
            heads = session.execute(
                select(
                    OutboxItem.id,
                    OutboxItem.kind,
                    OutboxItem.state,  # type: ignore[call-overload]
                    OutboxItem.next_attempt_at,
                    OutboxItem.created_at,
                )
                .where(col(OutboxItem.state).in_(IN_FLIGHT))
                .order_by(col(OutboxItem.id))
                .limit(window)
            ).all()
            # Strictly in order: nothing is tried while an earlier row waits out its backoff. A later
            # ordered row would be refused (and must not be failed for it), and a later transaction
            # would queue behind the earlier one's nonce anyway.
            ready = list(takewhile(lambda row: as_utc(row.next_attempt_at) <= moment, heads))
            if not self._anything_due(ready):
                return 0
            due = list(
                session.exec(
                    select(OutboxItem)
                    .where(col(OutboxItem.id).in_([row.id for row in ready]))
                    .order_by(col(OutboxItem.id))
                )
            )
        handled = 0
        grouped: set[int] = set()  # rows already sent in a batch of this pass
        for position, item in enumerate(due):
            if item.id in grouped:
                continue
            kind = self._kind(item)
            if kind is None:
                self._fail([item], f"no outbox kind {item.kind!r} is registered on this node")
                continue
            if self._batching(kind, item):
                group = _pending_run(due, position)
                group = group[: kind.run_length([kind.parse(i.payload) for i in group])]
                grouped.update(i.id for i in group)
                if not self._batch_due(group):
                    continue
                ok = self._guard(kind, group, partial(self._send_batch, kind, group))
            else:
                ok = self._guard(kind, [item], partial(self._process, kind, item))
            if not ok:
                break  # the chain is down or an ordered row is blocked: later rows would fail the same way
            handled += 1
        self._settle_in_flight()
        return handled

    def _settle_in_flight(self) -> None:
        """Awaits this pass's broadcast writes in order. When one cannot be confirmed (the chain is down),
        the later ones are not awaited too (each would cost the receipt timeout): they wait for the
        next pass, which broadcasts them again (the same bytes) and waits then."""
        in_flight, self._in_flight = self._in_flight, []
        for index, (kind, items, prepared) in enumerate(in_flight):
            if not self._guard(kind, items, partial(self._settle, kind, items, prepared)):
                for _, later, _ in in_flight[index + 1 :]:
                    self._retry(later, "waiting behind an earlier transaction of its pass")
                return

    def _kind(self, item: Any) -> OutboxKind[Any] | None:
        return self.kinds.get(item.kind)

    def _batching(self, kind: OutboxKind[Any] | None, item: Any) -> bool:
        return (
            kind is not None
            and kind.batchable
            and self.node.settings.outbox.batch_size > 1
            and item.state == OutboxState.PENDING
        )

    def _anything_due(self, rows: list[Any]) -> bool:
        """Whether ``run_once`` would act on any of these rows (id, kind, state, created_at): a row
        that is not waiting for its batch, or a batch that is full or old enough."""
        grouped: set[int] = set()
        for position, row in enumerate(rows):
            if row.id in grouped:
                continue
            if not self._batching(self._kind(row), row):
                return True
            group = _pending_run(rows, position)
            if self._batch_due(group):
                return True
            grouped.update(r.id for r in group)
        return False

    def _batch_due(self, group: list[Any]) -> bool:
        settings = self.node.settings.outbox
        oldest = min(i.created_at for i in group)
        age = (datetime.now(UTC) - oldest.replace(tzinfo=oldest.tzinfo or UTC)).total_seconds()
        return len(group) >= settings.batch_size or age >= settings.batch_delay_s

    def _guard(self, kind: OutboxKind[Any], items: list[OutboxItem], action: Callable[[], None]) -> bool:
        try:
            try:
                action()
            except ContractReverted:
                if not self._in_flight:
                    raise
                # it may build on a write of this pass still in flight (the revocation of a grant just
                # sent, a new version of a record just anchored): those first, then once more
                self._settle_in_flight()
                action()
            return True
        except NotItsTurn as exc:
            self._retry(items, str(exc))
            return False
        except ChainUnavailable as exc:
            self._retry(items, exc.detail)
            return False
        except ContractReverted as exc:
            try:
                done = kind.batch_done([kind.parse(i.payload) for i in items])
            except AnchorConflict as conflict:
                return self._conflict(kind, items, conflict)
            if done:
                self._confirm(kind, items, None)
                return True
            self._fail(items, exc.detail)
            return not kind.ordered  # a refused ordered row blocks the rows after it
        except AnchorConflict as conflict:
            return self._conflict(kind, items, conflict)
        except LedgerError as exc:
            self._retry(items, exc.detail)
            return False

    def _process(self, kind: OutboxKind[Any], item: OutboxItem) -> None:
        message = kind.parse(item.payload)
        if kind.ordered and kind.check_turn(message):
            self._confirm(kind, [item], None)
            return
        if item.state == OutboxState.SENT and item.tx_hash and item.raw_tx:
            prepared = PreparedTransaction(raw=item.raw_tx, tx_hash=item.tx_hash, nonce=item.nonce or 0)
            self._finish(kind, [item], prepared)
            return
        # an ordered row whose turn it is was just seen not on chain: no second look
        if not kind.ordered and kind.already_done(message):
            self._confirm(kind, [item], None)
            return
        prepared = self._sign(kind.transaction(self._unsigned, message))
        self._mark_sent([item], prepared)
        self.node.crash_drill.reached(f"outbox.after_sign.{item.kind}")
        self._finish(kind, [item], prepared)

    def _send_batch(self, kind: OutboxKind[Any], group: list[OutboxItem]) -> None:
        messages = [kind.parse(i.payload) for i in group]
        if kind.batch_done(messages):
            self._confirm(kind, group, None)
            return
        prepared = self._sign(kind.batch_transaction(self._unsigned, messages))
        self._mark_sent(group, prepared)
        self._finish(kind, group, prepared)

    def transaction(self, item: OutboxItem) -> UnsignedTransaction:
        """The unsigned transaction of one row, as its kind builds it (crash drills sign it by hand)."""
        kind = self.kinds[item.kind]
        return kind.transaction(self._unsigned, kind.parse(item.payload))

    def _sign(self, unsigned: UnsignedTransaction) -> PreparedTransaction:
        return self.node.sender.prepare(unsigned.function, contract=unsigned.contract)

    def _finish(self, kind: OutboxKind[Any], items: list[OutboxItem], prepared: PreparedTransaction) -> None:
        if self.node.sender.receipt(prepared.tx_hash) is None:
            try:
                self.node.sender.broadcast(prepared)
                self.node.crash_drill.reached(f"outbox.after_broadcast.{items[0].kind}")
            except TransactionFailed:
                # the stored transaction's nonce went to another one meanwhile: sign it anew
                self.node.sender.resync_nonce()
                self._update(items, state=OutboxState.PENDING, tx_hash=None, raw_tx=None, nonce=None)
                raise ChainUnavailable("stored transaction superseded; re-signing") from None
        if not kind.ordered:
            self._in_flight.append((kind, items, prepared))  # awaited at the end of the pass
            return
        self._settle(kind, items, prepared)

    def _settle(self, kind: OutboxKind[Any], items: list[OutboxItem], prepared: PreparedTransaction) -> None:
        try:
            # mined, and confirmed as deep as the network needs (a Clique fork can still move it)
            mined = self.node.sender.wait(prepared.tx_hash)
        except TransactionFailed as exc:
            self._settle_failure(kind, items, exc.detail)
            return
        self._remember_outcome(kind, items, mined.events)
        self._confirm(kind, items, mined.block_number)

    def _remember_outcome(self, kind: OutboxKind[Any], items: list[OutboxItem], events: list[DecodedEvent]) -> None:
        """What the receipt tells about a single row's write, when its kind keeps something (a relayed
        grant's consent id: the relay status shows it)."""
        if len(items) != 1:
            return
        updated: ChainWrite | None = kind.outcome(kind.parse(items[0].payload), events)
        if updated is not None:
            self._update(items, payload=updated.payload())

    def _settle_failure(self, kind: OutboxKind[Any], items: list[OutboxItem], reason: str) -> None:
        if kind.batch_done([kind.parse(i.payload) for i in items]):
            self._confirm(kind, items, None)
        else:
            self._fail(items, reason)

    # -- state transitions ---------------------------------------------------------------------
    def _update(self, items: list[OutboxItem], **changes: Any) -> None:
        """One UPDATE for the whole group (a batch is hundreds of rows), then mirrors it in memory."""
        with self.node.write_turns.turn(), session_scope(self.node.engine) as session:
            session.exec(update(OutboxItem).where(col(OutboxItem.id).in_([i.id for i in items])).values(**changes))
        for item in items:
            for key, value in changes.items():
                setattr(item, key, value)

    def _mark_sent(self, items: list[OutboxItem], prepared: PreparedTransaction) -> None:
        try:
            self._update(
                items, state=OutboxState.SENT, tx_hash=prepared.tx_hash, raw_tx=prepared.raw, nonce=prepared.nonce
            )
        except BaseException:
            # The nonce was taken for a transaction that will not be sent (not stored: it never is).
            # Without this, the next transaction would skip the nonce and wait forever behind the gap.
            self.node.sender.resync_nonce()
            raise

    def _confirm(self, kind: OutboxKind[Any], items: list[OutboxItem], block: int | None) -> None:
        self._update(
            items, state=OutboxState.CONFIRMED, block_number=block, confirmed_at=datetime.now(UTC), last_error=None
        )
        log.info("outbox_confirmed", ids=[i.id for i in items], kind=items[0].kind, block=block)
        kind.after_confirmed()

    def _retry(self, items: list[OutboxItem], reason: str) -> None:
        settings = self.node.settings.outbox
        attempts = items[0].attempts + 1
        delay = min(settings.backoff_max_s, settings.backoff_base_s * 2 ** min(attempts, 16))
        state = OutboxState.FAILED if attempts >= settings.max_attempts else items[0].state
        self._update(
            items,
            attempts=attempts,
            last_error=reason[:500],
            state=state,
            next_attempt_at=datetime.now(UTC) + timedelta(seconds=delay),
        )

    def _fail(self, items: list[OutboxItem], reason: str) -> None:
        self.node.sender.resync_nonce()
        self._update(items, state=OutboxState.FAILED, last_error=reason[:500], attempts=items[0].attempts + 1)
        log.warning("outbox_failed", ids=[i.id for i in items], kind=items[0].kind, reason=reason)

    def _conflict(self, kind: OutboxKind[Any], items: list[OutboxItem], conflict: AnchorConflict) -> bool:
        """Someone else's write sits where ours should be: an alert for the operator, and a failed item."""
        log.error("anchor_conflict_alert", kind=items[0].kind, detail=conflict.detail)
        self._fail(items, conflict.detail)
        return True


def _pending_run(rows: list[Any], start: int) -> list[Any]:
    """The pending rows of ``rows[start]``'s kind from ``start`` on, in order, up to the first of that kind
    that is not pending. Rows of other kinds in between do not end the run: their writes are independent
    (an access entry's turn depends only on the entries before it), and under load the entries of reads
    and uploads interleave with record anchors row by row, so runs that stopped at them would be batches
    of one."""
    kind = rows[start].kind
    same = [r for r in rows[start:] if r.kind == kind]
    return list(takewhile(lambda r: r.state == OutboxState.PENDING, same))
