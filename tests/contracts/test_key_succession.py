"""A patient account's key changes without the account losing anything (issue: consent v2, 6 and 7): a planned
rotation signed by the old key; a recovery approved by members (in person) and/or guardians, then a time lock
the old key can cancel; a minor's account held by a guardian and claimed by the child at age."""

from __future__ import annotations

from eth_account import Account
from eth_account.signers.local import LocalAccount
from medledger_crypto import KeyRotation, MinorClaim, RecoveryApproval, RecoveryCancellation, TypedMessage, sign_typed

from ledger_api.chain.types import DelegateScope, Succession
from ledger_api.vocabulary import Category, Purpose
from tests.utils.actors import Chain, manages, reverts, views

LABS, TREATMENT = int(Category.LABS), int(Purpose.TREATMENT)
LOCK = 72 * 3600


def _sign(chain: Chain, signer: LocalAccount, message: TypedMessage) -> tuple[int, bytes, bytes]:
    return sign_typed(
        signer, message.document(chain_id=chain.backend.chain_id, contract=chain.manifest.address("ConsentRegistry"))
    )


def _rotate(chain: Chain, signer: LocalAccount, account: str, new_key: str):  # type: ignore[no-untyped-def]
    deadline = chain.now() + 600
    nonce = chain.read.consents.nonce(account)
    signature = _sign(chain, signer, KeyRotation(patient=account, new_key=new_key, nonce=nonce, deadline=deadline))
    return chain.as_(chain.actors.a).consents.rotate_key_by_sig(account, new_key, deadline, signature)


def _grant_signed_by(chain: Chain, signer: LocalAccount, account: str):  # type: ignore[no-untyped-def]
    terms = chain.terms(chain.actors.b.address, hours=24 * 30)  # outlasts a recovery's time lock
    deadline, signature = chain.sign_grant(signer, account, terms)
    return chain.as_(chain.actors.a).consents.grant_by_sig(account, terms, deadline, signature)


class TestPlannedRotation:
    def test_the_new_key_signs_for_the_account_which_keeps_its_consents_and_the_old_key_for_nobody(
        self, chain: Chain
    ) -> None:
        p, b, new = chain.actors.patient, chain.actors.b.address, Account.create()
        _grant_signed_by(chain, p, p.address)
        receipt = _rotate(chain, p, p.address, new.address)
        assert receipt.event("KeyRotated").args == {
            "account": p.address,
            "oldKey": p.address,
            "newKey": new.address,
            "how": int(Succession.ROTATION),
        }
        consents = chain.read.consents
        assert (consents.account_of(new.address), consents.account_of(p.address)) == (p.address, None)
        assert consents.key_of(p.address) == new.address
        assert consents.is_permitted(p.address, b, LABS, TREATMENT)  # the consent stays the account's
        _grant_signed_by(chain, new, p.address)
        with reverts("ConsentRegistryNotPatientOrDelegate", patient=p.address, caller=p.address):
            _grant_signed_by(chain, p, p.address)
        newer = Account.create()
        with reverts("ConsentRegistryNotPatient", patient=p.address, caller=p.address):
            _rotate(chain, p, p.address, newer.address)  # the replaced key can hand nothing on
        _rotate(chain, new, p.address, newer.address)
        assert (consents.account_of(new.address), consents.account_of(newer.address)) == (None, p.address)

    def test_a_rotation_by_another_key_or_to_a_key_in_use_is_refused(self, chain: Chain) -> None:
        p, stranger = chain.actors.patient, chain.actors.stranger
        with reverts("ConsentRegistryNotPatient", patient=p.address, caller=stranger.address):
            _rotate(chain, stranger, p.address, Account.create().address)
        _grant_signed_by(chain, stranger, stranger.address)  # the stranger's own account is in use
        with reverts("ConsentRegistryKeyInUse", key=stranger.address):
            _rotate(chain, p, p.address, stranger.address)

    def test_delegates_and_the_delegation_of_a_rotated_delegate_carry_over(self, chain: Chain) -> None:
        p, d, new = chain.actors.patient, chain.actors.delegate, Account.create()
        chain.as_(p).consents.set_delegate(manages(d.address))
        _rotate(chain, d, d.address, new.address)  # the guardian's own key changes
        _grant_signed_by(chain, new, p.address)  # and still acts for the patient, as the same account


class TestRecovery:
    def _approve(self, chain: Chain, account: str, new_key: str, *members: str):  # type: ignore[no-untyped-def]
        receipt = None
        for member in members:
            receipt = chain.as_(getattr(chain.actors, member)).consents.approve_recovery(account, new_key)
        return receipt

    def test_two_members_approve_then_after_the_time_lock_the_new_key_holds_the_account(self, chain: Chain) -> None:
        p, new = chain.actors.patient, Account.create()
        _grant_signed_by(chain, p, p.address)
        first = self._approve(chain, p.address, new.address, "a")
        assert first.event("RecoveryApproved").args["approvals"] == 1
        with reverts("ConsentRegistryRecoveryAlreadyApproved", account=p.address, approver=chain.actors.a.address):
            self._approve(chain, p.address, new.address, "a")
        started = self._approve(chain, p.address, new.address, "b")
        ready_at = started.event("RecoveryStarted").args["readyAt"]
        assert ready_at == chain.now() + LOCK
        with reverts("ConsentRegistryRecoveryLocked", account=p.address, readyAt=ready_at):
            chain.as_(chain.actors.c).consents.complete_recovery(p.address)
        chain.backend.increase_time(LOCK + 1)
        done = chain.as_(chain.actors.c).consents.complete_recovery(p.address)
        assert done.event("KeyRotated").args["how"] == int(Succession.RECOVERY)
        assert chain.read.consents.account_of(new.address) == p.address
        assert chain.read.consents.recovery(p.address).new_key is None
        assert chain.read.consents.is_permitted(p.address, chain.actors.b.address, LABS, TREATMENT)

    def test_the_old_key_cancels_during_the_time_lock_and_a_new_round_starts_afresh(self, chain: Chain) -> None:
        p, thief = chain.actors.patient, Account.create()
        self._approve(chain, p.address, thief.address, "a", "b")
        deadline = chain.now() + 600
        message = RecoveryCancellation(
            patient=p.address, new_key=thief.address, nonce=chain.read.consents.nonce(p.address), deadline=deadline
        )
        cancelled = chain.as_(chain.actors.c).consents.cancel_recovery_by_sig(
            p.address, deadline, _sign(chain, p, message)
        )
        assert cancelled.event("RecoveryCancelled").args == {
            "account": p.address,
            "newKey": thief.address,
            "signer": p.address,
        }
        chain.backend.increase_time(LOCK + 1)
        with reverts("ConsentRegistryNoRecovery", account=p.address):
            chain.as_(chain.actors.c).consents.complete_recovery(p.address)
        again = self._approve(chain, p.address, thief.address, "a")
        assert again.event("RecoveryApproved").args["approvals"] == 1  # the old round's approvals count for nothing
        assert chain.read.consents.recovery(p.address).round == 2

    def test_while_the_time_lock_runs_no_other_key_may_be_proposed(self, chain: Chain) -> None:
        p, new = chain.actors.patient, Account.create()
        self._approve(chain, p.address, new.address, "a", "b")
        with reverts("ConsentRegistryRecoveryOtherKey", account=p.address, pending=new.address):
            self._approve(chain, p.address, Account.create().address, "c")
        with reverts("ConsentRegistryNotActiveMember", account=chain.actors.stranger.address):
            chain.as_(chain.actors.stranger).consents.approve_recovery(p.address, new.address)

    def test_a_managing_guardian_approves_with_a_signature_a_viewing_one_cannot(self, chain: Chain) -> None:
        p, d, new = chain.actors.patient, chain.actors.delegate, Account.create()
        chain.as_(p).consents.set_delegate(views(d.address))
        self._approve(chain, p.address, new.address, "a")
        deadline = chain.now() + 600
        approval = RecoveryApproval(account=p.address, new_key=new.address, round=1, deadline=deadline)
        relay = chain.as_(chain.actors.b).consents
        with reverts("ConsentRegistryNotGuardian", account=p.address, signer=d.address):
            relay.approve_recovery_by_sig(p.address, new.address, 1, deadline, _sign(chain, d, approval))
        chain.as_(p).consents.set_delegate(manages(d.address))
        stale = RecoveryApproval(account=p.address, new_key=new.address, round=7, deadline=deadline)
        with reverts("ConsentRegistryRecoveryOtherKey"):
            relay.approve_recovery_by_sig(p.address, new.address, 7, deadline, _sign(chain, d, stale))
        started = relay.approve_recovery_by_sig(p.address, new.address, 1, deadline, _sign(chain, d, approval))
        assert started.event("RecoveryApproved").args["approver"] == d.address
        assert started.event("RecoveryStarted").args["newKey"] == new.address


class TestMinors:
    def _claim(self, chain: Chain, child: str, key: LocalAccount, guardian_scope: int):  # type: ignore[no-untyped-def]
        deadline = chain.now() + 600
        message = MinorClaim(account=child, key=key.address, guardian_scope=guardian_scope, deadline=deadline)
        return chain.as_(chain.actors.a).consents.claim_minor_by_sig(
            child, key.address, guardian_scope, deadline, _sign(chain, key, message)
        )

    def test_the_guardian_holds_the_account_until_the_child_claims_it_and_says_what_the_guardian_keeps(
        self, chain: Chain
    ) -> None:
        child, guardian, own_key = Account.create().address, chain.actors.delegate, Account.create()
        today = chain.now() // 86_400
        registered = chain.as_(chain.actors.a).consents.register_minor(child, guardian.address, today + 2)
        assert registered.event("MinorRegistered").args == {
            "account": child,
            "guardian": guardian.address,
            "minorUntil": today + 2,
            "member": chain.actors.a.address,
        }
        assert chain.read.consents.minor_until(child) == today + 2
        assert chain.read.consents.delegation(child, guardian.address) == manages(guardian.address)
        _grant_signed_by(chain, guardian, child)  # the guardian decides for the child
        with reverts("ConsentRegistryMinorNotOfAge", account=child, minorUntil=today + 2):
            self._claim(chain, child, own_key, 1)
        chain.backend.increase_time(3 * 86_400)
        claimed = self._claim(chain, child, own_key, int(DelegateScope.VIEW))
        assert claimed.event("KeyRotated").args["how"] == int(Succession.MINOR_CLAIM)
        assert chain.read.consents.minor_until(child) == 0  # nothing about the minority stays on chain
        assert chain.read.consents.delegation(child, guardian.address) == views(guardian.address)
        with reverts("ConsentRegistryNotPatientOrDelegate", patient=child, caller=guardian.address):
            _grant_signed_by(chain, guardian, child)  # what the child allowed: viewing
        _grant_signed_by(chain, own_key, child)
        assert chain.read.consents.consent_count(child) == 2  # the guardian's consent stays, for the child to judge
        with reverts("ConsentRegistryNotMinor", account=child):
            self._claim(chain, child, Account.create(), 0)

    def test_only_a_fresh_account_in_the_future_registered_by_a_member(self, chain: Chain) -> None:
        p, guardian = chain.actors.patient, chain.actors.delegate.address
        today = chain.now() // 86_400
        _grant_signed_by(chain, p, p.address)
        member = chain.as_(chain.actors.a).consents
        with reverts("ConsentRegistryKeyInUse", key=p.address):
            member.register_minor(p.address, guardian, today + 30)
        child = Account.create().address
        with reverts("ConsentRegistryInvalidMinor", account=child, minorUntil=today):
            member.register_minor(child, guardian, today)
        with reverts("ConsentRegistryInvalidDelegate", delegate=child):
            member.register_minor(child, child, today + 30)
        with reverts("ConsentRegistryNotActiveMember", account=chain.actors.stranger.address):
            chain.as_(chain.actors.stranger).consents.register_minor(child, guardian, today + 30)
