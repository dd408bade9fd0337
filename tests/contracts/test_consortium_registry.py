"""ConsortiumRegistry: genesis, governance by strict majority, and the permissioning it pushes."""

from __future__ import annotations

from eth_account import Account

from ledger_api.chain.backends import ChainBackend
from ledger_api.chain.commitments import new_salt, record_subject
from ledger_api.chain.deployment import deploy_contract
from ledger_api.chain.ids import mint_record_id
from ledger_api.chain.transactions import TransactionSender
from ledger_api.chain.types import MemberStatus, ProposalKind, ProposalState, Role
from tests.utils.actors import HYBRID_KEY, X25519_KEY, Chain, reverts


def _pass(chain: Chain, proposal_id: int) -> None:
    """A and B approve (with the proposer A that is 2 of 3 voters), then C executes."""
    chain.as_(chain.actors.b).registry.vote(proposal_id, True)
    chain.as_(chain.actors.c).registry.execute(proposal_id)


def _proposal_id(receipt) -> int:
    return receipt.event("ProposalCreated").args["proposalId"]


class TestGenesis:
    def test_genesis_members_are_active_with_their_roles_and_keys(self, chain: Chain) -> None:
        members = chain.read.registry.members()
        assert [m.account for m in members] == [
            chain.actors.a.address,
            chain.actors.b.address,
            chain.actors.c.address,
            chain.actors.auditor.address,
        ]
        assert [m.role for m in members] == [Role.MEMBER, Role.MEMBER, Role.MEMBER, Role.AUDITOR]
        assert all(m.status == MemberStatus.ACTIVE and m.key_version == 1 for m in members)
        assert members[0].hpke_public_key == HYBRID_KEY
        assert members[0].name == "Dapeng New District People's Hospital"
        assert chain.read.registry.active_voter_count() == 3
        assert chain.read.registry.member(chain.actors.b.address).index == 1

    def test_auditors_are_active_but_not_voting_members(self, chain: Chain) -> None:
        registry = chain.read.registry
        assert registry.is_active_auditor(chain.actors.auditor.address)
        assert not registry.is_active_member(chain.actors.auditor.address)
        assert registry.is_active(chain.actors.auditor.address)
        assert not registry.is_active(chain.actors.stranger.address)

    def test_unknown_member_lookup_names_the_account(self, chain: Chain) -> None:
        with reverts("ConsortiumRegistryUnknownMember", account=chain.actors.stranger.address):
            chain.read.registry.member(chain.actors.stranger.address)
        with reverts("ConsortiumRegistryUnknownMember"):
            chain.read.registry.member_at(99)

    def test_consumers_are_bound_once_by_the_deployer(self, chain: Chain) -> None:
        manifest = chain.manifest
        assert chain.read.registry.consumers() == [
            manifest.address(n) for n in ("ConsentRegistry", "RecordRegistry", "AccessTrail")
        ]
        with reverts("ConsortiumRegistryConsumersAlreadyBound"):
            chain.as_(chain.actors.deployer).registry.bind_consumers([chain.actors.stranger.address])
        with reverts("ConsortiumRegistryNotDeployer", caller=chain.actors.a.address):
            chain.as_(chain.actors.a).registry.bind_consumers([chain.actors.stranger.address])

    def test_only_the_registry_may_update_a_mirror(self, chain: Chain) -> None:
        stranger = chain.as_(chain.actors.stranger)
        fn = stranger.consents.contract.functions.onMembershipChanged(chain.actors.stranger.address, 9, 1, 1)
        with reverts("MembershipConsumerNotRegistry", caller=chain.actors.stranger.address):
            stranger.consents.sender.send(fn, contract="ConsentRegistry")

    def test_genesis_must_be_non_empty_with_a_voter_and_valid_members(self, chain: Chain) -> None:
        deployer = TransactionSender(chain.w3, chain.actors.deployer, chain_id=chain.backend.chain_id)
        with reverts("ConsortiumRegistryEmptyGenesis"):
            deploy_contract(deployer, "ConsortiumRegistry", [], 3600)
        auditor_only = [(chain.actors.auditor.address, int(Role.AUDITOR), "Audit", "https://x", X25519_KEY)]
        with reverts("ConsortiumRegistryNoVoterInGenesis"):
            deploy_contract(deployer, "ConsortiumRegistry", auditor_only, 3600)
        twice = [(chain.actors.a.address, 1, "A", "https://a", X25519_KEY)] * 2
        with reverts("ConsortiumRegistryDuplicateMember", account=chain.actors.a.address):
            deploy_contract(deployer, "ConsortiumRegistry", twice, 3600)
        bad_key = [(chain.actors.a.address, 1, "A", "https://a", b"\x01" * 31)]
        with reverts("ConsortiumRegistryInvalidHpkeKey", length=31):
            deploy_contract(deployer, "ConsortiumRegistry", bad_key, 3600)
        no_role = [(chain.actors.a.address, 0, "A", "https://a", X25519_KEY)]
        with reverts("ConsortiumRegistryInvalidRole", role=0):
            deploy_contract(deployer, "ConsortiumRegistry", no_role, 3600)
        zero = [("0x" + "00" * 20, 1, "A", "https://a", X25519_KEY)]
        with reverts("ConsortiumRegistryInvalidAccount"):
            deploy_contract(deployer, "ConsortiumRegistry", zero, 3600)


class TestGovernance:
    def test_adding_a_member_takes_a_strict_majority(self, chain: Chain) -> None:
        candidate = chain.actors.candidate.address
        receipt = chain.as_(chain.actors.a).registry.propose_add_member(
            candidate, Role.MEMBER, "Dapeng Maternity Clinic", "https://d.example", X25519_KEY
        )
        pid = _proposal_id(receipt)
        assert receipt.event("ProposalVoted").args == {
            "proposalId": pid,
            "voter": chain.actors.a.address,
            "support": True,
        }
        # 1 of 3 is no majority yet
        assert chain.read.registry.proposal_state(pid) == ProposalState.PENDING
        with reverts("ConsortiumRegistryProposalNotApproved", proposalId=pid, state=int(ProposalState.PENDING)):
            chain.as_(chain.actors.a).registry.execute(pid)
        chain.as_(chain.actors.b).registry.vote(pid, True)
        assert chain.read.registry.proposal_state(pid) == ProposalState.APPROVED
        receipt = chain.as_(chain.actors.c).registry.execute(pid)
        assert receipt.event("MemberAdded").args["account"] == candidate
        assert receipt.event("ProposalExecuted").args["executor"] == chain.actors.c.address
        assert chain.read.registry.proposal_state(pid) == ProposalState.EXECUTED
        member = chain.read.registry.member(candidate)
        assert (member.status, member.role, member.index) == (MemberStatus.ACTIVE, Role.MEMBER, 4)
        assert chain.read.registry.active_voter_count() == 4
        # the new member can write to the other contracts at once (mirror pushed)
        chain.backend.fund(candidate, 10**18)
        assert chain.read.consents._read("registry") == chain.manifest.address("ConsortiumRegistry")
        chain.as_(chain.actors.candidate).trail.anchor_batch(b"\x01" * 32, 1, 1)
        assert chain.read.trail.last_sequence(candidate) == 1

    def test_adding_an_auditor_does_not_add_a_voter(self, chain: Chain) -> None:
        pid = _proposal_id(
            chain.as_(chain.actors.a).registry.propose_add_member(
                chain.actors.candidate.address, Role.AUDITOR, "Provincial Health Commission", "https://p", X25519_KEY
            )
        )
        _pass(chain, pid)
        assert chain.read.registry.is_active_auditor(chain.actors.candidate.address)
        assert chain.read.registry.active_voter_count() == 3

    def test_rejections_defeat_a_proposal(self, chain: Chain) -> None:
        pid = _proposal_id(
            chain.as_(chain.actors.a).registry.propose_status_change(
                ProposalKind.SUSPEND_MEMBER, chain.actors.c.address
            )
        )
        chain.as_(chain.actors.b).registry.vote(pid, False)
        assert chain.read.registry.proposal_state(pid) == ProposalState.PENDING  # 1 of 3 against
        chain.as_(chain.actors.c).registry.vote(pid, False)
        assert chain.read.registry.proposal_state(pid) == ProposalState.DEFEATED
        with reverts("ConsortiumRegistryProposalNotApproved", state=int(ProposalState.DEFEATED)):
            chain.as_(chain.actors.a).registry.execute(pid)

    def test_proposals_expire_after_the_voting_period(self, chain: Chain) -> None:
        pid = _proposal_id(
            chain.as_(chain.actors.a).registry.propose_status_change(
                ProposalKind.SUSPEND_MEMBER, chain.actors.c.address
            )
        )
        chain.backend.increase_time(chain.read.registry.voting_period() + 1)
        assert chain.read.registry.proposal_state(pid) == ProposalState.EXPIRED
        with reverts("ConsortiumRegistryProposalNotPending", proposalId=pid, state=int(ProposalState.EXPIRED)):
            chain.as_(chain.actors.b).registry.vote(pid, True)

    def test_each_voter_votes_once_and_only_voters_vote(self, chain: Chain) -> None:
        pid = _proposal_id(
            chain.as_(chain.actors.a).registry.propose_status_change(
                ProposalKind.SUSPEND_MEMBER, chain.actors.c.address
            )
        )
        with reverts("ConsortiumRegistryAlreadyVoted", proposalId=pid, voter=chain.actors.a.address):
            chain.as_(chain.actors.a).registry.vote(pid, False)
        for outsider in (chain.actors.auditor, chain.actors.stranger):
            with reverts("ConsortiumRegistryNotVoter", account=outsider.address):
                chain.as_(outsider).registry.vote(pid, True)
            with reverts("ConsortiumRegistryNotVoter", account=outsider.address):
                chain.as_(outsider).registry.propose_status_change(ProposalKind.SUSPEND_MEMBER, chain.actors.b.address)
        with reverts("ConsortiumRegistryUnknownProposal", proposalId=99):
            chain.as_(chain.actors.b).registry.vote(99, True)
        assert chain.read.registry.has_voted(pid, chain.actors.a.address)
        assert not chain.read.registry.has_voted(pid, chain.actors.b.address)

    def test_suspension_blocks_writes_and_reinstatement_restores_them(self, chain: Chain) -> None:
        c = chain.actors.c
        pid = _proposal_id(
            chain.as_(chain.actors.a).registry.propose_status_change(ProposalKind.SUSPEND_MEMBER, c.address)
        )
        chain.as_(chain.actors.b).registry.vote(pid, True)
        receipt = chain.as_(chain.actors.a).registry.execute(pid)
        assert receipt.event("MemberStatusChanged").args == {
            "account": c.address,
            "previous": int(MemberStatus.ACTIVE),
            "current": int(MemberStatus.SUSPENDED),
        }
        assert chain.read.registry.active_voter_count() == 2
        with reverts("AccessTrailNotActiveMember", account=c.address):
            chain.as_(c).trail.anchor_batch(b"\x01" * 32, 1, 1)
        with reverts("RecordRegistryNotActiveMember", account=c.address):
            chain.as_(c).records.anchor_record(
                mint_record_id(c.address),
                record_subject(mint_record_id(c.address), chain.actors.patient.address, 0, new_salt()),
                b"\x02" * 32,
            )
        with reverts("ConsentRegistryNotActiveMember", account=c.address):
            chain.as_(c).consents.declare_break_glass(chain.actors.patient.address, b"\x03" * 32)
        with reverts("ConsortiumRegistryNotVoter", account=c.address):
            chain.as_(c).registry.vote(pid, True)
        # reinstate: with 2 voters, both must approve
        pid = _proposal_id(
            chain.as_(chain.actors.a).registry.propose_status_change(ProposalKind.REINSTATE_MEMBER, c.address)
        )
        with reverts("ConsortiumRegistryProposalNotApproved"):
            chain.as_(chain.actors.a).registry.execute(pid)
        chain.as_(chain.actors.b).registry.vote(pid, True)
        chain.as_(chain.actors.b).registry.execute(pid)
        assert chain.read.registry.member(c.address).status == MemberStatus.ACTIVE
        chain.as_(c).trail.anchor_batch(b"\x01" * 32, 1, 1)

    def test_removal_is_final(self, chain: Chain) -> None:
        c = chain.actors.c.address
        _pass(
            chain, _proposal_id(chain.as_(chain.actors.a).registry.propose_status_change(ProposalKind.REMOVE_MEMBER, c))
        )
        assert chain.read.registry.member(c).status == MemberStatus.REMOVED
        for kind in (ProposalKind.REINSTATE_MEMBER, ProposalKind.SUSPEND_MEMBER, ProposalKind.REMOVE_MEMBER):
            with reverts("ConsortiumRegistryInvalidStatus", account=c, status=int(MemberStatus.REMOVED)):
                chain.as_(chain.actors.a).registry.propose_status_change(kind, c)
        with reverts("ConsortiumRegistryInvalidStatus", account=c):
            chain.as_(chain.actors.a).registry.propose_key_update(c, "https://c2", X25519_KEY)
        with reverts("ConsortiumRegistryDuplicateMember", account=c):
            chain.as_(chain.actors.a).registry.propose_add_member(c, Role.MEMBER, "again", "https://c", X25519_KEY)

    def test_invalid_transitions_and_proposals_are_refused(self, chain: Chain) -> None:
        a = chain.as_(chain.actors.a).registry
        with reverts(
            "ConsortiumRegistryInvalidStatus", account=chain.actors.b.address, status=int(MemberStatus.ACTIVE)
        ):
            a.propose_status_change(ProposalKind.REINSTATE_MEMBER, chain.actors.b.address)
        with reverts("ConsortiumRegistryUnknownMember", account=chain.actors.stranger.address):
            a.propose_status_change(ProposalKind.SUSPEND_MEMBER, chain.actors.stranger.address)
        with reverts("ConsortiumRegistryInvalidStatus"):
            a.propose_status_change(ProposalKind.ADD_MEMBER, chain.actors.b.address)
        with reverts("ConsortiumRegistryInvalidRole", role=0):
            a.propose_add_member(chain.actors.candidate.address, Role.NONE, "x", "https://x", X25519_KEY)
        with reverts("ConsortiumRegistryInvalidHpkeKey", length=33):
            a.propose_add_member(chain.actors.candidate.address, Role.MEMBER, "x", "https://x", b"\x00" * 33)
        with reverts("ConsortiumRegistryInvalidAccount"):
            a.propose_add_member("0x" + "00" * 20, Role.MEMBER, "x", "https://x", X25519_KEY)
        with reverts("ConsortiumRegistryInvalidHpkeKey", length=5):
            a.propose_key_update(chain.actors.b.address, "https://b2", b"\x00" * 5)

    def test_the_last_voter_cannot_be_voted_out(self, chain: Chain) -> None:
        for target in (chain.actors.c, chain.actors.b):
            pid = _proposal_id(
                chain.as_(chain.actors.a).registry.propose_status_change(ProposalKind.REMOVE_MEMBER, target.address)
            )
            chain.as_(chain.actors.b).registry.vote(pid, True)  # B approves, even its own removal
            chain.as_(chain.actors.a).registry.execute(pid)
        assert chain.read.registry.active_voter_count() == 1
        with reverts("ConsortiumRegistryLastVoter", account=chain.actors.a.address):
            chain.as_(chain.actors.a).registry.propose_status_change(
                ProposalKind.SUSPEND_MEMBER, chain.actors.a.address
            )

    def test_key_update_rotates_endpoint_and_hpke_key(self, chain: Chain) -> None:
        b = chain.actors.b.address
        pid = _proposal_id(chain.as_(chain.actors.a).registry.propose_key_update(b, "https://b2.example", HYBRID_KEY))
        chain.as_(chain.actors.c).registry.vote(pid, True)
        receipt = chain.as_(chain.actors.c).registry.execute(pid)
        assert receipt.event("MemberKeysUpdated").args["keyVersion"] == 2
        member = chain.read.registry.member(b)
        assert (member.endpoint, member.hpke_public_key, member.key_version) == ("https://b2.example", HYBRID_KEY, 2)

    def test_an_approved_add_fails_if_the_account_joined_meanwhile(self, chain: Chain) -> None:
        candidate = chain.actors.candidate.address
        first = _proposal_id(
            chain.as_(chain.actors.a).registry.propose_add_member(
                candidate, Role.MEMBER, "one", "https://1", X25519_KEY
            )
        )
        second = _proposal_id(
            chain.as_(chain.actors.b).registry.propose_add_member(
                candidate, Role.MEMBER, "two", "https://2", X25519_KEY
            )
        )
        chain.as_(chain.actors.b).registry.vote(first, True)
        chain.as_(chain.actors.a).registry.vote(second, True)
        chain.as_(chain.actors.a).registry.execute(first)
        # four voters now, but the second proposal's electorate was fixed at three: two approvals stay its majority
        assert chain.read.registry.proposal_state(second) == ProposalState.APPROVED
        with reverts("ConsortiumRegistryDuplicateMember", account=candidate):
            chain.as_(chain.actors.a).registry.execute(second)

    def test_proposal_records_its_terms(self, chain: Chain) -> None:
        receipt = chain.as_(chain.actors.a).registry.propose_status_change(
            ProposalKind.SUSPEND_MEMBER, chain.actors.c.address
        )
        proposal = chain.read.registry.proposal(_proposal_id(receipt))
        assert proposal.kind == ProposalKind.SUSPEND_MEMBER
        assert (proposal.target, proposal.proposer) == (chain.actors.c.address, chain.actors.a.address)
        assert proposal.expires_at == proposal.created_at + chain.read.registry.voting_period()
        assert (proposal.approvals, proposal.rejections, proposal.executed) == (1, 0, False)
        assert chain.read.registry.proposal_count() == 1
        with reverts("ConsortiumRegistryUnknownProposal", proposalId=7):
            chain.read.registry.proposal(7)


def test_fresh_accounts_have_no_role(chain: Chain) -> None:
    nobody = Account.create().address
    assert not chain.read.registry.is_active_member(nobody)
    assert not chain.read.registry.is_active_auditor(nobody)


def test_backend_reports_chain_id(chain: Chain) -> None:
    backend: ChainBackend = chain.backend
    assert backend.chain_id == chain.manifest.chain_id


def test_an_executed_proposal_takes_no_more_votes_or_executions(chain: Chain) -> None:
    pid = _proposal_id(
        chain.as_(chain.actors.a).registry.propose_status_change(ProposalKind.SUSPEND_MEMBER, chain.actors.c.address)
    )
    _pass(chain, pid)
    with reverts("ConsortiumRegistryNotVoter", account=chain.actors.c.address):  # c is suspended now
        chain.as_(chain.actors.c).registry.vote(pid, True)
    with reverts("ConsortiumRegistryProposalNotApproved", proposalId=pid, state=int(ProposalState.EXECUTED)):
        chain.as_(chain.actors.a).registry.execute(pid)
    pid2 = _proposal_id(
        chain.as_(chain.actors.a).registry.propose_status_change(ProposalKind.REINSTATE_MEMBER, chain.actors.c.address)
    )
    chain.as_(chain.actors.b).registry.vote(pid2, True)
    chain.as_(chain.actors.b).registry.execute(pid2)
    with reverts("ConsortiumRegistryProposalNotPending", proposalId=pid2, state=int(ProposalState.EXECUTED)):
        chain.as_(chain.actors.c).registry.vote(pid2, True)


class TestValidators:
    """Member = validator: each member or auditor names the validator it runs; the member nodes vote the
    network's validator set to follow (tests/network)."""

    def test_an_active_member_or_auditor_names_its_validator_and_may_replace_it(self, chain: Chain) -> None:
        first, second = Account.create().address, Account.create().address
        assert chain.read.registry.validator_of(chain.actors.a.address) is None
        receipt = chain.as_(chain.actors.a).registry.declare_validator(first)
        assert receipt.event("ValidatorDeclared").args["validator"] == first
        chain.as_(chain.actors.auditor).registry.declare_validator(second)
        assert chain.read.registry.validator_of(chain.actors.auditor.address) == second
        replacement = Account.create().address
        chain.as_(chain.actors.a).registry.declare_validator(replacement)
        assert chain.read.registry.validator_of(chain.actors.a.address) == replacement
        chain.as_(chain.actors.b).registry.declare_validator(first)  # released by the replacement: free again

    def test_a_validator_is_one_members_and_strangers_name_none(self, chain: Chain) -> None:
        validator = Account.create().address
        chain.as_(chain.actors.a).registry.declare_validator(validator)
        with reverts("ConsortiumRegistryValidatorTaken", validator=validator, heldBy=chain.actors.a.address):
            chain.as_(chain.actors.b).registry.declare_validator(validator)
        with reverts("ConsortiumRegistryInvalidStatus", account=chain.actors.stranger.address):
            chain.as_(chain.actors.stranger).registry.declare_validator(Account.create().address)
        with reverts("ConsortiumRegistryInvalidAccount"):
            chain.as_(chain.actors.a).registry.declare_validator("0x0000000000000000000000000000000000000000")
