// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {
    IConsortiumRegistry,
    IMembershipConsumer,
    Role,
    MemberStatus,
    ProposalKind,
    ProposalState
} from "./interfaces/IConsortiumRegistry.sol";

/// @title ConsortiumRegistry
/// @notice Who belongs to the hospital consortium, in which role, and how membership changes.
/// @dev Bootstrapped with a genesis set. Afterwards every change (add, suspend, reinstate, remove,
/// update keys) is a proposal approved by a strict majority of its electorate; auditors oversee
/// but do not vote. Proposals expire after `votingPeriod`.
///
/// The electorate rule: the electorate of a proposal is fixed when it is made, as the voting
/// members (role Member) active at that moment, and so is the majority it needs (more than half of
/// them). Only electorate members who have stayed active since then, without a break, vote and are
/// counted: a member suspended or removed during the vote loses its vote, whichever way it went,
/// and a member added or reinstated meanwhile gets none. Approved: the counted approvals are more
/// than half of the electorate. Defeated: even if every counted member who has not rejected it
/// approved, it could not reach that majority. Because the electorate and the majority never change
/// and counted members only ever leave, a Defeated proposal can never become Approved; membership
/// changes after the voting period ends are not counted, so an Expired one stays Expired. This
/// is why a shrinking electorate cannot turn a rejected proposal into an approved one: removing
/// the members who rejected also removes votes that could have approved.
/// Changes are pushed to the bound consumer contracts (consent, record and access-trail
/// registries), which only accept writes from active members: this is the chain's account
/// permissioning.
/// No personal data on chain: members are institutions; their name, endpoint URL and HPKE public
/// key are public by design.
contract ConsortiumRegistry is IConsortiumRegistry {
    // ----------------------------------------------------------------- CONSTANTS
    /// @notice Accepted HPKE public key sizes: X25519 (32) and ML-KEM-768+X25519 hybrid (1216).
    uint256 public constant X25519_KEY_LENGTH = 32;
    uint256 public constant HYBRID_KEY_LENGTH = 1216;

    // ------------------------------------------------------------------- STORAGE
    address private immutable _deployer;
    uint64 private immutable _votingPeriod;

    mapping(address account => Member) private _members;
    address[] private _accounts;
    uint256 private _activeVoters;
    Proposal[] private _proposals;
    /// @dev 0 no vote, 1 for, 2 against
    mapping(uint256 proposalId => mapping(address voter => uint8)) private _votes;
    /// @dev Ticks at every proposal and every change of a voter's status: orders them without
    /// relying on block timestamps (several can share a block).
    uint64 private _clock;
    /// @dev A voting member's current unbroken term: `since` the tick it became an active voter,
    /// `until` the tick it stopped (0 while active) and `untilTime` when.
    struct VoterTerm {
        uint64 since;
        uint64 until;
        uint64 untilTime;
    }

    mapping(address account => VoterTerm) private _terms;
    /// @dev Per proposal: the tick it was made at and the size of its electorate.
    mapping(uint256 proposalId => uint64) private _madeAt;
    mapping(uint256 proposalId => uint32) private _electorate;
    address[] private _consumers;
    /// @dev Member = validator: the validator each member (or auditor) runs, and whose it is.
    mapping(address account => address) private _validatorOf;
    mapping(address validator => address) private _validatorHolder;

    // ---------------------------------------------------------------- MODIFIERS
    modifier onlyVoter() {
        if (!_isVoter(msg.sender)) revert ConsortiumRegistryNotVoter(msg.sender);
        _;
    }

    /// @param genesis The founding members; at least one must be a voting member.
    /// @param votingPeriod_ Seconds a proposal stays open.
    constructor(GenesisMember[] memory genesis, uint64 votingPeriod_) {
        if (genesis.length == 0) revert ConsortiumRegistryEmptyGenesis();
        _deployer = msg.sender;
        _votingPeriod = votingPeriod_;
        for (uint256 i = 0; i < genesis.length; ++i) {
            GenesisMember memory g = genesis[i];
            _addMember(g.account, g.role, g.name, g.endpoint, g.hpkePublicKey);
        }
        if (_activeVoters == 0) revert ConsortiumRegistryNoVoterInGenesis();
    }

    // ---------------------------------------------------------------- DEPLOYMENT
    /// @notice Wires the consumer contracts once, right after deployment, and pushes the genesis set.
    /// @dev Requirements: caller is the deployer; not bound before. Emits {ConsumersBound}.
    function bindConsumers(address[] calldata consumers_) external {
        if (msg.sender != _deployer) revert ConsortiumRegistryNotDeployer(msg.sender);
        if (_consumers.length != 0) revert ConsortiumRegistryConsumersAlreadyBound();
        for (uint256 i = 0; i < consumers_.length; ++i) {
            _consumers.push(consumers_[i]);
        }
        for (uint256 i = 0; i < _accounts.length; ++i) {
            _push(_members[_accounts[i]]);
        }
        emit ConsumersBound(consumers_);
    }

    // ---------------------------------------------------------------- VALIDATORS
    /// @notice Names the validator the caller runs (its address on the BFT network). Member =
    /// validator: the member nodes vote this validator into the validator set while the caller is
    /// active, and out of it when it is not (see ledger_api/consortium/validators.py).
    /// @dev Requirements: caller is an active member or auditor (admitted by governance: naming its
    /// own validator needs no second vote); the validator is non-zero and no one else's. A new
    /// declaration replaces the caller's previous one. Emits {ValidatorDeclared}.
    function declareValidator(address validator) external {
        Member storage m = _members[msg.sender];
        if (m.status != MemberStatus.Active) revert ConsortiumRegistryInvalidStatus(msg.sender, m.status);
        if (validator == address(0)) revert ConsortiumRegistryInvalidAccount(validator);
        address holder = _validatorHolder[validator];
        if (holder != address(0) && holder != msg.sender) revert ConsortiumRegistryValidatorTaken(validator, holder);
        address previous = _validatorOf[msg.sender];
        if (previous != address(0)) delete _validatorHolder[previous];
        _validatorOf[msg.sender] = validator;
        _validatorHolder[validator] = msg.sender;
        emit ValidatorDeclared(msg.sender, validator);
    }

    // ---------------------------------------------------------------- GOVERNANCE
    /// @notice Proposes adding a member. The proposer's approval is counted.
    /// @dev Requirements: caller is an active voting member; account new and non-zero; role
    /// Member or Auditor; HPKE key of an accepted size. Emits {ProposalCreated}, {ProposalVoted}.
    function proposeAddMember(
        address account,
        Role role,
        string calldata name,
        string calldata endpoint,
        bytes calldata hpkePublicKey
    ) external onlyVoter returns (uint256) {
        if (account == address(0)) revert ConsortiumRegistryInvalidAccount(account);
        if (_members[account].status != MemberStatus.None) revert ConsortiumRegistryDuplicateMember(account);
        if (role != Role.Member && role != Role.Auditor) revert ConsortiumRegistryInvalidRole(role);
        _checkHpkeKey(hpkePublicKey);
        return _propose(ProposalKind.AddMember, account, abi.encode(role, name, endpoint, hpkePublicKey));
    }

    /// @notice Proposes suspending, reinstating or removing a member.
    /// @dev Requirements: caller is an active voting member; kind is one of the three status
    /// changes; the target's current status allows it. Emits {ProposalCreated}, {ProposalVoted}.
    function proposeStatusChange(ProposalKind kind, address account) external onlyVoter returns (uint256) {
        MemberStatus current = _members[account].status;
        if (current == MemberStatus.None) revert ConsortiumRegistryUnknownMember(account);
        _checkTransition(kind, account, current);
        return _propose(kind, account, "");
    }

    /// @notice Proposes new endpoint and HPKE public key for a member (key rotation).
    /// @dev Requirements: caller is an active voting member; target active or suspended; key of an
    /// accepted size. Emits {ProposalCreated}, {ProposalVoted}.
    function proposeKeyUpdate(address account, string calldata endpoint, bytes calldata hpkePublicKey)
        external
        onlyVoter
        returns (uint256)
    {
        MemberStatus current = _members[account].status;
        if (current != MemberStatus.Active && current != MemberStatus.Suspended) {
            revert ConsortiumRegistryInvalidStatus(account, current);
        }
        _checkHpkeKey(hpkePublicKey);
        return _propose(ProposalKind.UpdateMemberKeys, account, abi.encode(endpoint, hpkePublicKey));
    }

    /// @notice Casts a vote on a pending proposal.
    /// @dev Requirements: caller is an active voting member who has not voted on it; the proposal
    /// is pending (not expired, approved, defeated or executed). Emits {ProposalVoted}.
    /// Requirements also: the caller is in the proposal's electorate and has been active since it was made.
    function vote(uint256 proposalId, bool support) external onlyVoter {
        ProposalState state = proposalState(proposalId);
        if (state != ProposalState.Pending) revert ConsortiumRegistryProposalNotPending(proposalId, state);
        VoterTerm storage term = _terms[msg.sender];
        if (term.since >= _madeAt[proposalId]) revert ConsortiumRegistryNotInElectorate(proposalId, msg.sender);
        _vote(proposalId, support);
    }

    /// @notice Carries out an approved proposal.
    /// @dev Requirements: caller is an active voting member; the counted approvals are a strict
    /// majority of the proposal's electorate; not expired nor executed; the change is still valid. Emits
    /// {ProposalExecuted} and the change's own event.
    function execute(uint256 proposalId) external onlyVoter {
        ProposalState state = proposalState(proposalId);
        if (state != ProposalState.Approved) revert ConsortiumRegistryProposalNotApproved(proposalId, state);
        Proposal storage p = _proposals[proposalId];
        p.executed = true;
        address target = p.target;
        if (p.kind == ProposalKind.AddMember) {
            if (_members[target].status != MemberStatus.None) revert ConsortiumRegistryDuplicateMember(target);
            (Role role, string memory name, string memory endpoint, bytes memory key) =
                abi.decode(p.payload, (Role, string, string, bytes));
            _addMember(target, role, name, endpoint, key);
        } else if (p.kind == ProposalKind.UpdateMemberKeys) {
            (string memory endpoint, bytes memory key) = abi.decode(p.payload, (string, bytes));
            Member storage m = _members[target];
            if (m.status != MemberStatus.Active && m.status != MemberStatus.Suspended) {
                revert ConsortiumRegistryInvalidStatus(target, m.status);
            }
            m.endpoint = endpoint;
            m.hpkePublicKey = key;
            m.keyVersion += 1;
            emit MemberKeysUpdated(target, m.keyVersion, endpoint, key);
        } else {
            _checkTransition(p.kind, target, _members[target].status);
            MemberStatus next = p.kind == ProposalKind.SuspendMember
                ? MemberStatus.Suspended
                : (p.kind == ProposalKind.ReinstateMember ? MemberStatus.Active : MemberStatus.Removed);
            _setStatus(target, next);
        }
        emit ProposalExecuted(proposalId, msg.sender);
    }

    // --------------------------------------------------------------------- VIEWS
    /// @inheritdoc IConsortiumRegistry
    function member(address account) external view returns (Member memory) {
        if (_members[account].status == MemberStatus.None) revert ConsortiumRegistryUnknownMember(account);
        return _members[account];
    }

    /// @inheritdoc IConsortiumRegistry
    function memberAt(uint32 index) external view returns (Member memory) {
        if (index >= _accounts.length) revert ConsortiumRegistryUnknownMember(address(0));
        return _members[_accounts[index]];
    }

    /// @inheritdoc IConsortiumRegistry
    function memberCount() external view returns (uint256) {
        return _accounts.length;
    }

    /// @inheritdoc IConsortiumRegistry
    function isActive(address account) external view returns (bool) {
        return _members[account].status == MemberStatus.Active;
    }

    /// @inheritdoc IConsortiumRegistry
    function isActiveMember(address account) external view returns (bool) {
        return _isVoter(account);
    }

    /// @inheritdoc IConsortiumRegistry
    function isActiveAuditor(address account) external view returns (bool) {
        Member storage m = _members[account];
        return m.status == MemberStatus.Active && m.role == Role.Auditor;
    }

    /// @inheritdoc IConsortiumRegistry
    function activeVoterCount() external view returns (uint256) {
        return _activeVoters;
    }

    /// @inheritdoc IConsortiumRegistry
    function votingPeriod() external view returns (uint64) {
        return _votingPeriod;
    }

    /// @inheritdoc IConsortiumRegistry
    function proposal(uint256 proposalId) external view returns (Proposal memory) {
        if (proposalId >= _proposals.length) revert ConsortiumRegistryUnknownProposal(proposalId);
        return _proposals[proposalId];
    }

    /// @inheritdoc IConsortiumRegistry
    function proposalCount() external view returns (uint256) {
        return _proposals.length;
    }

    /// @inheritdoc IConsortiumRegistry
    function hasVoted(uint256 proposalId, address voter) external view returns (bool) {
        return _votes[proposalId][voter] != 0;
    }

    /// @inheritdoc IConsortiumRegistry
    function consumers() external view returns (address[] memory) {
        return _consumers;
    }

    /// @notice The validator a member or auditor declared (zero if none).
    function validatorOf(address account) external view returns (address) {
        return _validatorOf[account];
    }

    /// @notice State of a proposal now, under the electorate rule in the contract's header:
    /// Executed, then Defeated (final), then Expired (final), then Approved, else Pending.
    function proposalState(uint256 proposalId) public view returns (ProposalState) {
        if (proposalId >= _proposals.length) revert ConsortiumRegistryUnknownProposal(proposalId);
        Proposal storage p = _proposals[proposalId];
        if (p.executed) return ProposalState.Executed;
        (uint256 counted, uint256 approvals, uint256 rejections) = _tally(proposalId, p.expiresAt);
        uint256 electorate = _electorate[proposalId];
        if ((counted - rejections) * 2 <= electorate) return ProposalState.Defeated;
        if (block.timestamp > p.expiresAt) return ProposalState.Expired;
        if (approvals * 2 > electorate) return ProposalState.Approved;
        return ProposalState.Pending;
    }

    /// @notice The proposal's electorate (voting members active when it was made) and how many of
    /// them still count, approved and rejected (see the electorate rule in the contract's header).
    function proposalTally(uint256 proposalId)
        external
        view
        returns (uint256 electorate, uint256 counted, uint256 approvals, uint256 rejections)
    {
        if (proposalId >= _proposals.length) revert ConsortiumRegistryUnknownProposal(proposalId);
        (counted, approvals, rejections) = _tally(proposalId, _proposals[proposalId].expiresAt);
        electorate = _electorate[proposalId];
    }

    // ------------------------------------------------------------------ INTERNAL
    /// @dev Electorate members still counted: active when the proposal was made and without a break
    /// since, up to the end of its voting period (a departure after it changes nothing).
    function _tally(uint256 proposalId, uint64 expiresAt)
        private
        view
        returns (uint256 counted, uint256 approvals, uint256 rejections)
    {
        uint64 madeAt = _madeAt[proposalId];
        for (uint256 i = 0; i < _accounts.length; ++i) {
            address account = _accounts[i];
            VoterTerm storage term = _terms[account];
            if (term.since == 0 || term.since >= madeAt) continue;
            if (term.until != 0 && (term.until < madeAt || term.untilTime <= expiresAt)) continue;
            counted += 1;
            uint8 cast = _votes[proposalId][account];
            if (cast == 1) approvals += 1;
            else if (cast == 2) rejections += 1;
        }
    }

    function _isVoter(address account) private view returns (bool) {
        Member storage m = _members[account];
        return m.status == MemberStatus.Active && m.role == Role.Member;
    }

    function _checkHpkeKey(bytes memory key) private pure {
        if (key.length != X25519_KEY_LENGTH && key.length != HYBRID_KEY_LENGTH) {
            revert ConsortiumRegistryInvalidHpkeKey(key.length);
        }
    }

    function _checkTransition(ProposalKind kind, address account, MemberStatus current) private view {
        bool ok;
        if (kind == ProposalKind.SuspendMember) ok = current == MemberStatus.Active;
        else if (kind == ProposalKind.ReinstateMember) ok = current == MemberStatus.Suspended;
        else if (kind == ProposalKind.RemoveMember) ok = current == MemberStatus.Active || current == MemberStatus.Suspended;
        if (!ok) revert ConsortiumRegistryInvalidStatus(account, current);
        // The consortium must keep at least one voter, or it could never govern itself again.
        if (
            kind != ProposalKind.ReinstateMember && current == MemberStatus.Active
                && _members[account].role == Role.Member && _activeVoters == 1
        ) revert ConsortiumRegistryLastVoter(account);
    }

    function _propose(ProposalKind kind, address target, bytes memory payload) private returns (uint256 id) {
        id = _proposals.length;
        _madeAt[id] = ++_clock;
        _electorate[id] = uint32(_activeVoters);
        uint64 expiresAt = uint64(block.timestamp) + _votingPeriod;
        _proposals.push(
            Proposal({
                kind: kind,
                target: target,
                proposer: msg.sender,
                createdAt: uint64(block.timestamp),
                expiresAt: expiresAt,
                approvals: 0,
                rejections: 0,
                executed: false,
                payload: payload
            })
        );
        emit ProposalCreated(id, kind, target, msg.sender, expiresAt, payload);
        _vote(id, true);
    }

    function _vote(uint256 proposalId, bool support) private {
        if (_votes[proposalId][msg.sender] != 0) revert ConsortiumRegistryAlreadyVoted(proposalId, msg.sender);
        _votes[proposalId][msg.sender] = support ? 1 : 2;
        Proposal storage p = _proposals[proposalId];
        if (support) p.approvals += 1;
        else p.rejections += 1;
        emit ProposalVoted(proposalId, msg.sender, support);
    }

    function _addMember(address account, Role role, string memory name, string memory endpoint, bytes memory key)
        private
    {
        if (account == address(0)) revert ConsortiumRegistryInvalidAccount(account);
        if (_members[account].status != MemberStatus.None) revert ConsortiumRegistryDuplicateMember(account);
        if (role != Role.Member && role != Role.Auditor) revert ConsortiumRegistryInvalidRole(role);
        _checkHpkeKey(key);
        uint32 index = uint32(_accounts.length);
        _accounts.push(account);
        Member storage m = _members[account];
        m.account = account;
        m.index = index;
        m.role = role;
        m.status = MemberStatus.Active;
        m.keyVersion = 1;
        m.joinedAt = uint64(block.timestamp);
        m.name = name;
        m.endpoint = endpoint;
        m.hpkePublicKey = key;
        if (role == Role.Member) {
            _activeVoters += 1;
            _terms[account] = VoterTerm({since: ++_clock, until: 0, untilTime: 0});
        }
        emit MemberAdded(account, index, role, name, endpoint, key);
        _push(m);
    }

    function _setStatus(address account, MemberStatus next) private {
        Member storage m = _members[account];
        MemberStatus previous = m.status;
        if (m.role == Role.Member) {
            if (previous == MemberStatus.Active && next != MemberStatus.Active) {
                _activeVoters -= 1;
                VoterTerm storage term = _terms[account];
                term.until = ++_clock;
                term.untilTime = uint64(block.timestamp);
            }
            if (previous != MemberStatus.Active && next == MemberStatus.Active) {
                _activeVoters += 1;
                _terms[account] = VoterTerm({since: ++_clock, until: 0, untilTime: 0});
            }
        }
        m.status = next;
        emit MemberStatusChanged(account, previous, next);
        _push(m);
    }

    function _push(Member storage m) private {
        for (uint256 i = 0; i < _consumers.length; ++i) {
            IMembershipConsumer(_consumers[i]).onMembershipChanged(m.account, m.index, m.role, m.status);
        }
    }
}
