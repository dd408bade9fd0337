"""Sends outbox rows to the chain: idempotent, crash-safe, nonce-safe, with backoff.

For each due row, in id order:
1. If the chain already shows the row's effect (record anchored with this hash, sequence
   reached, consent revoked ...), mark it confirmed: a crash after sending never anchors twice.
2. Otherwise sign the transaction, store it (raw bytes, hash, nonce) in the row, commit, and
   only then broadcast: a crash after this point re-broadcasts the very same transaction.
3. Wait for the receipt and mark the row confirmed with its block.
A chain outage leaves rows as they are with a growing backoff; a deterministic rejection by the
contract marks the row failed with the decoded reason. Access entries go in sequence order;
with ``outbox.batch_size > 1`` consecutive entries are anchored as one RFC 6962 Merkle root over
the member's whole log.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from itertools import takewhile
from typing import Any

import structlog
from medledger_crypto import merkle
from sqlalchemy import update
from sqlmodel import col, select
from web3 import Web3

from ledger_api.access.models import AccessEntry
from ledger_api.auth.service import purge_expired
from ledger_api.chain.clients import ConsentState, GrantTerms
from ledger_api.chain.transactions import DecodedEvent, PreparedTransaction, decode_events
from ledger_api.core.background import BackgroundLoop
from ledger_api.core.db import as_utc, session_scope
from ledger_api.errors import AnchorConflict, ChainUnavailable, ContractReverted, LedgerError, TransactionFailed
from ledger_api.node import Node
from ledger_api.outbox.models import OutboxItem
from ledger_api.records.service import BASIS_CODES

log = structlog.get_logger("medledger.outbox")


class OutboxWorker(BackgroundLoop):
    """Background thread draining the outbox; ``run_once`` is the unit tests and crash drills call."""

    job = "outbox"

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node
        self._last_purge = 0.0
        self._frontier: merkle.RootBuilder | None = None

    def tick(self) -> int:
        busy = self.run_once()
        if time.monotonic() - self._last_purge > 60:
            with session_scope(self.node.engine) as session:
                purge_expired(self.node, session)
            self._last_purge = time.monotonic()
        return busy

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
                .where(col(OutboxItem.state).in_(["pending", "sent"]))
                .order_by(col(OutboxItem.id))
                .limit(window)
            ).all()
            # Strictly in order: nothing is tried while an earlier row waits out its backoff. A later
            # access entry would be refused for its sequence (and must not be failed for it), and a
            # later transaction would queue behind the earlier one's nonce anyway.
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
        index = 0
        while index < len(due):
            item = due[index]
            if item.kind == "access_entry" and self.node.settings.outbox.batch_size > 1 and item.state == "pending":
                group = [i for i in due[index:] if i.kind == "access_entry" and i.state == "pending"]
                group = _consecutive(group)
                if not self._batch_due(group):
                    index += len(group)
                    continue
                ok = self._guard(group, lambda g=group: self._send_batch(g))
                index += len(group)
            else:
                ok = self._guard([item], lambda i=item: self._process(i))
                index += 1
            if not ok:
                break  # the chain is down or a sequence is blocked: later rows would fail the same way
            handled += 1
        return handled

    def _anything_due(self, rows: list[Any]) -> bool:
        """Whether ``run_once`` would act on any of these rows (id, kind, state, created_at): a row
        that is not an access entry waiting for its batch, or a batch that is full or old enough."""
        batching = self.node.settings.outbox.batch_size > 1
        index = 0
        while index < len(rows):
            row = rows[index]
            if not (batching and row.kind == "access_entry" and row.state == "pending"):
                return True
            group = list(takewhile(lambda r: r.kind == "access_entry" and r.state == "pending", rows[index:]))
            if self._batch_due(group):
                return True
            index += len(group)
        return False

    def _batch_due(self, group: list[Any]) -> bool:
        settings = self.node.settings.outbox
        oldest = min(i.created_at for i in group)
        age = (datetime.now(UTC) - oldest.replace(tzinfo=oldest.tzinfo or UTC)).total_seconds()
        return len(group) >= settings.batch_size or age >= settings.batch_delay_s

    def _guard(self, items: list[OutboxItem], action: Any) -> bool:
        try:
            action()
            return True
        except ChainUnavailable as exc:
            self._retry(items, exc.detail)
            return False
        except ContractReverted as exc:
            try:
                done = all(self._already_done(i) for i in items)
            except AnchorConflict as conflict:
                return self._conflict(items, conflict)
            if done:
                self._confirm(items, None)
                return True
            self._fail(items, exc.detail)
            return items[0].kind != "access_entry"  # a stuck sequence blocks the entries after it
        except AnchorConflict as conflict:
            return self._conflict(items, conflict)
        except LedgerError as exc:
            self._retry(items, exc.detail)
            return False

    def _process(self, item: OutboxItem) -> None:
        if item.kind == "access_entry":
            anchored = self.node.chain.trail.last_sequence(self.node.address)
            if anchored >= item.payload["sequence"]:
                self._confirm([item], None)
                return
            if anchored < item.payload["sequence"] - 1:  # an earlier entry has not landed: not this one's turn
                raise ChainUnavailable(f"access entry {item.payload['sequence']} waits for entry {anchored + 1}")
        if item.state == "sent" and item.tx_hash and item.raw_tx:
            prepared = PreparedTransaction(raw=item.raw_tx, tx_hash=item.tx_hash, nonce=item.nonce or 0)
            self._finish([item], prepared)
            return
        if self._already_done(item):
            self._confirm([item], None)
            return
        prepared = self.node.sender.prepare(self._call(item), contract=_CONTRACT[item.kind])
        self._mark_sent([item], prepared)
        self.node.crash_drill.reached(f"outbox.after_sign.{item.kind}")
        self._finish([item], prepared)

    def _send_batch(self, group: list[OutboxItem]) -> None:
        first, last = group[0].payload["sequence"], group[-1].payload["sequence"]
        if self.node.chain.trail.last_sequence(self.node.address) >= last:
            self._confirm(group, None)
            return
        builder = self._log_root_builder(last)
        fn = self.node.chain.trail.contract.functions.anchorAccessBatch(builder.root(), first, last)
        prepared = self.node.sender.prepare(fn, contract="AccessTrail")
        self._mark_sent(group, prepared)
        self._finish(group, prepared)

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

    def _finish(self, items: list[OutboxItem], prepared: PreparedTransaction) -> None:
        receipt = self.node.sender.receipt(prepared.tx_hash)
        if receipt is None:
            try:
                self.node.sender.broadcast(prepared)
                self.node.crash_drill.reached(f"outbox.after_broadcast.{items[0].kind}")
            except TransactionFailed:
                # the stored transaction's nonce went to another one meanwhile: sign it anew
                self.node.sender.resync_nonce()
                self._update(items, state="pending", tx_hash=None, raw_tx=None, nonce=None)
                raise ChainUnavailable("stored transaction superseded; re-signing") from None
            try:
                mined = self.node.sender.wait(prepared.tx_hash)
            except TransactionFailed as exc:
                self._settle_failure(items, exc.detail)
                return
            self._remember_outcome(items, mined.events)
            self._confirm(items, mined.block_number)
        elif receipt["status"] != 1:
            self._settle_failure(items, f"transaction {prepared.tx_hash} reverted")
        else:
            self._remember_outcome(items, decode_events(self.node.w3, receipt["logs"]))
            self._confirm(items, receipt["blockNumber"])

    def _remember_outcome(self, items: list[OutboxItem], events: list[DecodedEvent]) -> None:
        """A relayed grant's consent id, from its ConsentGranted event: the relay status shows it."""
        if items[0].kind != "consent_grant":
            return
        granted = [e for e in events if e.name == "ConsentGranted"]
        if len(items) == 1 and granted:
            self._update(items, payload={**items[0].payload, "consent_id": str(granted[0].args["consentId"])})

    def _settle_failure(self, items: list[OutboxItem], reason: str) -> None:
        if all(self._already_done(i) for i in items):
            self._confirm(items, None)
        else:
            self._fail(items, reason)

    # -- state transitions ---------------------------------------------------------------------
    def _update(self, items: list[OutboxItem], **changes: Any) -> None:
        """One UPDATE for the whole group (a batch is hundreds of rows), then mirrors it in memory."""
        with self.node.write_turns.turn(), session_scope(self.node.engine) as session:
            session.exec(
                update(OutboxItem)
                .where(col(OutboxItem.id).in_([i.id for i in items]))  # type: ignore[call-overload]
                .values(**changes)
            )
        for item in items:
            for key, value in changes.items():
                setattr(item, key, value)

    def _mark_sent(self, items: list[OutboxItem], prepared: PreparedTransaction) -> None:
        try:
            self._update(items, state="sent", tx_hash=prepared.tx_hash, raw_tx=prepared.raw, nonce=prepared.nonce)
        except BaseException:
            # The nonce was taken for a transaction that will not be sent (not stored: it never is).
            # Without this, the next transaction would skip the nonce and wait forever behind the gap.
            self.node.sender.resync_nonce()
            raise

    def _confirm(self, items: list[OutboxItem], block: int | None) -> None:
        self._update(items, state="confirmed", block_number=block, confirmed_at=datetime.now(UTC), last_error=None)
        log.info("outbox_confirmed", ids=[i.id for i in items], kind=items[0].kind, block=block)
        if items[0].kind == "custody_transfer":
            from ledger_api.custody.handover import finalise  # the handover's last step (custody imports us)

            finalise(self.node)

    def _retry(self, items: list[OutboxItem], reason: str) -> None:
        settings = self.node.settings.outbox
        attempts = items[0].attempts + 1
        delay = min(settings.backoff_max_s, settings.backoff_base_s * 2 ** min(attempts, 16))
        state = "failed" if attempts >= settings.max_attempts else items[0].state
        self._update(
            items,
            attempts=attempts,
            last_error=reason[:500],
            state=state,
            next_attempt_at=datetime.now(UTC) + timedelta(seconds=delay),
        )

    def _fail(self, items: list[OutboxItem], reason: str) -> None:
        self.node.sender.resync_nonce()
        self._update(items, state="failed", last_error=reason[:500], attempts=items[0].attempts + 1)
        log.warning("outbox_failed", ids=[i.id for i in items], kind=items[0].kind, reason=reason)

    # -- what each kind does on chain ------------------------------------------------------------
    def _call(self, item: OutboxItem) -> Any:
        p, fns = item.payload, self.node.chain
        if item.kind == "anchor_record":
            return fns.records.contract.functions.anchorRecord(
                bytes.fromhex(p["record_id"]),
                Web3.to_checksum_address(p["patient"]),
                p["category"],
                bytes.fromhex(p["content_hash"]),
            )
        if item.kind == "anchor_version":
            return fns.records.contract.functions.anchorVersion(
                bytes.fromhex(p["record_id"]), p["version"], bytes.fromhex(p["content_hash"])
            )
        if item.kind == "access_entry":
            return fns.trail.contract.functions.recordAccess(
                bytes.fromhex(p["entry_hash"]),
                p["sequence"],
                Web3.to_checksum_address(p["requester"]),
                Web3.to_checksum_address(p["patient"]),
                bytes.fromhex(p["record_id"]),
                p["purpose"],
                int(BASIS_CODES[p["basis"]]),
                bytes.fromhex(p["authorization"] or "00" * 32),
            )
        if item.kind == "custody_transfer":
            return fns.records.contract.functions.transferCustody(
                [bytes.fromhex(r) for r in p["record_ids"]], Web3.to_checksum_address(p["successor"])
            )
        signature = (p["v"], bytes.fromhex(p["r"]), bytes.fromhex(p["s"]))
        if item.kind == "consent_grant":
            terms = GrantTerms.model_validate(p["terms"])
            return fns.consents.contract.functions.grantBySig(
                Web3.to_checksum_address(p["patient"]), terms.as_tuple(), p["deadline"], *signature
            )
        if item.kind == "consent_revoke":
            return fns.consents.contract.functions.revokeBySig(int(p["consent_id"]), p["deadline"], *signature)
        if item.kind == "delegate_change":
            return fns.consents.contract.functions.setDelegateBySig(
                Web3.to_checksum_address(p["patient"]),
                Web3.to_checksum_address(p["delegate"]),
                p["appointed"],
                p["deadline"],
                *signature,
            )
        raise ValueError(f"unknown outbox kind {item.kind}")

    def _conflict(self, items: list[OutboxItem], conflict: AnchorConflict) -> bool:
        """Someone else's anchor sits under our record id: an alert for the operator, and a failed item."""
        log.error("anchor_conflict_alert", kind=items[0].kind, detail=conflict.detail)
        self._fail(items, conflict.detail)
        return True

    def _already_done(self, item: OutboxItem) -> bool:
        p, chain = item.payload, self.node.chain
        if item.kind in ("anchor_record", "anchor_version"):
            record_id = bytes.fromhex(p["record_id"])
            try:
                info = chain.records.record(record_id)
                anchored = chain.records.content_hash(record_id, p["version"])
            except ContractReverted:
                return False  # not there (yet): send it
            ours = (
                info.custodian == self.node.address
                and info.patient == Web3.to_checksum_address(p["patient"])
                and info.category == int(p["category"])
                and anchored.hex() == p["content_hash"]
            )
            if not ours:
                raise AnchorConflict(
                    f"record {p['record_id']} version {p['version']} is anchored on chain with "
                    "another custodian, patient, category or hash than this node stored"
                )
            return True
        if item.kind == "access_entry":
            return chain.trail.last_sequence(self.node.address) >= p["sequence"]
        if item.kind == "custody_transfer":
            successor = Web3.to_checksum_address(p["successor"])
            return all(chain.records.record(bytes.fromhex(r)).custodian == successor for r in p["record_ids"])
        if item.kind == "consent_revoke":
            try:
                return chain.consents.consent(int(p["consent_id"])).state == ConsentState.REVOKED
            except ContractReverted:
                return False
        if item.kind == "delegate_change":
            return (
                chain.consents.is_delegate(p["patient"], p["delegate"]) == p["appointed"]
                and chain.consents.nonce(p["patient"]) > p["nonce"]
            )
        return False  # consent_grant: its landing is known only from its own receipt (state "sent")


def _consecutive(items: list[OutboxItem]) -> list[OutboxItem]:
    run = items[:1]
    for item in items[1:]:
        if item.payload["sequence"] != run[-1].payload["sequence"] + 1:
            break
        run.append(item)
    return run


_CONTRACT = {
    "anchor_record": "RecordRegistry",
    "anchor_version": "RecordRegistry",
    "access_entry": "AccessTrail",
    "consent_grant": "ConsentRegistry",
    "consent_revoke": "ConsentRegistry",
    "delegate_change": "ConsentRegistry",
    "custody_transfer": "RecordRegistry",
}
