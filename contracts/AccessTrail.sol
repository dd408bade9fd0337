// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IAccessTrail} from "./interfaces/IAccessTrail.sol";
import {MembershipMirror} from "./utils/MembershipMirror.sol";
import {Role, MemberStatus} from "./interfaces/IConsortiumRegistry.sol";

/// @title AccessTrail
/// @notice Members anchor every release of a record, one entry at a time or in Merkle batches.
/// @dev Each member has one log of entry hashes, numbered 1, 2, 3 ... by its sequence. A single
/// entry is anchored with its fields; a batch anchors the RFC 6962 Merkle tree hash (SHA-256,
/// 0x00 leaf / 0x01 node prefixes) of the member's whole log from sequence 1 up to `toSequence`,
/// so successive batch roots can be checked with consistency proofs and a member cannot rewrite
/// an anchored history. The sequence must grow by exactly one per entry: a retried transaction
/// fails with a mismatch instead of anchoring twice, and a missing entry is a visible gap.
/// The member's seat and sequence share one storage slot (see MembershipMirror).
/// Nothing about the access is on chain but its member, sequence and hash: the entry (patient,
/// record, reader, purpose, basis, consent or break-glass) stays in the member's log, and its hash
/// covers a random nonce, so it cannot be confirmed by trying guessed entries either.
contract AccessTrail is IAccessTrail, MembershipMirror {
    constructor(address registry_) MembershipMirror(registry_) {}

    /// @notice Anchors one access-log entry.
    /// @dev Requirements: caller is an active member; `sequence` is its last plus one; entry hash
    /// non-zero. Emits {AccessRecorded}.
    /// @param entryHash SHA-256 of the off-chain access-log entry (its canonical JSON, nonce included).
    function recordAccess(bytes32 entryHash, uint64 sequence) external {
        Seat storage seat = _seats[msg.sender];
        if (seat.status != MemberStatus.Active || seat.role != Role.Member) {
            revert AccessTrailNotActiveMember(msg.sender);
        }
        uint64 expected = seat.counter + 1;
        if (sequence != expected) revert AccessTrailSequenceMismatch(msg.sender, expected, sequence);
        if (entryHash == bytes32(0)) revert AccessTrailInvalidHash();
        seat.counter = sequence;
        emit AccessRecorded(msg.sender, sequence, entryHash);
    }

    /// @notice Anchors a batch of entries `fromSequence..toSequence` by the Merkle root of the
    /// member's log `1..toSequence`.
    /// @dev Requirements: caller is an active member; `fromSequence` is its last plus one;
    /// `toSequence >= fromSequence`; root non-zero. Emits {AccessBatchAnchored}.
    function anchorAccessBatch(bytes32 root, uint64 fromSequence, uint64 toSequence) external {
        Seat storage seat = _seats[msg.sender];
        if (seat.status != MemberStatus.Active || seat.role != Role.Member) {
            revert AccessTrailNotActiveMember(msg.sender);
        }
        uint64 expected = seat.counter + 1;
        if (fromSequence != expected) revert AccessTrailSequenceMismatch(msg.sender, expected, fromSequence);
        if (toSequence < fromSequence) revert AccessTrailEmptyBatch(fromSequence, toSequence);
        if (root == bytes32(0)) revert AccessTrailInvalidHash();
        seat.counter = toSequence;
        emit AccessBatchAnchored(msg.sender, fromSequence, toSequence, root);
    }

    /// @inheritdoc IAccessTrail
    function lastSequence(address member) external view returns (uint64) {
        return _seats[member].counter;
    }
}
