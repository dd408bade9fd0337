// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title IAccessTrail
/// @notice The tamper-evident trail of every record release, one sequence per member.
/// @dev Entries live in event logs (part of every block's receipts), not in contract storage:
/// the contract keeps only each member's last sequence number, which must grow by exactly one,
/// so an omitted entry shows as a gap. No personal data: hashes and pseudonymous accounts only.
interface IAccessTrail {
    /// @notice On what grounds a record was released (or, for Custodian, acted on by its own
    /// custodian: a read by the holding hospital, or an erasure).
    enum Basis {
        None,
        Consent,
        BreakGlass,
        Custodian
    }

    // ----------------------------------------------------------------- ERRORS
    error AccessTrailNotActiveMember(address account);
    error AccessTrailSequenceMismatch(address member, uint64 expected, uint64 given);
    error AccessTrailEmptyBatch(uint64 fromSequence, uint64 toSequence);
    error AccessTrailInvalidHash();
    error AccessTrailInvalidBasis(Basis basis);

    // ----------------------------------------------------------------- EVENTS
    event AccessRecorded(
        address indexed member,
        address indexed patient,
        uint64 sequence,
        bytes32 entryHash,
        address requester,
        bytes32 recordId,
        uint8 purpose,
        Basis basis,
        bytes32 authorization
    );
    event AccessBatchAnchored(address indexed member, uint64 fromSequence, uint64 toSequence, bytes32 root);

    // ------------------------------------------------------------------ VIEWS
    function lastSequence(address member) external view returns (uint64);
}
