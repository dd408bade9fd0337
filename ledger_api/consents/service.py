"""Consents as they stand: a patient's consents (on chain, and relayed here but not on chain yet), and
"may X read?" at the current block. The relays themselves are ``consents.relays``."""

from __future__ import annotations

import time
from datetime import date

from ledger_api.auth import policy
from ledger_api.auth.caller import Caller
from ledger_api.chain.days import LAST_DAY, countable, day_number
from ledger_api.chain.types import ConsentState, DelegateScope
from ledger_api.consents.relays import pending_grants
from ledger_api.consents.schemas import AccountChangeView, ConsentView, DelegateView, PermissionView, consent_status
from ledger_api.errors import InvalidValue
from ledger_api.node import Node


def list_consents(node: Node, caller: Caller, patient: str) -> list[ConsentView]:
    """The patient's consents as the chain holds them, plus grants relayed here and not yet on chain."""
    policy.require(policy.PATIENT_DELEGATE_OR_ANY_MEMBER_READS_CONSENTS, node, caller, patient)
    now = int(time.time())
    notices = {e.consent_id: e.notice for e in node.chain.consents.consent_events_of(patient) if e.kind == "grant"}
    views = []
    for c in node.chain.consents.consents_of(patient):
        status = consent_status(
            revoked=c.state == ConsentState.REVOKED, valid_from=c.valid_from, valid_until=c.valid_until, now=now
        )
        views.append(ConsentView.of(str(c.consent_id), patient, c, status, notices.get(c.consent_id)))
    views.extend(pending_grants(node, patient))
    return views


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
    """The newest ``limit`` changes to the patient's consents, delegates and restriction, newest first,
    each with who signed it: a delegate's acts stand in the patient's history as theirs."""
    policy.require(policy.PATIENT_OR_DELEGATE_READS_ACCOUNT_HISTORY, node, caller, patient)
    events = node.chain.consents.account_events_of(patient)[-limit:]
    clock = node.chain.consents.reader
    views: list[AccountChangeView] = []
    for event in reversed(events):
        delegation = event.delegation
        views.append(
            AccountChangeView(
                kind=event.kind,
                at=clock.block_timestamp(event.block),
                block=event.block,
                signer=event.signer,
                by="patient" if event.signer.lower() == patient.lower() else "delegate",
                consent_id=str(event.consent_id) if event.consent_id is not None else None,
                delegate=DelegateView.of(delegation)
                if delegation is not None and delegation.scope != DelegateScope.NONE
                else None,
                delegate_removed=delegation.delegate
                if delegation is not None and delegation.scope == DelegateScope.NONE
                else None,
                restricted=event.restricted,
            )
        )
    return views
