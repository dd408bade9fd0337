"""Enrolment: a patient links their consortium account to this hospital's medical record number (MRN).

At the registration desk the portal shows the patient a code carrying a statement they sign (EIP-712
``PatientNumberLink``: "account X is patient MRN at hospital Y", expiring within minutes): as a QR
code holding the whole statement, and, when the patient is signed in at this very hospital, as an
eight-character code the desk can type (the statement waits here under the code's hash until the
deadline). The hospital's system hands either to its node, which checks the statement itself — this
hospital, not expired, signed by the patient or a delegate, later than the last one applied — and
keeps the link here only: never on chain, never told to another member, so hospitals never learn
each other's numbers. A new statement changes a link; a signed ``linked: false`` removes it (the
hospital keeps its records and loses only the shortcut).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from medledger_crypto import PatientNumberLink
from pydantic import TypeAdapter
from sqlalchemy import delete, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from ledger_api.auth import policy
from ledger_api.auth.caller import Caller
from ledger_api.auth.delegation import require_acts_for
from ledger_api.auth.patient_numbers import PatientLink
from ledger_api.consents.schemas import packed_signature
from ledger_api.consents.signatures import signer_of
from ledger_api.consortium.patient_view import ask_for_patient
from ledger_api.consortium.peers import post_to_peer
from ledger_api.core import jsontext
from ledger_api.core.db import session_scope
from ledger_api.enrolment.models import (
    LinkIn,
    LinkOffer,
    LinkOfferView,
    LinkRemoved,
    LinkStatementIn,
    LinkView,
    MemberLinks,
    PatientLinks,
)
from ledger_api.errors import Conflict, InvalidValue, NotFound, PeerUnavailable
from ledger_api.node import Node

#: the longest a link statement may be valid for: it is shown on a screen at a desk
MAX_STATEMENT_LIFETIME_S = 15 * 60
#: how far in the future a statement's ``issued_at`` may lie (clocks differ)
CLOCK_SKEW_S = 300
#: open short codes per patient at once (each one is a row until its statement expires)
MAX_OPEN_OFFERS = 5
#: the short code's alphabet: Crockford's base32 (no I, L, O, U: nothing a desk misreads)
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_LINKS = TypeAdapter(list[LinkView])


# ------------------------------------------------------------------------------------------ checks


def _signed_by_patient(node: Node, statement: LinkStatementIn) -> str:
    """Checks a statement as this hospital must before acting on it; returns who signed it."""
    if statement.hospital.lower() != node.address.lower():
        raise InvalidValue(
            "hospital: the statement names another hospital; it links a patient at the hospital it names only",
            field="hospital",
            code="link-wrong-hospital",
        )
    now = int(time.time())
    if statement.deadline < now:
        raise InvalidValue(
            "deadline: the statement has expired; ask the patient to show a new code",
            field="deadline",
            code="signature-deadline-passed",
        )
    if statement.deadline > now + MAX_STATEMENT_LIFETIME_S + CLOCK_SKEW_S:
        raise InvalidValue(
            f"deadline: a link statement is valid for at most {MAX_STATEMENT_LIFETIME_S // 60} minutes",
            field="deadline",
            code="link-statement-too-long",
        )
    if statement.issued_at > (now + CLOCK_SKEW_S) * 1000:
        raise InvalidValue("issued_at: lies in the future", field="issued_at", code="issued-in-future")
    if statement.linked != bool(statement.mrn):
        raise InvalidValue(
            "mrn: a link names the patient's number; a removal leaves it empty", field="mrn", code="link-mrn-missing"
        )
    message = PatientNumberLink(
        patient=statement.patient,
        hospital=statement.hospital,
        mrn=statement.mrn,
        linked=statement.linked,
        issued_at=statement.issued_at,
        deadline=statement.deadline,
    )
    signer = signer_of(node, message, statement.signature)
    patient = statement.patient
    require_acts_for(node, patient, signer)
    return signer


def _signature_hex(statement: LinkStatementIn) -> str:
    return "0x" + packed_signature(statement.signature).hex()


def id_card_hash(node: Node, number: str) -> str:
    """The ID card number under a key only this member holds (derived from its own signing key): the
    hospital's master patient index can match it; nobody else can, nor test guesses against it."""
    key = HKDF(hashes.SHA256(), 32, salt=None, info=b"medledger id-card index v1").derive(
        bytes(node.identity.account.key)
    )
    return hmac.new(key, number.upper().encode(), hashlib.sha256).hexdigest()


def _name(node: Node) -> str:
    return node.chain.registry.member(node.address).name or node.settings.node_name


def _view(node: Node, link: PatientLink, *, show_mrn: bool = True) -> LinkView:
    assert link.mrn is not None and link.linked_at is not None
    return LinkView(
        patient=link.patient,
        hospital=node.address,
        hospital_name=_name(node),
        mrn=link.mrn if show_mrn else None,
        linked_at=link.linked_at,
        id_card_on_file=link.id_card_hash is not None,
    )


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").upper().encode()).hexdigest()


# ------------------------------------------------------------------------------------------ the patient


def offer(node: Node, caller: Caller, statement: LinkStatementIn) -> LinkOfferView:
    """Keeps a signed link statement under a short code for the desk to type, until its deadline."""
    policy.require(policy.PATIENT_OR_DELEGATE_OFFERS_LINK, node, caller, statement.patient)
    if not statement.linked:
        raise InvalidValue(
            "linked: a code offers a link; remove one with a removal", field="linked", code="link-mrn-missing"
        )
    _signed_by_patient(node, statement)
    now = datetime.now(UTC)
    code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
    expires_at = datetime.fromtimestamp(statement.deadline, UTC)
    with session_scope(node.engine) as session:
        session.exec(delete(LinkOffer).where(col(LinkOffer.expires_at) < now))
        held = session.exec(
            select(func.count()).select_from(LinkOffer).where(col(LinkOffer.patient) == statement.patient)
        ).one()
        if held >= MAX_OPEN_OFFERS:
            raise Conflict(
                f"{held} codes are open for this patient, the most allowed; use one or wait until they expire",
                code="link-offer-limit",
            )
        session.add(
            LinkOffer(
                code_hash=_code_hash(code),
                patient=statement.patient,
                statement=statement.model_dump(mode="json"),
                expires_at=expires_at,
            )
        )
    return LinkOfferView(code=f"{code[:4]}-{code[4:]}", expires_at=expires_at)


def remove(node: Node, caller: Caller, statement: LinkStatementIn) -> LinkRemoved:
    """A patient-signed removal, applied here if it names this hospital, else passed to the hospital it names."""
    policy.require(policy.PATIENT_DELEGATE_OR_MEMBER_REMOVES_LINK, node, caller, statement.patient)
    if statement.linked:
        raise InvalidValue("linked: a removal says false", field="linked", code="link-mrn-missing")
    if statement.hospital.lower() != node.address.lower() and caller.kind == "patient":
        return _forward_removal(node, statement)
    _signed_by_patient(node, statement)
    now = datetime.now(UTC)
    with session_scope(node.engine) as session:
        stored = session.get(PatientLink, statement.patient)
        if stored is None or stored.mrn is None:
            raise NotFound("the patient has no link at this hospital", code="link-not-found")
        if statement.issued_at <= stored.issued_at:
            raise Conflict(
                "issued_at: a later statement was applied already; sign a new one", code="link-statement-stale"
            )
        stored.mrn, stored.id_card_hash, stored.linked_at, stored.removed_at = None, None, None, now
        stored.issued_at, stored.signature = statement.issued_at, _signature_hex(statement)
        session.add(stored)
    return LinkRemoved(patient=statement.patient, hospital=node.address, removed_at=now)


def _forward_removal(node: Node, statement: LinkStatementIn) -> LinkRemoved:
    removed = post_to_peer(node, statement.hospital, "/v1/patient-links/removals", statement, LinkRemoved)
    if removed.patient.lower() != statement.patient.lower() or removed.hospital.lower() != statement.hospital.lower():
        raise PeerUnavailable("the hospital answered for another patient or hospital")
    return removed


def links_here(node: Node, caller: Caller, patient: str) -> list[LinkView]:
    """The patient's link at this hospital (none or one); its number only to this hospital's own system and
    to the patient signed in here, never to another member passing the patient's question on."""
    policy.require(policy.PATIENT_DELEGATE_OR_OWN_SYSTEM_READS_LINKS, node, caller, patient)
    with session_scope(node.engine) as session:
        link = session.get(PatientLink, patient)
        if link is None or link.mrn is None:
            return []
        return [_view(node, link, show_mrn=caller.via is None)]


async def links_everywhere(node: Node, caller: Caller, patient: str, *, deadline_s: float) -> PatientLinks:
    """The patient's links at every member (each member answers for itself, under the patient's proof)."""
    answers = await ask_for_patient(
        node,
        caller,
        patient,
        local=lambda: links_here(node, caller, patient),
        path=f"/v1/patients/{patient}/links",
        params={},
        parse=lambda response: _LINKS.validate_python(jsontext.loads(response.content)),
        deadline_s=deadline_s,
    )
    members = []
    for answer in answers:
        links = [
            link
            for link in answer.value or []
            if link.patient.lower() == patient.lower() and link.hospital.lower() == answer.member.account.lower()
        ]
        members.append(
            MemberLinks(member=answer.member.account, name=answer.member.name, status=answer.status, links=links)
        )
    return PatientLinks(patient=patient, members=members)


# ------------------------------------------------------------------------------------------ the hospital


def link(node: Node, caller: Caller, request: LinkIn) -> LinkView:
    """Stores the link a scanned (or typed) statement asks for, after checking it."""
    policy.require(policy.OWN_SYSTEM, node, caller)
    if (request.statement is None) == (request.code is None):
        raise InvalidValue(
            "give either the scanned statement or the typed code", field="statement", code="link-source-missing"
        )
    statement = request.statement or _redeem(node, request.code or "")
    if not statement.linked:
        raise InvalidValue("linked: this statement removes a link", field="linked", code="link-mrn-missing")
    _signed_by_patient(node, statement)
    now = datetime.now(UTC)
    try:
        with session_scope(node.engine) as session:
            holder = session.exec(select(PatientLink).where(col(PatientLink.mrn) == statement.mrn)).first()
            if holder is not None and holder.patient != statement.patient:
                raise Conflict(
                    f"MRN {statement.mrn} is linked to another account at this hospital", code="mrn-linked-elsewhere"
                )
            current = session.get(PatientLink, statement.patient)
            if current is not None and statement.issued_at <= current.issued_at:
                raise Conflict(
                    "issued_at: a later statement was applied already; ask the patient for a new code",
                    code="link-statement-stale",
                )
            current = current or PatientLink(patient=statement.patient, issued_at=0, signature="")
            current.mrn, current.issued_at, current.signature = (
                statement.mrn,
                statement.issued_at,
                _signature_hex(statement),
            )
            current.linked_at, current.removed_at = now, None
            if request.id_card_number is not None:
                current.id_card_hash = id_card_hash(node, request.id_card_number)
            session.add(current)
            session.flush()
            return _view(node, current)
    except IntegrityError:
        raise Conflict(
            f"MRN {statement.mrn} is linked to another account at this hospital", code="mrn-linked-elsewhere"
        ) from None


def _redeem(node: Node, code: str) -> LinkStatementIn:
    now = datetime.now(UTC)
    with session_scope(node.engine) as session:
        offer_ = session.get(LinkOffer, _code_hash(code))
        if offer_ is None or offer_.expires_at.replace(tzinfo=offer_.expires_at.tzinfo or UTC) < now:
            raise NotFound("no open code like this here; ask the patient to show a new one", code="link-code-unknown")
        session.delete(offer_)
        return LinkStatementIn.model_validate(offer_.statement)


def find_by_id_card(node: Node, caller: Caller, number: str) -> LinkView:
    """This hospital's link for the patient whose ID card number it was given (its master patient index)."""
    policy.require(policy.OWN_SYSTEM, node, caller)
    with session_scope(node.engine) as session:
        found = session.exec(
            select(PatientLink).where(col(PatientLink.id_card_hash) == id_card_hash(node, number))
        ).first()
        if found is None or found.mrn is None:
            raise NotFound("no linked patient with this ID card number here", code="link-not-found")
        return _view(node, found)
