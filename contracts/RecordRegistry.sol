// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IRecordRegistry} from "./interfaces/IRecordRegistry.sol";
import {MembershipMirror} from "./utils/MembershipMirror.sol";
import {Role, MemberStatus} from "./interfaces/IConsortiumRegistry.sol";

/// @title RecordRegistry
/// @notice Anchors the content hash of every version of every encrypted record, append-only.
/// @dev A record id belongs to the member that mints it: its first 20 bytes are that member's
/// account (the other 12 are random), and only that member may anchor version 1. So no member can
/// claim an id it saw in another's pending anchor and take custody of that record.
/// Only the custodian member (the one that anchored version 1) may add versions, each
/// exactly one above the last: nothing is ever overwritten, and a retried transaction fails with
/// a version mismatch instead of anchoring twice. The header packs the subject commitment, custodian
/// index, latest version and the record's sharing flags (restricted, hidden) into one slot; the anchor
/// time is the block's.
/// Nothing on chain says whose record it is or what kind: the patient and category are bound by a
/// salted commitment (see {subjectCommitment}) that only holders of the record's salt (custodian,
/// patient, auditors) can open, so two records of one patient cannot be linked from the chain alone.
contract RecordRegistry is IRecordRegistry, MembershipMirror {
    /// @notice EIP-712 type of what a record's subject commitment binds: the commitment is the first
    /// 24 bytes of this struct's EIP-712 `hashStruct`. The 32-byte salt is random per record and kept off
    /// chain, so trying every patient account and all 16 categories finds nothing.
    /// `encounterDay` is the day of the care the record is about (days since 1970-01-01, UTC), so a consent
    /// limited to a date range of care can be checked against a date the custodian cannot later change.
    bytes32 public constant SUBJECT_TYPEHASH = keccak256(
        "RecordSubject(bytes32 recordId,address patient,uint16 category,uint16 encounterDay,bytes32 salt)"
    );

    uint8 private constant _RESTRICTED = 1;
    uint8 private constant _HIDDEN = 2;

    /// @dev One slot: 192 + 24 + 32 + 8 bits. 192 bits of commitment keep the anchor in one slot (gas) and
    /// still take ~2^96 work to find a second opening; the flags share it, so hiding a record rewrites a
    /// slot the custodian check reads anyway.
    struct Header {
        bytes24 subject;
        uint24 custodianIndex;
        uint32 latestVersion;
        uint8 flags;
    }

    mapping(bytes32 recordId => Header) private _headers;
    mapping(bytes32 recordId => mapping(uint32 version => bytes32)) private _contentHashes;

    constructor(address registry_) MembershipMirror(registry_) {}

    /// @notice Anchors version 1 of a new record, making the caller its custodian.
    /// @dev Requirements: caller is an active member; the record id starts with the caller's account
    /// (see the contract's header); subject and hash non-zero; the record id is unused.
    /// Emits {RecordAnchored}.
    /// @param subject {subjectCommitment} of the record's id, patient, category and salt.
    function anchorRecord(bytes32 recordId, bytes24 subject, bytes32 contentHash_) external {
        Seat storage seat = _seats[msg.sender];
        if (seat.status != MemberStatus.Active || seat.role != Role.Member) {
            revert RecordRegistryNotActiveMember(msg.sender);
        }
        if (address(bytes20(recordId)) != msg.sender) revert RecordRegistryRecordIdNotMinted(recordId, msg.sender);
        if (subject == bytes24(0)) revert RecordRegistryInvalidSubject();
        if (contentHash_ == bytes32(0)) revert RecordRegistryInvalidContentHash();
        Header storage h = _headers[recordId];
        if (h.latestVersion != 0) revert RecordRegistryRecordExists(recordId);
        _headers[recordId] = Header({subject: subject, custodianIndex: uint24(seat.index), latestVersion: 1, flags: 0});
        _contentHashes[recordId][1] = contentHash_;
        emit RecordAnchored(recordId, msg.sender, 1, subject, contentHash_);
    }

    /// @notice Anchors the next version of an existing record.
    /// @dev Requirements: caller is the record's custodian and an active member; `version` is
    /// exactly the latest plus one; hash non-zero. Emits {RecordAnchored}.
    function anchorVersion(bytes32 recordId, uint32 version, bytes32 contentHash_) external {
        Seat storage seat = _seats[msg.sender];
        if (seat.status != MemberStatus.Active || seat.role != Role.Member) {
            revert RecordRegistryNotActiveMember(msg.sender);
        }
        if (contentHash_ == bytes32(0)) revert RecordRegistryInvalidContentHash();
        Header storage h = _headers[recordId];
        uint32 latest = h.latestVersion;
        if (latest == 0) revert RecordRegistryUnknownRecord(recordId);
        if (h.custodianIndex != seat.index) revert RecordRegistryNotCustodian(recordId, msg.sender);
        if (version != latest + 1) revert RecordRegistryVersionMismatch(recordId, latest + 1, version);
        h.latestVersion = version;
        _contentHashes[recordId][version] = contentHash_;
        emit RecordAnchored(recordId, msg.sender, version, h.subject, contentHash_);
    }

    /// @notice Hands custody of the caller's records to another member: a member leaving the
    /// consortium (or leaving it already) passes what it holds to a successor.
    /// @dev Requirements: the caller was admitted as a member (any status: a member governance has
    /// suspended or removed must still be able to hand over what it held) and is the custodian of
    /// every listed record; the successor is an active member other than the caller; at least one
    /// record. Consents are the patient's and name grantees, not custodians, so they are untouched;
    /// the record's versions and hashes stay as anchored. Emits {CustodyTransferred} per record.
    function transferCustody(bytes32[] calldata recordIds, address successor) external {
        Seat storage from = _seats[msg.sender];
        if (from.status == MemberStatus.None || from.role != Role.Member) {
            revert RecordRegistryNotActiveMember(msg.sender);
        }
        Seat storage to = _seats[successor];
        if (to.status != MemberStatus.Active || to.role != Role.Member || successor == msg.sender) {
            revert RecordRegistryInvalidSuccessor(successor);
        }
        if (recordIds.length == 0) revert RecordRegistryEmptyHandover();
        uint32 fromIndex = from.index;
        uint24 toIndex = uint24(to.index);
        for (uint256 i = 0; i < recordIds.length; ++i) {
            bytes32 recordId = recordIds[i];
            Header storage h = _headers[recordId];
            if (h.latestVersion == 0) revert RecordRegistryUnknownRecord(recordId);
            if (h.custodianIndex != fromIndex) revert RecordRegistryNotCustodian(recordId, msg.sender);
            h.custodianIndex = toIndex;
            emit CustodyTransferred(recordId, successor, msg.sender, h.latestVersion);
        }
    }

    /// @notice Restricts (or lifts the restriction of) one record, sent by its custodian at the patient's
    /// signed request (kept off chain, its access-trail entry anchored): the restriction follows the record
    /// through a custody transfer, and auditors judge every release after it.
    /// @dev Requirements: caller is the record's custodian and an active member; the call changes
    /// something. Emits {RecordRestrictionChanged}.
    function setRestriction(bytes32 recordId, bool restricted) external {
        if (!_setFlag(recordId, _RESTRICTED, restricted)) revert RecordRegistryRestrictionUnchanged(recordId, restricted);
        emit RecordRestrictionChanged(recordId, msg.sender, restricted);
    }

    /// @notice Hides (or shows again) one record from every consent, sent by its custodian at the patient's
    /// signed request: no grant releases it while hidden (break-glass and the custodian's own care still do).
    /// Like a restriction it names no patient, and it follows the record through a custody transfer.
    /// @dev Requirements: caller is the record's custodian and an active member; the call changes
    /// something. Emits {RecordHiddenChanged}.
    function setHidden(bytes32 recordId, bool hidden) external {
        if (!_setFlag(recordId, _HIDDEN, hidden)) revert RecordRegistryHiddenUnchanged(recordId, hidden);
        emit RecordHiddenChanged(recordId, msg.sender, hidden);
    }

    /// @inheritdoc IRecordRegistry
    function isRestricted(bytes32 recordId) external view returns (bool) {
        return _headers[recordId].flags & _RESTRICTED != 0;
    }

    /// @inheritdoc IRecordRegistry
    function isHidden(bytes32 recordId) external view returns (bool) {
        return _headers[recordId].flags & _HIDDEN != 0;
    }

    /// @inheritdoc IRecordRegistry
    function record(bytes32 recordId) external view returns (RecordInfo memory) {
        Header memory h = _headers[recordId];
        if (h.latestVersion == 0) revert RecordRegistryUnknownRecord(recordId);
        return RecordInfo({custodian: _accountAt[h.custodianIndex], subject: h.subject, latestVersion: h.latestVersion});
    }

    /// @inheritdoc IRecordRegistry
    function subjectCommitment(bytes32 recordId, address patient, uint16 category, uint16 encounterDay, bytes32 salt)
        public
        pure
        returns (bytes24)
    {
        return bytes24(keccak256(abi.encode(SUBJECT_TYPEHASH, recordId, patient, category, encounterDay, salt)));
    }

    /// @inheritdoc IRecordRegistry
    function contentHash(bytes32 recordId, uint32 version) external view returns (bytes32 hash) {
        hash = _contentHashes[recordId][version];
        if (hash == bytes32(0)) revert RecordRegistryUnknownVersion(recordId, version);
    }

    /// @inheritdoc IRecordRegistry
    function exists(bytes32 recordId) external view returns (bool) {
        return _headers[recordId].latestVersion != 0;
    }

    /// @dev Sets or clears `flag` on a record the caller holds; false when it was already so.
    function _setFlag(bytes32 recordId, uint8 flag, bool on) private returns (bool changed) {
        Seat storage seat = _seats[msg.sender];
        if (seat.status != MemberStatus.Active || seat.role != Role.Member) {
            revert RecordRegistryNotActiveMember(msg.sender);
        }
        Header storage h = _headers[recordId];
        if (h.latestVersion == 0) revert RecordRegistryUnknownRecord(recordId);
        if (h.custodianIndex != seat.index) revert RecordRegistryNotCustodian(recordId, msg.sender);
        uint8 flags = h.flags;
        uint8 next = on ? flags | flag : flags & ~flag;
        if (next == flags) return false;
        h.flags = next;
        return true;
    }
}
