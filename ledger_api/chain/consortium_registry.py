"""The ConsortiumRegistry's typed client: members, proposals and votes."""

from __future__ import annotations

from typing import Any

from ledger_api.chain.calldata import checksum_address
from ledger_api.chain.contract import ContractClient, W
from ledger_api.chain.types import Member, MemberStatus, Proposal, ProposalKind, ProposalState, Role


class ConsortiumRegistryClient(ContractClient[W]):
    contract_name = "ConsortiumRegistry"

    # reads
    def member(self, account: str) -> Member:
        return _member(self._read("member", checksum_address(account)))

    def member_and_head(self, account: str) -> tuple[Member, int]:
        """The member's current entry and the latest block number, in one round trip (a signed
        request's check; the block is where its authorisation is then read)."""
        raw, head = self._read_with_head("member", checksum_address(account))
        return _member(raw), head

    def member_at(self, index: int) -> Member:
        return _member(self._read("memberAt", index))

    def member_count(self) -> int:
        return int(self._read("memberCount"))

    def members(self) -> list[Member]:
        """Every member ever admitted, in admission order, with current status."""
        return [self.member_at(i) for i in range(self.member_count())]

    def is_active(self, account: str) -> bool:
        return bool(self._read("isActive", checksum_address(account)))

    def is_active_member(self, account: str) -> bool:
        return bool(self._read("isActiveMember", checksum_address(account)))

    def is_active_auditor(self, account: str) -> bool:
        return bool(self._read("isActiveAuditor", checksum_address(account)))

    def active_voter_count(self) -> int:
        return int(self._read("activeVoterCount"))

    def voting_period(self) -> int:
        return int(self._read("votingPeriod"))

    def proposal(self, proposal_id: int) -> Proposal:
        kind, target, proposer, created, expires, approvals, rejections, executed, payload = self._read(
            "proposal", proposal_id
        )
        return Proposal(
            kind=ProposalKind(kind),
            target=target,
            proposer=proposer,
            created_at=created,
            expires_at=expires,
            approvals=approvals,
            rejections=rejections,
            executed=executed,
            payload=bytes(payload),
        )

    def proposal_state(self, proposal_id: int) -> ProposalState:
        return ProposalState(self._read("proposalState", proposal_id))

    def proposal_tally(self, proposal_id: int) -> tuple[int, int, int, int]:
        """``(electorate, counted, approvals, rejections)``: see the electorate rule in ConsortiumRegistry."""
        electorate, counted, approvals, rejections = self._read("proposalTally", proposal_id)
        return int(electorate), int(counted), int(approvals), int(rejections)

    def proposal_count(self) -> int:
        return int(self._read("proposalCount"))

    def has_voted(self, proposal_id: int, voter: str) -> bool:
        return bool(self._read("hasVoted", proposal_id, checksum_address(voter)))

    def consumers(self) -> list[str]:
        return list(self._read("consumers"))

    def validator_of(self, account: str) -> str | None:
        """The validator ``account`` declared it runs (member = validator), or None."""
        found = str(self._read("validatorOf", checksum_address(account)))
        return None if int(found, 16) == 0 else checksum_address(found)

    # writes
    def bind_consumers(self, consumers: list[str]) -> W:
        return self._write("bindConsumers", [checksum_address(c) for c in consumers])

    def propose_add_member(self, account: str, role: Role, name: str, endpoint: str, hpke_public_key: bytes) -> W:
        return self._write("proposeAddMember", checksum_address(account), int(role), name, endpoint, hpke_public_key)

    def propose_status_change(self, kind: ProposalKind, account: str) -> W:
        return self._write("proposeStatusChange", int(kind), checksum_address(account))

    def propose_key_update(self, account: str, endpoint: str, hpke_public_key: bytes) -> W:
        return self._write("proposeKeyUpdate", checksum_address(account), endpoint, hpke_public_key)

    def vote(self, proposal_id: int, support: bool) -> W:
        return self._write("vote", proposal_id, support)

    def execute(self, proposal_id: int) -> W:
        return self._write("execute", proposal_id)

    def declare_validator(self, validator: str) -> W:
        return self._write("declareValidator", checksum_address(validator))


def _member(raw: Any) -> Member:
    account, index, role, status, key_version, joined_at, name, endpoint, key = raw
    return Member(
        account=account,
        index=index,
        role=Role(role),
        status=MemberStatus(status),
        key_version=key_version,
        joined_at=joined_at,
        name=name,
        endpoint=endpoint,
        hpke_public_key=bytes(key),
    )
