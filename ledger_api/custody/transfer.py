"""Custody moving on chain: one ``transferCustody`` per batch of handed-over records, through the outbox.

Once the chain confirms a transfer, ``finalise`` crypto-shreds this node's wrapped keys and deletes
the ciphertexts of its records: the successor is now the only holder. It runs when the outbox
confirms a transfer, and again when a handover starts (a crash may have come in between).
"""

from __future__ import annotations

from typing import Any, ClassVar

from medledger_crypto import crypto_shred
from sqlmodel import select

from ledger_api.chain.calldata import checksum_address
from ledger_api.chain.contract import UnsignedTransaction
from ledger_api.chain.deployment import Consortium
from ledger_api.core.db import session_scope
from ledger_api.node import Node
from ledger_api.outbox.kinds import ChainWrite, OutboxKind, OutboxState
from ledger_api.outbox.models import OutboxItem
from ledger_api.records.blobs import blob_path
from ledger_api.records.models import Custody, CustodyHandover, HandoverState, Record, WrappedKey


class CustodyTransfer(ChainWrite):
    """Records (ids, hex) whose custody moves to ``successor``."""

    kind: ClassVar[str] = "custody_transfer"
    record_ids: list[str]
    successor: str


class CustodyTransferKind(OutboxKind[CustodyTransfer]):
    message = CustodyTransfer

    def transaction(self, chain: Consortium[UnsignedTransaction], message: CustodyTransfer) -> UnsignedTransaction:
        return chain.records.transfer_custody([bytes.fromhex(r) for r in message.record_ids], message.successor)

    def already_done(self, message: CustodyTransfer) -> bool:
        successor = checksum_address(message.successor)
        records = self.node.chain.records
        return all(records.record(bytes.fromhex(r)).custodian == successor for r in message.record_ids)

    def after_confirmed(self) -> None:
        finalise(self.node)


KINDS: tuple[type[OutboxKind[Any]], ...] = (CustodyTransferKind,)


def finalise(node: Node) -> int:
    """Records whose transfer the chain confirmed: crypto-shred our keys, delete the ciphertexts."""
    with session_scope(node.engine) as session:
        handing = {r.id: r for r in session.exec(select(Record).where(Record.custody == Custody.HANDING))}
        if not handing:
            return 0
        confirmed: set[str] = set()
        for item in session.exec(
            select(OutboxItem).where(OutboxItem.kind == CustodyTransfer.kind, OutboxItem.state == OutboxState.CONFIRMED)
        ):
            confirmed.update(r for r in CustodyTransfer.model_validate(item.payload).record_ids if r in handing)
        done = []
        for record_id in sorted(confirmed):
            keys = list(session.exec(select(WrappedKey).where(WrappedKey.record_id == record_id)))
            crypto_shred([bytearray(k.wrapped) for k in keys])
            for key in keys:
                session.delete(key)
            record = handing[record_id]
            record.custody = Custody.TRANSFERRED
            session.add(record)
            done.append(record)
        if done:  # counted in the same commit: the handover sees "none left handing" only with its count
            running = session.exec(
                select(CustodyHandover).where(CustodyHandover.state == HandoverState.RUNNING)
            ).first()
            if running is not None:
                running.records_transferred += len(done)
                session.add(running)
    for record in done:  # after the commit (a crash in between: the start-up sweep destroys the keys)
        node.key_vault.shred(record.id)
        for version in range(1, record.latest_version + 1):
            blob_path(node, record.id, version).unlink(missing_ok=True)
    return len(done)
