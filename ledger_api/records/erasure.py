"""Erasure under the records law: a record is kept until its retention end, then crypto-shredded.

Chinese medical-records rules keep outpatient records at least 15 years and inpatient records at
least 30 (医疗机构病历管理规定), and nobody may destroy them before (医疗纠纷预防和处理条例 Art. 15).
So each record carries its retention end, fixed at upload from its kind and last encounter
(``retention_end``), and:

- before it, the custodian's ``DELETE`` is refused (409 ``retention-period``, naming the day); the
  patient's becomes a restriction of the record instead (PIPL Art. 47: stop all processing but storage
  and security; see ``restriction``); an earlier destruction needs a legal order that a second person
  at the custodian and an auditor both sign (``legal_orders``);
- after it, anyone entitled may erase it, and the retention job (``RetentionSweep``) shreds what is left,
  each erasure logged and its entry anchored like any other.

Shredding: the record's key-encryption key is overwritten and removed, so that every copy of its sealed
keys the database keeps (rows, write-ahead log, free pages, backups) is noise; then the rows and
ciphertext are deleted.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from medledger_crypto import crypto_shred
from sqlmodel import col, select

from ledger_api.access.models import AccessEntry, AccessEntryBase
from ledger_api.access.service import record_access
from ledger_api.auth import policy
from ledger_api.auth.caller import Caller
from ledger_api.core.background import BackgroundLoop
from ledger_api.core.db import checkpoint, session_scope
from ledger_api.errors import Conflict, NotFound
from ledger_api.node import Node
from ledger_api.records import restriction
from ledger_api.records.blobs import blob_path
from ledger_api.records.models import Custody, Record, WrappedKey
from ledger_api.records.service import check_custody
from ledger_api.vocabulary import Purpose

#: records the retention job shreds per round (the rest wait for the next one)
SWEEP_BATCH = 100


def today() -> date:
    return datetime.now(UTC).date()


def erase(node: Node, caller: Caller, record_id: str) -> AccessEntry:
    """``DELETE /v1/records/{id}``: shreds a record past its retention end. Within it, the custodian is
    refused (409 naming the retention end) and the patient's request restricts the record instead."""
    with session_scope(node.engine) as session:
        record = session.get(Record, record_id)
    if record is None or record.erased_at is not None:
        raise NotFound(f"no record {record_id} at this member", code="record-not-found")
    role = policy.require(policy.CUSTODIAN_OR_PATIENT_ERASES, node, caller, record.patient)
    check_custody(node, record, writing=True)
    if record.retention_until is not None and today() <= record.retention_until:
        if role == "patient":
            return restriction.restrict_in_person(node, caller, record)
        raise Conflict(
            f"the law requires this record kept until {record.retention_until.isoformat()}; it cannot be "
            "erased before, except under a legal order countersigned at this hospital and by an auditor "
            "(POST /v1/records/{record_id}/erasure-orders)",
            code="retention-period",
            retention_until=record.retention_until.isoformat(),
        )
    return shred(node, record, requester=caller.address)


def shred(node: Node, record: Record, *, requester: str, reason: str | None = None) -> AccessEntry:
    """Crypto-shreds every version of ``record`` and logs it (``reason``: why the custodian did it unasked,
    e.g. ``retention-ended``, ``legal-order``; None: at the requester's request)."""
    fields = AccessEntryBase.custodian_action(
        record_id=record.id,
        version=record.latest_version,
        category=record.category,
        patient=record.patient,
        requester=requester,
        action="erase",
        purpose=int(Purpose.PATIENT_REQUEST if reason is None else Purpose.LEGAL),
        clinician=reason,
    )
    with node.access_lock, session_scope(node.engine) as session:
        keys = list(session.exec(select(WrappedKey).where(WrappedKey.record_id == record.id)))
        crypto_shred([bytearray(k.wrapped) for k in keys])
        for key in keys:
            session.delete(key)
        stored = session.get(Record, record.id)
        assert stored is not None
        stored.erased_at = datetime.now(UTC)
        session.add(stored)
        entry = record_access(session, member=node.address, fields=fields)
    # after the commit: a failed commit leaves the record as it was; a crash right here leaves a key
    # that the start-up sweep destroys (``sweep_orphans``: keys of erased and handed-away records)
    node.key_vault.shred(record.id)
    checkpoint(node.engine)  # SQLite: the deleted rows leave the write-ahead log too
    for version in range(1, record.latest_version + 1):
        blob_path(node, record.id, version).unlink(missing_ok=True)
    return entry


def shred_expired(node: Node, *, on: date | None = None, limit: int = SWEEP_BATCH) -> int:
    """Shreds up to ``limit`` records held here whose retention ended before ``on`` (default: today)."""
    cutoff = on or today()
    with session_scope(node.engine) as session:
        due = list(
            session.exec(
                select(Record)
                .where(
                    col(Record.retention_until) < cutoff,
                    col(Record.erased_at).is_(None),
                    Record.custody == Custody.HELD,
                )
                .order_by(col(Record.retention_until))
                .limit(limit)
            )
        )
    for record in due:
        shred(node, record, requester=node.address, reason="retention-ended")
    return len(due)


class RetentionSweep(BackgroundLoop):
    """Shreds records past their retention end, a batch per round, until none are left; then waits."""

    job = "retention"

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node

    def tick(self) -> int:
        shredded = shred_expired(self.node)
        if shredded:
            self._log.info("retention_shredded", records=shredded)
        return shredded

    def idle_interval_s(self) -> float:
        return self.node.settings.retention.sweep_interval_s
