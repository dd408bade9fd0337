"""The AccessTrail's typed client: single access entries and Merkle-batched anchors."""

from __future__ import annotations

from ledger_api.chain.calldata import checksum_address
from ledger_api.chain.contract import ContractClient, W
from ledger_api.chain.types import Basis


class AccessTrailClient(ContractClient[W]):
    contract_name = "AccessTrail"

    def last_sequence(self, member: str) -> int:
        return int(self._read("lastSequence", checksum_address(member)))

    def record_access(
        self,
        *,
        entry_hash: bytes,
        sequence: int,
        requester: str,
        patient: str,
        record_id: bytes,
        purpose: int,
        basis: Basis,
        authorization: bytes,
    ) -> W:
        return self._write(
            "recordAccess",
            entry_hash,
            sequence,
            checksum_address(requester),
            checksum_address(patient),
            record_id,
            purpose,
            int(basis),
            authorization,
        )

    def anchor_batch(self, root: bytes, from_sequence: int, to_sequence: int) -> W:
        return self._write("anchorAccessBatch", root, from_sequence, to_sequence)
