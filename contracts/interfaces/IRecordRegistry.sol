// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title IRecordRegistry
/// @notice Integrity anchors for encrypted medical records: one content hash per record version.
/// @dev No personal data on chain: record ids are random 32-byte values (after the custodian's
/// account), the content hash is taken over the ciphertext, never the plaintext, and the patient and
/// category appear only inside a salted commitment (`subject`).
interface IRecordRegistry {
    /// @notice A record's header. `latestVersion` counts anchored versions (1-based).
    struct RecordInfo {
        address custodian;
        bytes24 subject;
        uint32 latestVersion;
    }

    // ----------------------------------------------------------------- ERRORS
    error RecordRegistryNotActiveMember(address account);
    error RecordRegistryRecordIdNotMinted(bytes32 recordId, address caller);
    error RecordRegistryInvalidSubject();
    error RecordRegistryInvalidContentHash();
    error RecordRegistryRecordExists(bytes32 recordId);
    error RecordRegistryUnknownRecord(bytes32 recordId);
    error RecordRegistryNotCustodian(bytes32 recordId, address caller);
    error RecordRegistryVersionMismatch(bytes32 recordId, uint32 expected, uint32 given);
    error RecordRegistryUnknownVersion(bytes32 recordId, uint32 version);
    error RecordRegistryInvalidSuccessor(address successor);
    error RecordRegistryEmptyHandover();
    error RecordRegistryRestrictionUnchanged(bytes32 recordId, bool restricted);
    error RecordRegistryHiddenUnchanged(bytes32 recordId, bool hidden);

    // ----------------------------------------------------------------- EVENTS
    /// @notice A record version was anchored; `subject` is the record's commitment (the same for every version).
    event RecordAnchored(
        bytes32 indexed recordId, address indexed custodian, uint32 version, bytes24 subject, bytes32 contentHash
    );

    /// @notice Custody of a record moved from one member to another (a leaving member's handover).
    event CustodyTransferred(bytes32 indexed recordId, address indexed to, address from, uint32 latestVersion);

    /// @notice The custodian restricted (or lifted the restriction of) a record at its patient's request:
    /// while restricted it is released to nobody but the patient, its custodian for legal purposes and a
    /// declared break-glass. Says nothing about whose record it is.
    event RecordRestrictionChanged(bytes32 indexed recordId, address indexed custodian, bool restricted);

    /// @notice The custodian hid (or showed again) a record at its patient's request: while hidden no consent
    /// releases it; break-glass and the custodian's own care still may. Says nothing about whose record it is.
    event RecordHiddenChanged(bytes32 indexed recordId, address indexed custodian, bool hidden);

    // ------------------------------------------------------------------ VIEWS
    function isRestricted(bytes32 recordId) external view returns (bool);
    /// @notice Whether the patient has hidden the record from every consent (see {RecordHiddenChanged}).
    function isHidden(bytes32 recordId) external view returns (bool);
    function record(bytes32 recordId) external view returns (RecordInfo memory);
    function contentHash(bytes32 recordId, uint32 version) external view returns (bytes32);
    function exists(bytes32 recordId) external view returns (bool);
    /// @notice The commitment that binds a record to its patient and category: the first 24 bytes of the
    /// EIP-712 struct hash of `RecordSubject(recordId, patient, category, encounterDay, salt)`. Whoever holds
    /// the salt opens an anchor by recomputing it (here, with ethers' `TypedDataEncoder.hashStruct`, or off
    /// line); the opening also gives the record's day of care, which consents limited to a care range check.
    function subjectCommitment(bytes32 recordId, address patient, uint16 category, uint16 encounterDay, bytes32 salt)
        external
        pure
        returns (bytes24);
}
