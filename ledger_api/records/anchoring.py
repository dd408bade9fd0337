"""A record version's anchor on chain: the content hash of its ciphertext, written through the outbox.

Version 1 mints the record on chain (``anchorRecord``: its subject commitment, custodian = this node);
later versions add a hash (``anchorVersion``). Either is already done when the chain holds exactly
this node's record with this subject and hash; anything else under our record id is an ``AnchorConflict``.
The outbox row holds only what goes on chain: the commitment, never the patient or category.
"""

from __future__ import annotations

from typing import ClassVar

from ledger_api.chain.contract import UnsignedTransaction
from ledger_api.chain.deployment import Consortium
from ledger_api.errors import AnchorConflict, ContractReverted
from ledger_api.outbox.kinds import ChainWrite, OutboxKind


class RecordAnchor(ChainWrite):
    """One version's content hash (hex), with the record's subject commitment (hex) that version 1 anchors."""

    record_id: str
    version: int
    subject: str
    content_hash: str

    @staticmethod
    def of(*, record_id: str, version: int, subject: str, content_hash: str) -> RecordAnchor:
        """The message for this version: ``AnchorRecord`` for version 1, ``AnchorVersion`` after."""
        message = AnchorRecord if version == 1 else AnchorVersion
        return message(record_id=record_id, version=version, subject=subject, content_hash=content_hash)


class AnchorRecord(RecordAnchor):
    kind: ClassVar[str] = "anchor_record"


class AnchorVersion(RecordAnchor):
    kind: ClassVar[str] = "anchor_version"


class _AnchorKind(OutboxKind[RecordAnchor]):
    def already_done(self, message: RecordAnchor) -> bool:
        records = self.node.chain.records
        record_id = bytes.fromhex(message.record_id)
        try:
            info = records.record(record_id)
            anchored = records.content_hash(record_id, message.version)
        except ContractReverted:
            return False  # not there (yet): send it
        ours = (
            info.custodian == self.node.address
            and info.subject.hex() == message.subject
            and anchored.hex() == message.content_hash
        )
        if not ours:
            raise AnchorConflict(
                f"record {message.record_id} version {message.version} is anchored on chain with "
                "another custodian, subject or hash than this node stored"
            )
        return True


class AnchorRecordKind(_AnchorKind):
    message = AnchorRecord

    def transaction(self, chain: Consortium[UnsignedTransaction], message: RecordAnchor) -> UnsignedTransaction:
        return chain.records.anchor_record(
            bytes.fromhex(message.record_id), bytes.fromhex(message.subject), bytes.fromhex(message.content_hash)
        )


class AnchorVersionKind(_AnchorKind):
    message = AnchorVersion

    def transaction(self, chain: Consortium[UnsignedTransaction], message: RecordAnchor) -> UnsignedTransaction:
        return chain.records.anchor_version(
            bytes.fromhex(message.record_id), message.version, bytes.fromhex(message.content_hash)
        )


KINDS: tuple[type[OutboxKind[RecordAnchor]], ...] = (AnchorRecordKind, AnchorVersionKind)
