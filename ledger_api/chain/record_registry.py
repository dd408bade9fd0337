"""The RecordRegistry's typed client: record anchors, versions and custody."""

from __future__ import annotations

from ledger_api.chain.calldata import checksum_address
from ledger_api.chain.contract import ContractClient, W
from ledger_api.chain.types import RecordInfo


class RecordRegistryClient(ContractClient[W]):
    contract_name = "RecordRegistry"

    def record(self, record_id: bytes) -> RecordInfo:
        custodian, subject, latest = self._read("record", record_id)
        return RecordInfo(custodian=custodian, subject=bytes(subject), latest_version=latest)

    def content_hash(self, record_id: bytes, version: int) -> bytes:
        return bytes(self._read("contentHash", record_id, version))

    def exists(self, record_id: bytes) -> bool:
        return bool(self._read("exists", record_id))

    def is_restricted(self, record_id: bytes, block: int | str = "latest") -> bool:
        """Whether the record's custodian restricted it at its patient's request (at ``block``)."""
        return bool(self._read("isRestricted", record_id, block=block))

    def is_hidden(self, record_id: bytes, block: int | str = "latest") -> bool:
        """Whether the record's custodian hid it from every consent at its patient's request (at ``block``)."""
        return bool(self._read("isHidden", record_id, block=block))

    def subject_commitment(
        self, record_id: bytes, patient: str, category: int, salt: bytes, encounter_day: int = 0
    ) -> bytes:
        """The contract's own computation of a record's subject (``chain.commitments`` computes it off line)."""
        return bytes(
            self._read("subjectCommitment", record_id, checksum_address(patient), category, encounter_day, salt)
        )

    def anchor_record(self, record_id: bytes, subject: bytes, content_hash: bytes) -> W:
        """Version 1: ``subject`` is the record's commitment (``chain.commitments.record_subject``)."""
        return self._write("anchorRecord", record_id, subject, content_hash)

    def anchor_version(self, record_id: bytes, version: int, content_hash: bytes) -> W:
        return self._write("anchorVersion", record_id, version, content_hash)

    def set_restriction(self, record_id: bytes, restricted: bool) -> W:
        return self._write("setRestriction", record_id, restricted)

    def set_hidden(self, record_id: bytes, hidden: bool) -> W:
        return self._write("setHidden", record_id, hidden)

    def transfer_custody(self, record_ids: list[bytes], successor: str) -> W:
        return self._write("transferCustody", record_ids, checksum_address(successor))
