"""Consent requests: a hospital asks, the patient answers wherever they sign in, the hospital learns.

Where a request lives: **only at the node of the hospital that raised it.** The patient finds it
through the portal's consortium view (the node they signed in at asks every member, with the
patient's own sign-in proof, "any requests of yours for this patient?"), the same way they see their
records and history: each member answers for itself, so no member learns that another asked, and
nothing about it goes on chain (an event there would tell every member who asks whom for what).

The answers:
- **granted**: the patient signs a grant to the requester (the portal pre-fills it from the request;
  the patient may narrow it) and it is relayed to the chain like any grant. The requester's node sees
  the ``ConsentGranted`` event naming it as grantee and this patient (``RequestAnswers``) and marks
  the patient's open requests granted, with the consent id: a fact the chain states, not a claim.
- **denied**: the patient signs ``ConsentRequestRefusal``; the node they are signed in at passes it to
  the requester's node, which checks the signature itself.
- **expired**: nobody answered before ``expires_at`` (settled when the request is next read).
- **withdrawn**: the requesting hospital took it back.

Each outcome reaches the requester through its API and, when it subscribed, its webhook
(``consent_request`` events); grants and revocations naming it reach it as ``grant`` / ``revocation``.
"""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime, timedelta

from medledger_crypto import ConsentRequestRefusal
from pydantic import TypeAdapter
from sqlalchemy import func
from sqlmodel import Session, col, select
from web3 import Web3

from ledger_api.access.models import Counter
from ledger_api.auth import policy
from ledger_api.auth.caller import Caller
from ledger_api.auth.delegation import require_acts_for
from ledger_api.auth.patient_numbers import PatientLink, resolve_patient
from ledger_api.chain.calldata import checksum_address
from ledger_api.chain.events import decode_log, event_topic
from ledger_api.chain.transactions import chain_call
from ledger_api.consent_requests.models import (
    ConsentRequest,
    MemberRequests,
    PatientRequests,
    RefusalIn,
    RequestIn,
    RequestView,
)
from ledger_api.consents.signatures import signer_of
from ledger_api.consortium.patient_view import ask_for_patient
from ledger_api.consortium.peers import post_to_peer
from ledger_api.core import jsontext
from ledger_api.core.background import BackgroundLoop
from ledger_api.core.db import session_scope
from ledger_api.errors import Conflict, InvalidValue, LedgerError, NotFound, PeerUnavailable
from ledger_api.node import Node
from ledger_api.notifications.service import record_member_event
from ledger_api.records.models import Record
from ledger_api.vocabulary import Category, Purpose, bitset, category_of, from_bitset, purpose_of

OPEN = "requested"
_VIEWS = TypeAdapter(list[RequestView])
#: the block cursor of the scan for grants answering this node's requests
CURSOR = "request_answers_block"
_GRANTED = event_topic("ConsentRegistry", "ConsentGranted")


# ------------------------------------------------------------------------------------------ views


def _names(enum: type[Category] | type[Purpose], value: int) -> list[str]:
    return [m.name.lower() for m in from_bitset(enum, value)]


def _view(node: Node, row: ConsentRequest, name: str) -> RequestView:
    """The request as the API shows it; ``name``: this hospital's (read once per answer, not per row)."""
    valid_from = int(datetime.combine(row.access_from, datetime.min.time(), UTC).timestamp())
    return RequestView(
        id=row.id,
        requester=node.address,
        requester_name=name,
        patient=row.patient,
        purposes=_names(Purpose, row.purposes),
        categories=_names(Category, row.categories),
        care_from=row.care_from,
        care_to=row.care_to,
        access_from=row.access_from,
        access_days=row.access_days,
        reason=row.reason,
        custodians=list(row.custodians),
        state=row.state,
        created_at=row.created_at,
        expires_at=row.expires_at,
        decided_at=row.decided_at,
        consent_id=row.consent_id,
        suggested_grant={
            "grantees": [node.address],
            "care_from": row.care_from.isoformat() if row.care_from else None,
            "care_to": row.care_to.isoformat() if row.care_to else None,
            "categories": row.categories,
            "purposes": row.purposes,
            "valid_from": max(valid_from, int(time.time())),
            "valid_until": valid_from + row.access_days * 86_400,
        },
    )


def _own_name(node: Node) -> str:
    try:
        return node.chain.registry.member(node.address).name or node.settings.node_name
    except LedgerError:
        return node.settings.node_name


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _settle(session: Session, node: Node, row: ConsentRequest, now: datetime) -> None:
    """An open request whose answer time has passed is expired (written when it is next read)."""
    if row.state == OPEN and _aware(row.expires_at) <= now:
        _decide(session, node, row, "expired", _aware(row.expires_at))


def _decide(session: Session, node: Node, row: ConsentRequest, state: str, moment: datetime) -> None:
    row.state, row.decided_at = state, moment
    session.add(row)
    record_member_event(
        session,
        member=node.address,
        event_id=f"consent_request:{row.id}:{state}",
        event_type="consent_request",
        patient=row.patient,
        data={"request_id": row.id, "state": state, "consent_id": row.consent_id},
        node_address=node.address,
        chain_id=node.chain_id,
        occurred_at=moment,
    )


# ------------------------------------------------------------------------------------------ the hospital


def raise_request(node: Node, caller: Caller, request: RequestIn) -> RequestView:
    """Records a new request for a patient this hospital knows (linked here, or holding their records)."""
    policy.require(policy.OWN_SYSTEM, node, caller)
    patient = resolve_patient(node, caller, request.patient)
    today = datetime.now(UTC).date()
    access_from = request.access_from or today
    if access_from < today:
        raise InvalidValue(
            "access_from: the access window would start in the past", field="access_from", code="request-window-in-past"
        )
    if request.care_from and request.care_to and request.care_to < request.care_from:
        raise InvalidValue("care_to: before care_from", field="care_to", code="care-range-invalid")
    if request.care_from and request.care_from > today:
        raise InvalidValue("care_from: care that has not happened yet", field="care_from", code="care-range-invalid")
    limits = node.settings.consent_requests
    if request.access_days > limits.max_access_days:
        raise InvalidValue(
            f"access_days: at most {limits.max_access_days} days in this consortium",
            field="access_days",
            code="request-access-too-long",
        )
    custodians = [_custodian(node, account) for account in request.custodians]
    head = int(chain_call(lambda: node.w3.eth.block_number))
    now = datetime.now(UTC)
    with session_scope(node.engine) as session:
        if not _known_here(session, patient):
            raise NotFound(
                f"{patient} is not a patient of this hospital (no link to its numbers, no records here)",
                code="patient-unknown",
            )
        open_rows = session.exec(
            select(ConsentRequest).where(col(ConsentRequest.patient) == patient, col(ConsentRequest.state) == OPEN)
        ).all()
        for row in open_rows:
            _settle(session, node, row, now)
        still_open = sum(1 for row in open_rows if row.state == OPEN)
        if still_open >= limits.max_open_per_patient:
            raise Conflict(
                f"{still_open} requests to this patient are open, the consortium's limit; wait for their answers "
                "or withdraw one",
                code="request-limit",
            )
        row = ConsentRequest(
            id=secrets.token_hex(16),
            patient=patient,
            purposes=bitset(purpose_of(p) for p in request.purposes),
            categories=bitset(category_of(c) for c in request.categories),
            care_from=request.care_from,
            care_to=request.care_to,
            access_from=access_from,
            access_days=request.access_days,
            reason=request.reason,
            custodians=custodians,
            raised_by=request.raised_by,
            state=OPEN,
            created_at=now,
            expires_at=now + timedelta(days=limits.answer_within_days),
        )
        session.add(row)
        if session.get(Counter, CURSOR) is None:  # the answers' scan starts here (no grant before can answer)
            _move_cursor(session, head)
        session.flush()
        return _view(node, row, _own_name(node))


def _custodian(node: Node, account: str) -> str:
    if not Web3.is_address(account):
        raise InvalidValue("custodians: not an account", field="custodians", code="custodian-not-member")
    checked = Web3.to_checksum_address(account)
    if not node.chain.registry.is_active_member(checked):
        raise InvalidValue(
            f"custodians: {checked} is not an active member", field="custodians", code="custodian-not-member"
        )
    return checked


def _known_here(session: Session, patient: str) -> bool:
    link = session.get(PatientLink, patient)
    if link is not None and link.mrn is not None:
        return True
    return session.exec(select(Record.id).where(col(Record.patient) == patient).limit(1)).first() is not None


def requests_raised(node: Node, caller: Caller, *, state: str | None, limit: int) -> list[RequestView]:
    """This hospital's requests, newest first (its own system's work list)."""
    policy.require(policy.OWN_SYSTEM, node, caller)
    now = datetime.now(UTC)
    with session_scope(node.engine) as session:
        query = select(ConsentRequest).order_by(col(ConsentRequest.created_at).desc()).limit(limit)
        if state is not None:
            query = query.where(col(ConsentRequest.state) == state)
        rows = session.exec(query).all()
        for row in rows:
            _settle(session, node, row, now)
        name = _own_name(node)
        return [_view(node, row, name) for row in rows if state is None or row.state == state]


def one_request(node: Node, caller: Caller, request_id: str) -> RequestView:
    """One request, for this hospital's system or the patient it asks (anyone else: not found)."""
    now = datetime.now(UTC)
    with session_scope(node.engine) as session:
        row = session.get(ConsentRequest, request_id)
        if row is None or not _may_see(node, caller, row.patient):
            raise NotFound(f"no consent request {request_id}", code="consent-request-not-found")
        _settle(session, node, row, now)
        return _view(node, row, _own_name(node))


def _may_see(node: Node, caller: Caller, patient: str) -> bool:
    return policy.allows(policy.PATIENT_DELEGATE_OR_OWN_SYSTEM_READS_REQUESTS, node, caller, patient)


def withdraw(node: Node, caller: Caller, request_id: str) -> RequestView:
    """The hospital takes back an open request."""
    policy.require(policy.OWN_SYSTEM, node, caller)
    now = datetime.now(UTC)
    with session_scope(node.engine) as session:
        row = session.get(ConsentRequest, request_id)
        if row is None:
            raise NotFound(f"no consent request {request_id}", code="consent-request-not-found")
        _settle(session, node, row, now)
        if row.state != OPEN:
            raise Conflict(f"the request is {row.state}, no longer open", code="consent-request-closed")
        _decide(session, node, row, "withdrawn", now)
        return _view(node, row, _own_name(node))


# ------------------------------------------------------------------------------------------ the patient


def requests_for(node: Node, caller: Caller, patient: str) -> list[RequestView]:
    """The requests this hospital raised for the patient, newest first."""
    policy.require(policy.PATIENT_DELEGATE_OR_OWN_SYSTEM_READS_REQUESTS, node, caller, patient)
    now = datetime.now(UTC)
    with session_scope(node.engine) as session:
        rows = session.exec(
            select(ConsentRequest)
            .where(col(ConsentRequest.patient) == patient)
            .order_by(col(ConsentRequest.created_at).desc())
            .limit(200)
        ).all()
        for row in rows:
            _settle(session, node, row, now)
        name = _own_name(node)
        return [_view(node, row, name) for row in rows]


async def requests_everywhere(node: Node, caller: Caller, patient: str, *, deadline_s: float) -> PatientRequests:
    """The patient's requests from every member (each answers for its own), newest first."""
    answers = await ask_for_patient(
        node,
        caller,
        patient,
        local=lambda: requests_for(node, caller, patient),
        path=f"/v1/patients/{patient}/consent-requests",
        params={},
        parse=lambda response: _VIEWS.validate_python(jsontext.loads(response.content)),
        deadline_s=deadline_s,
    )
    members, found = [], []
    for answer in answers:
        mine = [
            r
            for r in answer.value or []
            if r.patient.lower() == patient.lower() and r.requester.lower() == answer.member.account.lower()
        ]
        members.append(
            MemberRequests(member=answer.member.account, name=answer.member.name, status=answer.status, requests=mine)
        )
        found += mine
    found.sort(key=lambda r: r.created_at, reverse=True)
    return PatientRequests(patient=patient, members=members, requests=found)


def refuse(node: Node, caller: Caller, request_id: str, refusal: RefusalIn) -> RequestView:
    """The patient's signed refusal, applied here if this hospital asked, else passed to the one that did."""
    policy.require(policy.PATIENT_DELEGATE_OR_MEMBER_ANSWERS_REQUEST, node, caller, refusal.patient)
    requester = Web3.to_checksum_address(refusal.requester)
    if requester != node.address:
        if caller.kind != "patient":
            raise NotFound(f"no consent request {request_id}", code="consent-request-not-found")
        return _forward_refusal(node, request_id, refusal, requester)
    if refusal.deadline < int(time.time()):
        raise InvalidValue(
            "deadline: the signature's deadline has passed; sign again",
            field="deadline",
            code="signature-deadline-passed",
        )
    message = ConsentRequestRefusal(
        patient=refusal.patient, requester=requester, request_id=bytes.fromhex(request_id), deadline=refusal.deadline
    )
    signer = signer_of(node, message, refusal.signature)
    now = datetime.now(UTC)
    with session_scope(node.engine) as session:
        row = session.get(ConsentRequest, request_id)
        if row is None or row.patient.lower() != refusal.patient.lower():
            raise NotFound(f"no consent request {request_id}", code="consent-request-not-found")
        require_acts_for(node, row.patient, signer, categories=row.categories)
        _settle(session, node, row, now)
        if row.state != OPEN:
            raise Conflict(f"the request is {row.state}, no longer open", code="consent-request-closed")
        _decide(session, node, row, "denied", now)
        return _view(node, row, _own_name(node))


def _forward_refusal(node: Node, request_id: str, refusal: RefusalIn, requester: str) -> RequestView:
    path = f"/v1/consent-requests/{request_id}/refusal"
    view = post_to_peer(node, requester, path, refusal, RequestView)
    if view.id != request_id or view.requester.lower() != requester.lower():
        raise PeerUnavailable("the requesting hospital answered for another request")
    return view


# ------------------------------------------------------------------------------------------ answers on chain


def answer_from_grant(node: Node, *, patient: str, consent_id: int) -> int:
    """A grant from ``patient`` to this member answers the patient's open requests here; how many.

    Times are this node's clock (as for every other state change): a block's timestamp is the chain's."""
    now = datetime.now(UTC)
    with session_scope(node.engine) as session:
        rows = session.exec(
            select(ConsentRequest).where(col(ConsentRequest.patient) == patient, col(ConsentRequest.state) == OPEN)
        ).all()
        answered = 0
        for row in rows:
            _settle(session, node, row, now)
            if row.state == OPEN:
                row.consent_id = str(consent_id)
                _decide(session, node, row, "granted", now)
                answered += 1
        return answered


class RequestAnswers(BackgroundLoop):
    """Reads the chain's grants that name this member among their recipients and answers its requests with
    them (the recipients are in the event's data, not a topic: every grant in the range is read)."""

    job = "request-answers"

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node

    def idle_interval_s(self) -> float:
        return self.node.settings.consent_requests.poll_interval_s

    def tick(self) -> int:
        node = self.node
        head = int(chain_call(lambda: node.w3.eth.block_number)) - node.settings.chain.confirmations
        with session_scope(node.engine) as session:
            if not session.exec(
                select(func.count()).select_from(ConsentRequest).where(col(ConsentRequest.state) == OPEN)
            ).one():
                _move_cursor(session, head)  # nothing waits for an answer: keep up without reading anything
                return 0
            cursor = session.get(Counter, CURSOR)
            done = head - 1 if cursor is None else cursor.value
        if done >= head:
            return 0
        high = min(head, done + node.settings.consent_requests.scan_blocks)
        registry = node.manifest.address("ConsentRegistry")
        logs = chain_call(
            node.w3.eth.get_logs, {"address": registry, "fromBlock": done + 1, "toBlock": high, "topics": [_GRANTED]}
        )
        answered = 0
        for log in logs:
            decoded = decode_log(node.w3, log)
            if decoded is None or decoded.name != "ConsentGranted":
                continue
            if node.address not in node.chain.consents.members_named(int(decoded.args["recipients"])):
                continue
            answered += answer_from_grant(
                node, patient=checksum_address(decoded.args["patient"]), consent_id=int(decoded.args["consentId"])
            )
        with session_scope(node.engine) as session:
            _move_cursor(session, high)
        return answered + (1 if high < head else 0)


def _move_cursor(session: Session, block: int) -> None:
    row = session.get(Counter, CURSOR)
    if row is None:
        session.add(Counter(name=CURSOR, value=max(block, 0)))
    elif block > row.value:
        row.value = block
        session.add(row)
