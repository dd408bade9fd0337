// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {IMembershipConsumer, Role, MemberStatus} from "../interfaces/IConsortiumRegistry.sol";

/// @title MembershipMirror
/// @notice Local copy of consortium membership, written only by the ConsortiumRegistry.
/// @dev The registry stays the single source of truth: it pushes every change to its bound
/// consumers in the same transaction, so the mirror can never lag the registry. Each seat packs
/// index, role, status and one per-member counter (used by AccessTrail as the entry sequence)
/// into a single storage slot, so a write permission check costs one SLOAD.
/// No personal data: seats hold institutional accounts only.
abstract contract MembershipMirror is IMembershipConsumer {
    /// @dev One slot per member account.
    struct Seat {
        uint32 index;
        Role role;
        MemberStatus status;
        uint64 counter;
    }

    address private immutable _registry;
    mapping(address account => Seat) internal _seats;
    mapping(uint32 index => address account) internal _accountAt;

    constructor(address registry_) {
        _registry = registry_;
    }

    /// @inheritdoc IMembershipConsumer
    function onMembershipChanged(address account, uint32 index, Role role, MemberStatus status) external {
        if (msg.sender != _registry) revert MembershipConsumerNotRegistry(msg.sender);
        Seat storage seat = _seats[account];
        seat.index = index;
        seat.role = role;
        seat.status = status;
        _accountAt[index] = account;
    }

    /// @notice The ConsortiumRegistry this contract mirrors.
    function registry() external view returns (address) {
        return _registry;
    }

    function _isActiveMember(address account) internal view returns (bool) {
        Seat storage seat = _seats[account];
        return seat.status == MemberStatus.Active && seat.role == Role.Member;
    }

    function _isActiveAuditor(address account) internal view returns (bool) {
        Seat storage seat = _seats[account];
        return seat.status == MemberStatus.Active && seat.role == Role.Auditor;
    }
}
