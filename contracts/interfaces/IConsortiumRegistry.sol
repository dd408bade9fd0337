// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// @notice What a member is in the consortium. Auditors verify; members hold and share records.
enum Role {
    None,
    Member,
    Auditor
}

/// @notice Lifecycle of a member. Only `Active` members may write to the consortium's contracts.
enum MemberStatus {
    None,
    Active,
    Suspended,
    Removed
}

/// @notice Kinds of governance proposal. Every change after genesis takes one.
enum ProposalKind {
    AddMember,
    SuspendMember,
    ReinstateMember,
    RemoveMember,
    UpdateMemberKeys
}

/// @notice Derived state of a proposal at the current block.
enum ProposalState {
    None,
    Pending,
    Approved,
    Defeated,
    Expired,
    Executed
}

/// @title IConsortiumRegistry
/// @notice Membership of the hospital consortium and its governance.
/// @dev No personal data on chain: members are institutions (name, endpoint URL, HPKE public key).
interface IConsortiumRegistry {
    /// @notice A member as the registry knows it.
    struct Member {
        address account;
        uint32 index;
        Role role;
        MemberStatus status;
        uint32 keyVersion;
        uint64 joinedAt;
        string name;
        string endpoint;
        bytes hpkePublicKey;
    }

    /// @notice A member of the genesis set, fixed at deployment.
    struct GenesisMember {
        address account;
        Role role;
        string name;
        string endpoint;
        bytes hpkePublicKey;
    }

    /// @notice A governance proposal; `payload` is the ABI encoding of the change's arguments.
    struct Proposal {
        ProposalKind kind;
        address target;
        address proposer;
        uint64 createdAt;
        uint64 expiresAt;
        uint32 approvals;
        uint32 rejections;
        bool executed;
        bytes payload;
    }

    // ----------------------------------------------------------------- ERRORS
    error ConsortiumRegistryNotVoter(address account);
    error ConsortiumRegistryEmptyGenesis();
    error ConsortiumRegistryNoVoterInGenesis();
    error ConsortiumRegistryInvalidRole(Role role);
    error ConsortiumRegistryInvalidAccount(address account);
    error ConsortiumRegistryDuplicateMember(address account);
    error ConsortiumRegistryUnknownMember(address account);
    error ConsortiumRegistryInvalidStatus(address account, MemberStatus status);
    error ConsortiumRegistryInvalidHpkeKey(uint256 length);
    error ConsortiumRegistryUnknownProposal(uint256 proposalId);
    error ConsortiumRegistryProposalNotPending(uint256 proposalId, ProposalState state);
    error ConsortiumRegistryProposalNotApproved(uint256 proposalId, ProposalState state);
    error ConsortiumRegistryAlreadyVoted(uint256 proposalId, address voter);
    error ConsortiumRegistryNotInElectorate(uint256 proposalId, address voter);
    error ConsortiumRegistryLastVoter(address account);
    error ConsortiumRegistryNotDeployer(address caller);
    error ConsortiumRegistryConsumersAlreadyBound();
    error ConsortiumRegistryValidatorTaken(address validator, address heldBy);

    // ----------------------------------------------------------------- EVENTS
    event MemberAdded(address indexed account, uint32 indexed index, Role role, string name, string endpoint, bytes hpkePublicKey);
    event MemberStatusChanged(address indexed account, MemberStatus previous, MemberStatus current);
    event MemberKeysUpdated(address indexed account, uint32 keyVersion, string endpoint, bytes hpkePublicKey);
    event ProposalCreated(uint256 indexed proposalId, ProposalKind kind, address indexed target, address indexed proposer, uint64 expiresAt, bytes payload);
    event ProposalVoted(uint256 indexed proposalId, address indexed voter, bool support);
    event ProposalExecuted(uint256 indexed proposalId, address indexed executor);
    event ConsumersBound(address[] consumers);
    event ValidatorDeclared(address indexed account, address indexed validator);

    // ------------------------------------------------------------------ VIEWS
    function member(address account) external view returns (Member memory);
    function memberAt(uint32 index) external view returns (Member memory);
    function memberCount() external view returns (uint256);
    function isActive(address account) external view returns (bool);
    function isActiveMember(address account) external view returns (bool);
    function isActiveAuditor(address account) external view returns (bool);
    function activeVoterCount() external view returns (uint256);
    function votingPeriod() external view returns (uint64);
    function proposal(uint256 proposalId) external view returns (Proposal memory);
    function proposalState(uint256 proposalId) external view returns (ProposalState);
    function proposalTally(uint256 proposalId)
        external
        view
        returns (uint256 electorate, uint256 counted, uint256 approvals, uint256 rejections);
    function proposalCount() external view returns (uint256);
    function hasVoted(uint256 proposalId, address voter) external view returns (bool);
    function consumers() external view returns (address[] memory);
    function validatorOf(address account) external view returns (address);
}

/// @title IMembershipConsumer
/// @notice A contract that keeps a local mirror of membership, pushed by the registry.
/// @dev Mirroring keeps the per-call permission check at one warm-able storage slot in the
/// consumer instead of a cross-contract call on every write (the access-trail gas budget).
interface IMembershipConsumer {
    error MembershipConsumerNotRegistry(address caller);

    /// @notice Called by the registry whenever a member is added or changes status.
    function onMembershipChanged(address account, uint32 index, Role role, MemberStatus status) external;
}
