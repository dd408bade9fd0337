"""The AccessTrail's typed client: single access entries and Merkle-batched anchors."""

from __future__ import annotations

from ledger_api.chain.calldata import checksum_address
from ledger_api.chain.contract import ContractClient, W


class AccessTrailClient(ContractClient[W]):
    contract_name = "AccessTrail"

    def last_sequence(self, member: str) -> int:
        return int(self._read("lastSequence", checksum_address(member)))

    def record_access(self, entry_hash: bytes, sequence: int) -> W:
        """One entry's hash at its sequence: nothing else about the access goes on chain."""
        return self._write("recordAccess", entry_hash, sequence)

    def anchor_batch(self, root: bytes, from_sequence: int, to_sequence: int) -> W:
        return self._write("anchorAccessBatch", root, from_sequence, to_sequence)
