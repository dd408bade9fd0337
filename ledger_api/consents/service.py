"""Consents as they stand: a patient's consents (on chain, and relayed here but not on chain yet), and
"may X read?" at the current block. The relays themselves are ``consents.relays``."""

from __future__ import annotations

import time
from datetime import date

from ledger_api.auth import policy
from ledger_api.auth.caller import Caller
from ledger_api.chain.consent_registry import AccountEvent, ConsentEvent
from ledger_api.chain.days import LAST_DAY, countable, day_number, day_of
from ledger_api.chain.types import ConsentState, DelegateScope, Succession
from ledger_api.consents.relays import pending_grants
from ledger_api.consents.schemas import (
    AccountChangeView,
    ConsentView,
    DelegateView,
    DelegationOfMine,
    PermissionView,
    consent_status,
)
from ledger_api.errors import InvalidValue
from ledger_api.node import Node


def list_consents(node: Node, caller: Caller, patient: str) -> list[ConsentView]:
    """The patient's consents as the chain holds them, plus grants relayed here and not yet on chain."""
    policy.require(policy.PATIENT_DELEGATE_OR_ANY_MEMBER_READS_CONSENTS, node, caller, patient)
    now = int(time.time())
    grants = [e for e in node.chain.consents.consent_events_of(patient) if e.kind == "grant"]
    notices = {e.consent_id: e.notice for e in grants}
    by_delegate, confirmed = _delegates_word(node, patient, grants) if caller.kind == "patient" else (set(), set())
    views = []
    for c in node.chain.consents.consents_of(patient):
        status = consent_status(
            revoked=c.state == ConsentState.REVOKED, valid_from=c.valid_from, valid_until=c.valid_until, now=now
        )
        view = ConsentView.of(str(c.consent_id), patient, c, status, notices.get(c.consent_id))
        view.given_by_delegate, view.confirmed = c.consent_id in by_delegate, c.consent_id in confirmed
        views.append(view)
    views.extend(pending_grants(node, patient))
    return views


def _delegates_word(node: Node, patient: str, grants: list[ConsentEvent]) -> tuple[set[int], set[int]]:
    """The consents a delegate signed (by no key of the patient's own), and those the patient confirmed."""
    events = node.chain.consents.account_events_of(patient)
    own_keys = _own_keys(patient, events)
    by_delegate = {g.consent_id for g in grants if g.signer.lower() not in own_keys}
    confirmed = {e.consent_id for e in events if e.kind == "confirmation" and e.consent_id is not None}
    return by_delegate, confirmed


def check_permission(
    node: Node, patient: str, requester: str, category: int, purpose: int, care_on: date | None = None
) -> PermissionView:
    """Whether ``requester`` may read records of ``category`` about care on ``care_on`` (none: a record
    without a stated day, which only consents without a range of days cover) for ``purpose``."""
    if care_on is not None and not countable(care_on):
        raise InvalidValue(
            f"care_on: a day of care from 1970-01-02 to {LAST_DAY.isoformat()}",
            field="care_on",
            code="care-day-invalid",
        )
    consent_id = node.chain.consents.permitting_consent(patient, requester, category, purpose, day_number(care_on))
    break_glass_id = None if consent_id is not None else node.chain.consents.emergency_access(patient, requester)
    return PermissionView(
        patient=patient,
        requester=requester,
        category=category,
        purpose=purpose,
        permitted=consent_id is not None or break_glass_id is not None,
        consent_id=str(consent_id) if consent_id is not None else None,
        break_glass_id=str(break_glass_id) if break_glass_id is not None else None,
    )


def account_history(node: Node, caller: Caller, patient: str, limit: int) -> list[AccountChangeView]:
    """The newest ``limit`` changes to the patient's account (consents, delegates, restriction, keys), newest
    first, each with who made it: a delegate's acts stand in the patient's history as theirs."""
    policy.require(policy.PATIENT_OR_DELEGATE_READS_ACCOUNT_HISTORY, node, caller, patient)
    events = node.chain.consents.account_events_of(patient)
    own_keys = _own_keys(patient, events)
    clock = node.chain.consents.reader
    return [_change_view(event, own_keys, clock.block_timestamp(event.block)) for event in reversed(events[-limit:])]


def _own_keys(patient: str, events: list[AccountEvent]) -> set[str]:
    """Every key that ever signed for the account (lower case): its own address and each key given to it."""
    return {patient.lower()} | {e.new_key.lower() for e in events if e.kind == "key" and e.new_key}


_HOW = {Succession.ROTATION: "rotation", Succession.RECOVERY: "recovery", Succession.MINOR_CLAIM: "minor-claim"}


def _change_view(event: AccountEvent, own_keys: set[str], at: int) -> AccountChangeView:
    delegation = event.delegation
    if event.kind in ("recovery-started", "minor") or (event.kind == "key" and event.how != Succession.ROTATION):
        by = "consortium"
    else:
        by = "patient" if event.signer.lower() in own_keys else "delegate"
    return AccountChangeView(
        kind=event.kind,
        at=at,
        block=event.block,
        signer=event.signer,
        by=by,
        consent_id=str(event.consent_id) if event.consent_id is not None else None,
        delegate=DelegateView.of(delegation)
        if delegation is not None and delegation.scope != DelegateScope.NONE
        else None,
        delegate_removed=delegation.delegate
        if delegation is not None and delegation.scope == DelegateScope.NONE
        else None,
        restricted=event.restricted,
        new_key=event.new_key,
        how=_HOW.get(event.how) if event.how is not None else None,
        ready_at=event.ready_at,
    )


#: the most accounts one delegate's list reads (a guardian of a family, a carer of a few patients)
MAX_DELEGATIONS = 50


def delegations_of(node: Node, caller: Caller) -> list[DelegationOfMine]:
    """The accounts the signed-in patient is a delegate of now (read from the chain, each checked now)."""
    if caller.kind != "patient":
        return []
    consents = node.chain.consents
    mine = []
    for patient in consents.accounts_delegated_to(caller.address)[:MAX_DELEGATIONS]:
        delegation = consents.delegation(patient, caller.address)
        if delegation is None:
            continue
        minor_until = consents.minor_until(patient)
        mine.append(
            DelegationOfMine(
                patient=patient,
                scope=DelegateView.of(delegation).scope,
                valid_until=delegation.valid_until,
                excluded_categories=delegation.excluded_categories,
                minor_until=day_of(minor_until),
            )
        )
    return mine
