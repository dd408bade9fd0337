"""Succession of a patient account's key, as this member's part in it: it relays what the account's keys
and guardians sign, approves recoveries and enrols minors at its own desk (after an in-person identity
check), and refuses before the chain would, each cause with its own code.

The account stays what it is (its consents, delegates, restrictions, history and the hospitals' links to
it); what changes is the key that signs for it (``ConsentRegistry.keyOf``/``accountOf``). A patient signs
in with the new key and is the same account at every member.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from medledger_crypto import KeyRotation, MinorClaim, RecoveryApproval, RecoveryCancellation, TypedMessage
from sqlmodel import select

from ledger_api.auth import policy
from ledger_api.auth.caller import Caller
from ledger_api.auth.delegation import actor_of, standing
from ledger_api.auth.patient_numbers import PatientLink
from ledger_api.chain.days import day_iso, day_number, day_of
from ledger_api.chain.types import DelegateScope, MemberStatus
from ledger_api.consents.schemas import Signature, signature_parts
from ledger_api.consents.signatures import require_next_nonce, require_unexpired, signer_of
from ledger_api.core.db import session_scope
from ledger_api.errors import Conflict, ContractReverted, Forbidden, InvalidValue
from ledger_api.node import Node
from ledger_api.succession.models import MinorEnrolment, RecoveryApprovalRecord
from ledger_api.succession.schemas import (
    DeskApprovalIn,
    GuardianApprovalIn,
    KeyRotationIn,
    MinorClaimIn,
    MinorIn,
    MinorView,
    RecoveryCancellationIn,
    RecoveryView,
    SuccessionView,
)

SCOPES = {"none": DelegateScope.NONE, "view": DelegateScope.VIEW, "manage": DelegateScope.MANAGE}


def view(node: Node, account: str) -> SuccessionView:
    consents = node.chain.consents
    recovery = consents.recovery(account)
    threshold, delay = consents.recovery_policy()
    minor_until = consents.minor_until(account)
    return SuccessionView(
        account=account,
        key=consents.key_of(account),
        recovery=RecoveryView(
            new_key=recovery.new_key,
            round=recovery.round,
            approvals=recovery.approvals if recovery.new_key else 0,
            threshold=threshold,
            time_lock_s=delay,
            ready_at=recovery.ready_at or None,
        ),
        minor_until=day_of(minor_until),
    )


def rotate_key(node: Node, account: str, rotation: KeyRotationIn) -> SuccessionView:
    """A planned rotation, signed by the account's current key, sent to the chain by this member."""
    require_unexpired(rotation.deadline)
    require_next_nonce(node, account, rotation.nonce)
    message = KeyRotation(patient=account, new_key=rotation.new_key, nonce=rotation.nonce, deadline=rotation.deadline)
    _require_current_key(node, account, message, rotation.signature)
    _require_unused(node, account, rotation.new_key)
    node.chain.consents.rotate_key_by_sig(
        account, rotation.new_key, rotation.deadline, signature_parts(rotation.signature)
    )
    return view(node, account)


def approve_at_desk(node: Node, account: str, approval: DeskApprovalIn) -> SuccessionView:
    """This member's approval of a recovery, after its desk checked the patient's identity in person: only for
    a patient enrolled here (linked to this hospital's number), whose records and face the desk knows."""
    with session_scope(node.engine) as session:
        link = session.exec(select(PatientLink).where(PatientLink.patient == account)).first()
    if link is None or link.mrn is None:
        raise Conflict(
            "the patient is not enrolled at this hospital (no link to one of its patient numbers): a recovery is "
            "approved by the hospitals the patient is enrolled at",
            code="patient-not-enrolled-here",
        )
    _require_unused(node, account, approval.new_key)
    pending = node.chain.consents.recovery(account)
    if pending.new_key not in (None, approval.new_key) and pending.ready_at:
        raise Conflict(
            f"a recovery to another key ({pending.new_key}) is in its time lock: the account's key may cancel it",
            code="recovery-other-key",
        )
    receipt = node.chain.consents.approve_recovery(account, approval.new_key)
    args = receipt.event("RecoveryApproved").args
    with session_scope(node.engine) as session:
        session.add(
            RecoveryApprovalRecord(
                account=account,
                new_key=approval.new_key,
                round=args["round"],
                identity_checked_by=approval.identity_checked_by,
                approved_at=datetime.now(UTC),
                tx_hash=receipt.tx_hash,
            )
        )
    return view(node, account)


def approve_as_guardian(node: Node, account: str, approval: GuardianApprovalIn) -> SuccessionView:
    """A guardian's signed approval, relayed by this member."""
    require_unexpired(approval.deadline)
    message = RecoveryApproval(
        account=account, new_key=approval.new_key, round=approval.round, deadline=approval.deadline
    )
    signer = signer_of(node, message, approval.signature)
    guardian = actor_of(node, signer)
    delegation = standing(node, account, guardian) if guardian is not None else None
    if delegation is None or delegation.scope != DelegateScope.MANAGE:
        raise Forbidden(
            "signature: not by a guardian who manages this account's consents", code="signature-wrong-signer"
        )
    pending = node.chain.consents.recovery(account)
    if pending.new_key != approval.new_key or pending.round != approval.round:
        raise Conflict(
            "round: a guardian approves the recovery under way (GET /v1/patients/{patient}/succession), which this "
            "is not",
            code="recovery-round-stale",
        )
    node.chain.consents.approve_recovery_by_sig(
        account, approval.new_key, approval.round, approval.deadline, signature_parts(approval.signature)
    )
    return view(node, account)


def cancel_recovery(node: Node, account: str, cancellation: RecoveryCancellationIn) -> SuccessionView:
    """The account's current key cancels the recovery under way (relayed by this member)."""
    require_unexpired(cancellation.deadline)
    pending = node.chain.consents.recovery(account)
    if pending.new_key is None:
        raise Conflict("no recovery is under way for this account", code="no-recovery")
    if pending.new_key != cancellation.new_key:
        raise Conflict(
            f"new_key: the recovery under way is to {pending.new_key}; sign its cancellation",
            code="recovery-round-stale",
        )
    require_next_nonce(node, account, cancellation.nonce)
    message = RecoveryCancellation(
        patient=account, new_key=cancellation.new_key, nonce=cancellation.nonce, deadline=cancellation.deadline
    )
    _require_current_key(node, account, message, cancellation.signature)
    node.chain.consents.cancel_recovery_by_sig(account, cancellation.deadline, signature_parts(cancellation.signature))
    return view(node, account)


def complete_recovery(node: Node, account: str) -> SuccessionView:
    """Completes a recovery whose time lock has run out (anyone may ask; the chain decides)."""
    pending = node.chain.consents.recovery(account)
    if pending.new_key is None:
        raise Conflict("no recovery is under way for this account", code="no-recovery")
    if not pending.ready_at or pending.ready_at > node.chain.consents.now():
        raise Conflict(
            "the recovery's time lock has not run out (ready_at in GET /v1/patients/{patient}/succession)",
            code="recovery-locked",
        )
    node.chain.consents.complete_recovery(account)
    return view(node, account)


def enrol_minor(node: Node, caller: Caller, minor: MinorIn) -> MinorView:
    """Registers a child's account held by a guardian: the date of birth stays here, the chain holds the first
    day of the month after the child reaches the consortium's age (so not the birth date)."""
    policy.require(policy.OWN_SYSTEM, node, caller)
    today = date.today()
    if minor.date_of_birth > today:
        raise InvalidValue("date_of_birth: lies in the future", field="date_of_birth", code="date-of-birth-invalid")
    until = claim_day(minor.date_of_birth, node.settings.minor_age_years)
    if until <= today:
        raise InvalidValue(
            f"date_of_birth: the child has reached the consortium's age ({node.settings.minor_age_years}) and "
            "enrols as any patient",
            field="date_of_birth",
            code="not-a-minor",
        )
    if minor.account == minor.guardian:
        raise InvalidValue("guardian: a child is not their own guardian", field="guardian", code="guardian-is-child")
    _require_unused(node, minor.guardian, minor.account)  # the child's account: never used before
    if actor_of(node, minor.guardian) != minor.guardian:
        raise Conflict("guardian: this key signs for another account, or for none", code="key-in-use")
    receipt = node.chain.consents.register_minor(minor.account, minor.guardian, day_number(until))
    with session_scope(node.engine) as session:
        session.add(
            MinorEnrolment(
                account=minor.account,
                guardian=minor.guardian,
                date_of_birth=minor.date_of_birth,
                minor_until=until,
                identity_checked_by=minor.identity_checked_by,
                enrolled_at=datetime.now(UTC),
                tx_hash=receipt.tx_hash,
            )
        )
    return MinorView(account=minor.account, guardian=minor.guardian, minor_until=until)


def claim_minor(node: Node, account: str, claim: MinorClaimIn) -> SuccessionView:
    """The child claims their account at this desk with their own key, saying what their guardian keeps."""
    require_unexpired(claim.deadline)
    minor_until = node.chain.consents.minor_until(account)
    if not minor_until:
        raise Conflict("this is not a minor's account (or it was claimed already)", code="not-a-minor-account")
    if node.chain.consents.now() // 86_400 < minor_until:
        raise Conflict(f"the child may claim the account from {day_iso(minor_until)}", code="minor-not-of-age")
    scope = int(SCOPES[claim.guardian_scope])
    message = MinorClaim(account=account, key=claim.key, guardian_scope=scope, deadline=claim.deadline)
    if signer_of(node, message, claim.signature) != claim.key:
        raise Forbidden("signature: not by the key that claims the account", code="signature-wrong-signer")
    _require_unused(node, account, claim.key)
    node.chain.consents.claim_minor_by_sig(account, claim.key, scope, claim.deadline, signature_parts(claim.signature))
    return view(node, account)


def recovering_for(node: Node, key: str) -> str | None:
    """The account whose recovery to ``key`` is under way now, if any (the newest such)."""
    consents = node.chain.consents
    for account in consents.accounts_recovering_to(key)[:8]:  # bounded: a key is named by few recoveries
        if consents.recovery(account).new_key == key:
            return account
    return None


def claim_day(born: date, age: int) -> date:
    """The first day of the month after the child's ``age``-th birthday (a 29 February birthday counts in
    February): what the chain may know of a birth date is its month and year."""
    year, month = born.year + age, born.month + 1
    return date(year + (month > 12), (month - 1) % 12 + 1, 1)


# ------------------------------------------------------------------------------- checks


def _require_current_key(node: Node, account: str, message: TypedMessage, signature: Signature) -> None:
    signer = signer_of(node, message, signature)
    if actor_of(node, signer) != account:
        raise Forbidden("signature: not by the key that signs for this account now", code="signature-wrong-signer")


def _require_unused(node: Node, account: str, key: str) -> None:
    """A key may be given to an account only when it has never been used: no account's key (nor a replaced
    one), no consents, nonce or minority of its own, no seat in the consortium."""
    consents = node.chain.consents
    if key == account:
        raise InvalidValue("new_key: that is the account itself", field="new_key", code="key-is-account")
    if (
        consents.account_of(key) != key
        or consents.key_of(key) != key
        or consents.nonce(key)
        or consents.consent_count(key)
        or consents.minor_until(key)
        or _has_seat(node, key)
    ):
        raise Conflict(
            f"{key} has been used (it signs for an account, or has consents of its own): use a fresh key",
            code="key-in-use",
        )


def _has_seat(node: Node, key: str) -> bool:
    try:
        return node.chain.registry.member(key).status != MemberStatus.NONE
    except ContractReverted:  # no seat: the registry knows no such member
        return False
