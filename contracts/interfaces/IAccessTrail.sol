// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title IAccessTrail
/// @notice The tamper-evident trail of every record release, one sequence per member.
/// @dev Entries live in event logs (part of every block's receipts), not in contract storage:
/// the contract keeps only each member's last sequence number, which must grow by exactly one,
/// so an omitted entry shows as a gap. Only hashes: who read which record of whom, and on what
/// grounds, is in the member's log, which the anchored hashes bind.
interface IAccessTrail {
    // ----------------------------------------------------------------- ERRORS
    error AccessTrailNotActiveMember(address account);
    error AccessTrailSequenceMismatch(address member, uint64 expected, uint64 given);
    error AccessTrailEmptyBatch(uint64 fromSequence, uint64 toSequence);
    error AccessTrailInvalidHash();

    // ----------------------------------------------------------------- EVENTS
    event AccessRecorded(address indexed member, uint64 sequence, bytes32 entryHash);
    event AccessBatchAnchored(address indexed member, uint64 fromSequence, uint64 toSequence, bytes32 root);

    // ------------------------------------------------------------------ VIEWS
    function lastSequence(address member) external view returns (uint64);
}
