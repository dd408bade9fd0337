// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @title IRecordRegistry
/// @notice Integrity anchors for encrypted medical records: one content hash per record version.
/// @dev No personal data on chain: record ids are random 32-byte values, patients pseudonymous
/// accounts, and the content hash is taken over the ciphertext, never the plaintext.
interface IRecordRegistry {
    /// @notice A record's header. `latestVersion` counts anchored versions (1-based).
    struct RecordInfo {
        address patient;
        address custodian;
        uint16 category;
        uint32 latestVersion;
    }

    // ----------------------------------------------------------------- ERRORS
    error RecordRegistryNotActiveMember(address account);
    error RecordRegistryRecordIdNotMinted(bytes32 recordId, address caller);
    error RecordRegistryInvalidPatient(address patient);
    error RecordRegistryInvalidContentHash();
    error RecordRegistryInvalidCategory(uint16 category);
    error RecordRegistryRecordExists(bytes32 recordId);
    error RecordRegistryUnknownRecord(bytes32 recordId);
    error RecordRegistryNotCustodian(bytes32 recordId, address caller);
    error RecordRegistryVersionMismatch(bytes32 recordId, uint32 expected, uint32 given);
    error RecordRegistryUnknownVersion(bytes32 recordId, uint32 version);
    error RecordRegistryInvalidSuccessor(address successor);
    error RecordRegistryEmptyHandover();

    // ----------------------------------------------------------------- EVENTS
    event RecordAnchored(
        bytes32 indexed recordId,
        address indexed patient,
        address indexed custodian,
        uint32 version,
        uint16 category,
        bytes32 contentHash
    );

    /// @notice Custody of a record moved from one member to another (a leaving member's handover).
    event CustodyTransferred(
        bytes32 indexed recordId,
        address indexed patient,
        address indexed to,
        address from,
        uint32 latestVersion
    );

    // ------------------------------------------------------------------ VIEWS
    function record(bytes32 recordId) external view returns (RecordInfo memory);
    function contentHash(bytes32 recordId, uint32 version) external view returns (bytes32);
    function exists(bytes32 recordId) external view returns (bool);
}
