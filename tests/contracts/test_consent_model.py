"""A model of the consent lifecycle, run by hypothesis against the real ConsentRegistry on the EVM.

Random sequences of: grants (by the patient, or by a delegate who may or may not be appointed; naming one
member or several; for every day of care or a range of days); revocations (by the patient, a delegate or a
stranger); delegate appointments, edits and removals (view or manage, with or without an end, with or without
excluded categories: a delegate's grant or revocation is accepted exactly when the delegation manages, has not
ended, and keeps none of the consent's categories from them); break-glass declarations; the passing of time;
one of the patient's records (labs, on the episode's first day) hidden and shown again by its custodian (a
no-op or another member's change refused), released exactly when a consent permits it and it is not hidden;
the patient's key rotated (by the key that signs now; refused when another signs), after which a replaced key
decides nothing; a child's account a member registers with the delegate as guardian, and the child's claim of
it (refused before the claim day, accepted once after, leaving the guardian what the child chose).
After every step the contract's ``isPermitted``, ``isDelegate``, ``accountOf``, ``minorUntil``, ``isHidden``
and ``emergencyAccess`` must agree with the model for every member, category, purpose and day of care probed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from medledger_crypto import KeyRotation, MinorClaim, TypedMessage, sign_typed

from ledger_api.chain.backends import AnvilBackend
from ledger_api.chain.commitments import new_salt, record_subject
from ledger_api.chain.deployment import DeploymentManifest
from ledger_api.chain.ids import mint_record_id
from ledger_api.chain.types import DelegateScope, Delegation
from ledger_api.consents.wire import terms_under_notice
from ledger_api.errors import ContractReverted, TransactionFailed
from tests.utils.actors import Actors, Chain, deploy_test_consortium

CATEGORIES, PURPOSES = range(3), range(2)
#: a patient's episode of care (days since 1970), and the days of the records judged: not stated (so before
#: any range with a start), its first and last day, after
EPISODE = (20_400, 20_410)
DAYS = (0, 20_400, 20_410, 20_411)
#: timestamps this close to a window's edge are not judged (the block a call reads may be one off)
EDGE_S = 3


@dataclass
class ModelConsent:
    consent_id: int
    grantees: tuple[str, ...]
    categories: int
    purposes: int
    valid_from: int
    valid_until: int
    care_from: int = 0
    care_to: int = 0
    revoked: bool = False

    def covers_day(self, day: int) -> bool:
        return day >= self.care_from and (self.care_to == 0 or day <= self.care_to)


@dataclass
class ModelChild:
    account: str
    until: int  # the first day (since 1970) the child may claim the account
    claimed: bool = False
    guardian_scope: int = 2


@dataclass(frozen=True)
class ModelDelegation:
    scope: int  # 0 none, 1 view, 2 manage
    valid_until: int = 0
    excluded: int = 0

    def live(self, now: int) -> bool:
        return self.scope != 0 and (self.valid_until == 0 or now < self.valid_until)

    def near_end(self, now: int) -> bool:
        return self.valid_until != 0 and abs(now - self.valid_until) <= EDGE_S

    def decides(self, categories: int, now: int) -> bool:
        return self.scope == 2 and self.live(now) and not self.excluded & categories


@pytest.fixture(scope="module")
def lab() -> Iterator[tuple[AnvilBackend, DeploymentManifest, Actors]]:
    backend, actors = AnvilBackend(), Actors.create()
    try:
        yield backend, deploy_test_consortium(backend, actors), actors
    finally:
        backend.close()


def test_the_contract_agrees_with_the_consent_model_after_every_step(lab) -> None:
    backend, manifest, actors = lab
    members = {"b": actors.b.address, "c": actors.c.address}

    class ConsentLifecycle(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.snapshot = backend.snapshot()
            self.chain = Chain(backend, manifest, actors)
            self.patient = actors.patient.address
            self.consents: list[ModelConsent] = []
            self.delegation = ModelDelegation(0)
            self.key = actors.patient  # the key that signs for the patient's account now
            self.retired: list[LocalAccount] = []
            self.child: ModelChild | None = None
            # one record of the patient's, held by member A: labs, about care on the episode's first day
            self.record = mint_record_id(actors.a.address)
            subject = record_subject(self.record, self.patient, 0, new_salt(), encounter_day=EPISODE[0])
            self.chain.as_(actors.a).records.anchor_record(self.record, subject, b"\x01" * 32)
            self.hidden = False
            self.break_glass: dict[str, int] = {}  # member -> expiry of its latest declaration
            self.duration = self.chain.read.consents.break_glass_duration()

        def teardown(self) -> None:
            backend.revert(self.snapshot)

        def now(self) -> int:
            return self.chain.now()

        @rule(
            by_delegate=st.booleans(),
            grantee=st.sampled_from(["b", "c", "both"]),
            care=st.sampled_from([(0, 0), (EPISODE[0], EPISODE[1]), (0, EPISODE[0]), (EPISODE[1], 0)]),
            categories=st.integers(1, 0b111),
            purposes=st.integers(1, 0b11),
            starts_in=st.sampled_from([-600, 0, 120]),
            lasts=st.sampled_from([60, 600, 7200]),
        )
        def grant(
            self,
            by_delegate: bool,
            grantee: str,
            care: tuple[int, int],
            categories: int,
            purposes: int,
            starts_in: int,
            lasts: int,
        ) -> None:
            start = self.now() + starts_in
            terms = terms_under_notice(
                grantees=tuple(members.values()) if grantee == "both" else (members[grantee],),
                categories=categories,
                purposes=purposes,
                valid_from=max(start, 0),
                valid_until=max(start, 0) + lasts,
                care_from=care[0],
                care_to=care[1],
            )
            signer = actors.delegate if by_delegate else self.key
            # the contract refuses a window that is already over when the grant lands
            now = self.now()
            if by_delegate and self.delegation.near_end(now):
                return
            authorized = not by_delegate or self.delegation.decides(categories, now)
            live, over = terms.valid_until > now + EDGE_S, terms.valid_until <= now - EDGE_S
            try:
                receipt = self.chain.as_(signer).consents.grant(self.patient, terms)
            # a window ending as the grant lands can pass the gas estimate and fail in the block (one second
            # later): a failed transaction, whose replay one block back does not revert, is a refusal too
            except (ContractReverted, TransactionFailed):
                assert not (authorized and live), "a grant the model allows was refused"
                return
            assert authorized, "a grant by someone who is not (or no longer) a delegate deciding on it was accepted"
            assert not over, "a grant whose window is already over was accepted"
            self.consents.append(
                ModelConsent(
                    receipt.event("ConsentGranted").args["consentId"],
                    terms.grantees,
                    categories,
                    purposes,
                    terms.valid_from,
                    terms.valid_until,
                    terms.care_from,
                    terms.care_to,
                )
            )

        @rule(data=st.data(), by=st.sampled_from(["patient", "delegate", "stranger"]))
        def revoke(self, data: st.DataObject, by: str) -> None:
            if not self.consents:
                return
            consent = data.draw(st.sampled_from(self.consents))
            now = self.now()
            if by == "delegate" and self.delegation.near_end(now):
                return
            by_delegate = by == "delegate" and self.delegation.decides(consent.categories, now)
            allowed = not consent.revoked and (by == "patient" or by_delegate)
            try:
                self.chain.as_(self.key if by == "patient" else getattr(actors, by)).consents.revoke(consent.consent_id)
            except ContractReverted:
                assert not allowed, f"a revocation by the {by} the model allows was refused"
                return
            assert allowed, f"a revocation by the {by} was accepted against the model"
            consent.revoked = True

        @rule(
            scope=st.sampled_from([0, 1, 2]),
            ends_in=st.sampled_from([None, -60, 100, 7200]),
            excluded=st.sampled_from([0, 0b1, 0b110]),
        )
        def change_delegate(self, scope: int, ends_in: int | None, excluded: int) -> None:
            now = self.now()
            wanted = ModelDelegation(scope, 0 if ends_in is None else max(now + ends_in, 0), excluded)
            valid = (wanted.valid_until == 0 or wanted.valid_until > now) and not (
                scope == 0 and (wanted.valid_until or excluded)
            )
            terms = Delegation(
                delegate=actors.delegate.address,
                scope=DelegateScope(scope),
                valid_until=wanted.valid_until,
                excluded_categories=excluded,
            )
            try:
                self.chain.as_(self.key).consents.set_delegate(terms)
            except ContractReverted:
                assert not valid or wanted == self.delegation, "a real delegate change was refused"
                return
            assert valid and wanted != self.delegation, "an invalid or no-op delegate change was accepted"
            self.delegation = wanted

        @rule(member=st.sampled_from(["b", "c"]))
        def declare_break_glass(self, member: str) -> None:
            consents = self.chain.as_(getattr(actors, member)).consents
            receipt = consents.declare_break_glass(self.patient, b"\x01" * 32)
            self.break_glass[members[member]] = receipt.event("BreakGlassDeclared").args["expiresAt"]

        @rule(hidden=st.booleans(), by_custodian=st.booleans())
        def hide_the_record(self, hidden: bool, by_custodian: bool) -> None:
            member = actors.a if by_custodian else actors.b
            try:
                self.chain.as_(member).records.set_hidden(self.record, hidden)
            except ContractReverted:
                assert not by_custodian or hidden == self.hidden, "the custodian's real change was refused"
                return
            assert by_custodian and hidden != self.hidden, "another member's change, or a no-op, was accepted"
            self.hidden = hidden

        @rule(by_current=st.booleans())
        def rotate_key(self, by_current: bool) -> None:
            new = Account.create()
            backend.fund(new.address, 10**19)
            signer = self.key if by_current else (self.retired[-1] if self.retired else actors.stranger)
            deadline = self.now() + 600
            nonce = self.chain.read.consents.nonce(self.patient)
            message = KeyRotation(patient=self.patient, new_key=new.address, nonce=nonce, deadline=deadline)
            try:
                self.chain.as_(actors.a).consents.rotate_key_by_sig(
                    self.patient, new.address, deadline, self._signed(signer, message)
                )
            except ContractReverted:
                assert not by_current, "a rotation signed by the key that signs now was refused"
                return
            assert by_current, "a rotation signed by a replaced or foreign key was accepted"
            self.retired.append(self.key)
            self.key = new

        @rule()
        def a_replaced_key_decides_nothing(self) -> None:
            if not self.retired:
                return
            terms = terms_under_notice(
                grantees=(members["b"],), categories=1, purposes=1, valid_from=0, valid_until=self.now() + 3600
            )
            try:
                self.chain.as_(self.retired[-1]).consents.grant(self.patient, terms)
            except ContractReverted:
                return
            raise AssertionError("a replaced key granted a consent")

        @rule(claims_in_days=st.sampled_from([1, 2]))
        def register_child(self, claims_in_days: int) -> None:
            if self.child is not None:
                return
            account = Account.create().address
            until = self.now() // 86_400 + claims_in_days
            self.chain.as_(actors.a).consents.register_minor(account, actors.delegate.address, until)
            self.child = ModelChild(account, until)

        @rule(guardian_scope=st.sampled_from([0, 1, 2]))
        def child_claims(self, guardian_scope: int) -> None:
            child = self.child
            if child is None:
                return
            key = Account.create()
            deadline = self.now() + 600
            message = MinorClaim(
                account=child.account, key=key.address, guardian_scope=guardian_scope, deadline=deadline
            )
            of_age = self.now() // 86_400 >= child.until
            try:
                self.chain.as_(actors.a).consents.claim_minor_by_sig(
                    child.account, key.address, guardian_scope, deadline, self._signed(key, message)
                )
            except ContractReverted:
                assert child.claimed or not of_age, "a claim of age of an unclaimed account was refused"
                return
            assert of_age and not child.claimed, "a claim before the claim day, or a second one, was accepted"
            child.claimed, child.guardian_scope = True, guardian_scope

        def _signed(self, signer: LocalAccount, message: TypedMessage) -> tuple[int, bytes, bytes]:
            contract = manifest.address("ConsentRegistry")
            return sign_typed(signer, message.document(chain_id=backend.chain_id, contract=contract))

        @rule(seconds=st.sampled_from([30, 150, 700, 7300, 86_400]))
        def time_passes(self, seconds: int) -> None:
            backend.increase_time(seconds)

        @invariant()
        def the_contract_agrees(self) -> None:
            now = self.now()
            read = self.chain.read.consents
            if not self.delegation.near_end(now):
                assert read.is_delegate(self.patient, actors.delegate.address) == self.delegation.live(now)
            assert read.account_of(self.key.address) == self.patient
            assert self.chain.read.records.is_hidden(self.record) == self.hidden
            for member in members.values():  # what the custodian releases of the record: a consent, and not hidden
                covering = [
                    c
                    for c in self.consents
                    if not c.revoked
                    and member in c.grantees
                    and c.categories & 1
                    and c.purposes & 1
                    and c.covers_day(EPISODE[0])
                ]
                if any(min(abs(now - c.valid_from), abs(now - c.valid_until)) <= EDGE_S for c in covering):
                    continue
                permitted = read.is_permitted(self.patient, member, 0, 0, EPISODE[0])
                released = permitted and not self.chain.read.records.is_hidden(self.record)
                assert released == (any(c.valid_from <= now < c.valid_until for c in covering) and not self.hidden)
            assert all(read.account_of(old.address) is None for old in self.retired)
            if self.child is not None:
                child = self.child
                assert read.minor_until(child.account) == (0 if child.claimed else child.until)
                guardian_stands = not child.claimed or child.guardian_scope != 0
                assert read.is_delegate(child.account, actors.delegate.address) == guardian_stands
            for member in members.values():
                for category, purpose, day in itertools.product(CATEGORIES, PURPOSES, DAYS):
                    covering = [
                        c
                        for c in self.consents
                        if not c.revoked
                        and member in c.grantees
                        and c.categories >> category & 1
                        and c.purposes >> purpose & 1
                        and c.covers_day(day)
                    ]
                    if any(min(abs(now - c.valid_from), abs(now - c.valid_until)) <= EDGE_S for c in covering):
                        continue
                    expected = any(c.valid_from <= now < c.valid_until for c in covering)
                    assert read.is_permitted(self.patient, member, category, purpose, day) == expected, (
                        member,
                        category,
                        purpose,
                        day,
                        now,
                        covering,
                    )
                expiry = self.break_glass.get(member)
                if expiry is None or abs(now - expiry) > EDGE_S:
                    active = expiry is not None and now < expiry
                    assert (read.emergency_access(self.patient, member) is not None) == active, (member, now, expiry)

    run_state_machine_as_test(
        ConsentLifecycle,
        settings=settings(
            max_examples=30,  # x 20 steps: ~50 s of the suite's 20-minute budget
            stateful_step_count=20,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
