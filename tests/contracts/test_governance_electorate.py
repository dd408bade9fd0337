"""Governance under a changing electorate: the electorate of a proposal is fixed when it is made;
only its members who stay active count; Defeated and Expired are final (ConsortiumRegistry header)."""

from __future__ import annotations

from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger_api.chain.types import MemberStatus, ProposalKind, ProposalState, Role
from tests.utils.actors import X25519_KEY, Chain, reverts


def _pid(receipt) -> int:
    return int(receipt.event("ProposalCreated").args["proposalId"])


def _carry(chain: Chain, receipt, voters: list[LocalAccount]) -> None:
    pid = _pid(receipt)
    for voter in voters:
        if chain.read.registry.proposal_state(pid) == ProposalState.APPROVED:
            break
        chain.as_(voter).registry.vote(pid, True)
    chain.as_(voters[-1]).registry.execute(pid)


def _five_voters(chain: Chain) -> tuple[LocalAccount, ...]:
    """A, B, C plus D and E, added by governance: five voting members."""
    a, b, c = chain.actors.a, chain.actors.b, chain.actors.c
    added = []
    for name in ("Dapeng Maternity Clinic", "Xichong Health Station"):
        new = Account.create()
        chain.backend.fund(new.address, 10**19)
        receipt = chain.as_(a).registry.propose_add_member(
            new.address, Role.MEMBER, name, "https://x.example", X25519_KEY
        )
        voters = [b] if len(added) == 0 else [b, c]
        _carry(chain, receipt, voters)
        added.append(new)
    assert chain.read.registry.active_voter_count() == 5
    return (a, b, c, *added)


def _suspend(chain: Chain, target: str, voters: list[LocalAccount]) -> None:
    receipt = chain.as_(voters[0]).registry.propose_status_change(ProposalKind.SUSPEND_MEMBER, target)
    _carry(chain, receipt, voters[1:])
    assert chain.read.registry.member(target).status == MemberStatus.SUSPENDED


def _remove(chain: Chain, target: str, voters: list[LocalAccount]) -> None:
    receipt = chain.as_(voters[0]).registry.propose_status_change(ProposalKind.REMOVE_MEMBER, target)
    _carry(chain, receipt, voters[1:])
    assert chain.read.registry.member(target).status == MemberStatus.REMOVED


def test_a_defeated_proposal_stays_defeated_when_the_rejecters_are_voted_out(chain: Chain) -> None:
    """The attack: 2 approve, 3 reject (Defeated); two rejecters are then removed. Before, the 2 approvals
    were a majority of the 3 voters left and the proposal became Approved and executable."""
    a, b, c, d, e = _five_voters(chain)
    pid = _pid(chain.as_(a).registry.propose_status_change(ProposalKind.SUSPEND_MEMBER, e.address))
    chain.as_(b).registry.vote(pid, True)
    for rejecter in (c, d, e):
        chain.as_(rejecter).registry.vote(pid, False)
    assert chain.read.registry.proposal_state(pid) == ProposalState.DEFEATED
    _remove(chain, d.address, [a, b, c])
    _remove(chain, e.address, [a, b, c])
    assert chain.read.registry.active_voter_count() == 3
    assert chain.read.registry.proposal_tally(pid) == (5, 3, 2, 1)
    assert chain.read.registry.proposal_state(pid) == ProposalState.DEFEATED
    with reverts("ConsortiumRegistryProposalNotApproved", proposalId=pid, state=int(ProposalState.DEFEATED)):
        chain.as_(a).registry.execute(pid)


def test_the_vote_of_a_member_suspended_after_voting_no_longer_counts(chain: Chain) -> None:
    a, b, c, d, e = _five_voters(chain)
    target = Account.create().address
    pid = _pid(chain.as_(a).registry.propose_add_member(target, Role.MEMBER, "N", "https://n.example", X25519_KEY))
    chain.as_(b).registry.vote(pid, True)
    chain.as_(c).registry.vote(pid, True)
    assert chain.read.registry.proposal_state(pid) == ProposalState.APPROVED  # 3 of 5
    _suspend(chain, c.address, [a, b, d])
    assert chain.read.registry.proposal_tally(pid) == (5, 4, 2, 0)
    assert chain.read.registry.proposal_state(pid) == ProposalState.PENDING  # C's approval went with C
    with reverts("ConsortiumRegistryProposalNotApproved", proposalId=pid, state=int(ProposalState.PENDING)):
        chain.as_(a).registry.execute(pid)
    chain.as_(d).registry.vote(pid, True)
    assert chain.read.registry.proposal_state(pid) == ProposalState.APPROVED
    chain.as_(a).registry.execute(pid)
    assert chain.read.registry.member(target).status == MemberStatus.ACTIVE


def test_a_rejecter_removed_during_the_vote_takes_its_rejection_and_its_seat_with_it(chain: Chain) -> None:
    """The majority stays that of the electorate: removing a rejecter does not lower the bar."""
    a, b, c, d, e = _five_voters(chain)
    pid = _pid(chain.as_(a).registry.propose_status_change(ProposalKind.SUSPEND_MEMBER, b.address))
    chain.as_(e).registry.vote(pid, False)
    _remove(chain, e.address, [a, c, d])
    assert chain.read.registry.proposal_tally(pid) == (5, 4, 1, 0)
    chain.as_(c).registry.vote(pid, True)
    assert chain.read.registry.proposal_state(pid) == ProposalState.PENDING  # 2 of 5 is no majority
    chain.as_(d).registry.vote(pid, True)
    assert chain.read.registry.proposal_state(pid) == ProposalState.APPROVED  # 3 of 5


def test_enough_departures_defeat_a_proposal_and_it_stays_defeated_after_reinstatement(chain: Chain) -> None:
    a, b, c, d, e = _five_voters(chain)
    pid = _pid(chain.as_(a).registry.propose_status_change(ProposalKind.SUSPEND_MEMBER, e.address))
    chain.as_(b).registry.vote(pid, False)
    _suspend(chain, c.address, [a, d, e])
    _suspend(chain, d.address, [a, b, e])
    # left: A (for), B (against), E (not voted): even if E approved, 2 of 5 is no majority
    assert chain.read.registry.proposal_state(pid) == ProposalState.DEFEATED
    for reinstated in (c, d):
        receipt = chain.as_(a).registry.propose_status_change(ProposalKind.REINSTATE_MEMBER, reinstated.address)
        _carry(chain, receipt, [b, e])
    assert chain.read.registry.active_voter_count() == 5
    assert chain.read.registry.proposal_state(pid) == ProposalState.DEFEATED
    with reverts("ConsortiumRegistryProposalNotPending", proposalId=pid, state=int(ProposalState.DEFEATED)):
        chain.as_(c).registry.vote(pid, True)


def test_members_added_or_reinstated_during_a_vote_have_no_vote_on_it(chain: Chain) -> None:
    a, b, c = chain.actors.a, chain.actors.b, chain.actors.c
    pid = _pid(chain.as_(a).registry.propose_key_update(b.address, "https://b2.example", X25519_KEY))
    newcomer = Account.create()
    chain.backend.fund(newcomer.address, 10**19)
    _carry(
        chain,
        chain.as_(a).registry.propose_add_member(newcomer.address, Role.MEMBER, "New", "https://n", X25519_KEY),
        [b],
    )
    with reverts("ConsortiumRegistryNotInElectorate", proposalId=pid, voter=newcomer.address):
        chain.as_(newcomer).registry.vote(pid, True)
    _suspend(chain, c.address, [a, b, newcomer])
    receipt = chain.as_(a).registry.propose_status_change(ProposalKind.REINSTATE_MEMBER, c.address)
    _carry(chain, receipt, [b, newcomer])
    with reverts("ConsortiumRegistryNotInElectorate", proposalId=pid, voter=c.address):
        chain.as_(c).registry.vote(pid, True)  # its unbroken term began after the proposal
    assert chain.read.registry.proposal_tally(pid) == (3, 2, 1, 0)  # A and B still count; C's seat is lost
    chain.as_(b).registry.vote(pid, True)
    assert chain.read.registry.proposal_state(pid) == ProposalState.APPROVED


def test_an_expired_proposal_stays_expired_whatever_membership_does_afterwards(chain: Chain) -> None:
    a, b, c, d, e = _five_voters(chain)
    pid = _pid(chain.as_(a).registry.propose_status_change(ProposalKind.SUSPEND_MEMBER, e.address))
    chain.as_(b).registry.vote(pid, True)
    chain.backend.increase_time(chain.read.registry.voting_period() + 1)
    assert chain.read.registry.proposal_state(pid) == ProposalState.EXPIRED
    _suspend(chain, c.address, [a, b, d])
    _suspend(chain, d.address, [a, b, e])
    _suspend(chain, e.address, [a, b])  # four of the five electorate would now make it Defeated if counted
    assert chain.read.registry.proposal_tally(pid) == (5, 5, 2, 0)  # departures after the period do not count
    assert chain.read.registry.proposal_state(pid) == ProposalState.EXPIRED
    with reverts("ConsortiumRegistryProposalNotApproved", proposalId=pid, state=int(ProposalState.EXPIRED)):
        chain.as_(a).registry.execute(pid)
