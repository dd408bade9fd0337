"""Relays of patient-signed messages: grants, revocations and delegate changes, through the outbox.

The node checks a signed message before relaying it, exactly as the contract will (chain id,
contract, current nonce, deadline, signer = patient or delegate), so a bad signature is a clear
4xx now, not a failed transaction later. The relay is one typed message from the request to the
transaction (``ConsentGrantRelay`` ...: the signed message and its signature), sent by the outbox
with the kinds below; the response says "pending", and ``GET /v1/relays/{id}`` follows it.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Self

from medledger_crypto import (
    ConsentConfirmation,
    ConsentGrant,
    ConsentMessage,
    ConsentRevocation,
    DelegateChange,
    SharingRestriction,
    recover_typed,
)
from sqlalchemy import text
from sqlmodel import col, select

from ledger_api.auth import delegation as delegation_rules
from ledger_api.auth import policy
from ledger_api.auth.caller import Caller
from ledger_api.chain.calldata import checksum_address
from ledger_api.chain.contract import UnsignedTransaction
from ledger_api.chain.deployment import Consortium
from ledger_api.chain.ids import patient_of
from ledger_api.chain.types import Consent, ConsentState, DecodedEvent, DelegateScope, Delegation, GrantTerms
from ledger_api.consents.schemas import (
    ConsentView,
    DelegationIn,
    GrantIn,
    RevocationIn,
    SharingRestrictionIn,
    SharingRestrictionView,
    signature_parts,
)
from ledger_api.consents.signatures import require_next_nonce, require_unexpired
from ledger_api.core.db import session_scope
from ledger_api.errors import Conflict, ContractReverted, Forbidden, InvalidValue, NotFound
from ledger_api.node import Node
from ledger_api.notice import service as privacy_notice
from ledger_api.outbox.kinds import IN_FLIGHT, ChainWrite, OutboxKind
from ledger_api.outbox.models import OutboxItem, OutboxItemPublic
from ledger_api.outbox.service import enqueue

# ------------------------------------------------------------------------------- the messages


class Relay(ChainWrite):
    """A patient-signed message and its signature (v 27/28, r and s hex), on its way to the chain."""

    patient: str
    nonce: int
    deadline: int
    v: int
    r: str
    s: str

    @property
    def signature(self) -> tuple[int, bytes, bytes]:
        return self.v, bytes.fromhex(self.r), bytes.fromhex(self.s)

    @staticmethod
    def _signed(parts: tuple[int, bytes, bytes]) -> dict[str, int | str]:
        v, r, s = parts
        return {"v": v, "r": r.hex(), "s": s.hex()}


class ConsentGrantRelay(Relay):
    kind: ClassVar[str] = "consent_grant"
    terms: GrantTerms
    #: once confirmed: the id of the consent it created (decimal), from its ConsentGranted event
    consent_id: str | None = None

    @classmethod
    def of(cls, message: ConsentGrant, parts: tuple[int, bytes, bytes]) -> Self:
        return cls(
            patient=message.patient,
            terms=GrantTerms.of(message),
            nonce=message.nonce,
            deadline=message.deadline,
            **cls._signed(parts),
        )


class ConsentRevocationRelay(Relay):
    kind: ClassVar[str] = "consent_revoke"
    consent_id: str

    @classmethod
    def of(cls, message: ConsentRevocation, parts: tuple[int, bytes, bytes]) -> Self:
        return cls(
            patient=message.patient,
            consent_id=str(message.consent_id),
            nonce=message.nonce,
            deadline=message.deadline,
            **cls._signed(parts),
        )


class ConsentConfirmationRelay(Relay):
    kind: ClassVar[str] = "consent_confirm"
    consent_id: str

    @classmethod
    def of(cls, message: ConsentConfirmation, parts: tuple[int, bytes, bytes]) -> Self:
        return cls(
            patient=message.patient,
            consent_id=str(message.consent_id),
            nonce=message.nonce,
            deadline=message.deadline,
            **cls._signed(parts),
        )


class DelegateChangeRelay(Relay):
    kind: ClassVar[str] = "delegate_change"
    delegate: str
    scope: int
    valid_until: int = 0
    excluded_categories: int = 0

    def terms(self) -> Delegation:
        return Delegation(
            delegate=self.delegate,
            scope=DelegateScope(self.scope),
            valid_until=self.valid_until,
            excluded_categories=self.excluded_categories,
        )

    @classmethod
    def of(cls, message: DelegateChange, parts: tuple[int, bytes, bytes]) -> Self:
        return cls(
            patient=message.patient,
            delegate=message.delegate,
            scope=message.scope,
            valid_until=message.valid_until,
            excluded_categories=message.excluded_categories,
            nonce=message.nonce,
            deadline=message.deadline,
            **cls._signed(parts),
        )


class SharingRestrictionRelay(Relay):
    kind: ClassVar[str] = "sharing_restriction"
    restricted: bool

    @classmethod
    def of(cls, message: SharingRestriction, parts: tuple[int, bytes, bytes]) -> Self:
        return cls(
            patient=message.patient,
            restricted=message.restricted,
            nonce=message.nonce,
            deadline=message.deadline,
            **cls._signed(parts),
        )


# ------------------------------------------------------------------------------- how each is sent


class ConsentGrantKind(OutboxKind[ConsentGrantRelay]):
    """A grant's landing is known only from its own receipt (the row's state "sent")."""

    message = ConsentGrantRelay

    def transaction(self, chain: Consortium[UnsignedTransaction], message: ConsentGrantRelay) -> UnsignedTransaction:
        return chain.consents.grant_by_sig(message.patient, message.terms, message.deadline, message.signature)

    def outcome(self, message: ConsentGrantRelay, events: list[DecodedEvent]) -> ConsentGrantRelay | None:
        granted = [e for e in events if e.name == "ConsentGranted"]
        if not granted:
            return None
        return message.model_copy(update={"consent_id": str(granted[0].args["consentId"])})


class ConsentRevocationKind(OutboxKind[ConsentRevocationRelay]):
    message = ConsentRevocationRelay

    def transaction(
        self, chain: Consortium[UnsignedTransaction], message: ConsentRevocationRelay
    ) -> UnsignedTransaction:
        return chain.consents.revoke_by_sig(int(message.consent_id), message.deadline, message.signature)

    def already_done(self, message: ConsentRevocationRelay) -> bool:
        try:
            return self.node.chain.consents.consent(int(message.consent_id)).state == ConsentState.REVOKED
        except ContractReverted:
            return False


class ConsentConfirmationKind(OutboxKind[ConsentConfirmationRelay]):
    message = ConsentConfirmationRelay

    def transaction(
        self, chain: Consortium[UnsignedTransaction], message: ConsentConfirmationRelay
    ) -> UnsignedTransaction:
        return chain.consents.confirm_by_sig(int(message.consent_id), message.deadline, message.signature)

    def already_done(self, message: ConsentConfirmationRelay) -> bool:
        return self.node.chain.consents.nonce(message.patient) > message.nonce


class DelegateChangeKind(OutboxKind[DelegateChangeRelay]):
    message = DelegateChangeRelay

    def transaction(self, chain: Consortium[UnsignedTransaction], message: DelegateChangeRelay) -> UnsignedTransaction:
        return chain.consents.set_delegate_by_sig(message.patient, message.terms(), message.deadline, message.signature)

    def already_done(self, message: DelegateChangeRelay) -> bool:
        consents = self.node.chain.consents
        stored = consents.delegation(message.patient, message.delegate)
        wanted = message.terms()
        standing_as_signed = stored == wanted if wanted.scope != DelegateScope.NONE else stored is None
        return standing_as_signed and consents.nonce(message.patient) > message.nonce


class SharingRestrictionKind(OutboxKind[SharingRestrictionRelay]):
    message = SharingRestrictionRelay

    def transaction(
        self, chain: Consortium[UnsignedTransaction], message: SharingRestrictionRelay
    ) -> UnsignedTransaction:
        return chain.consents.restrict_sharing_by_sig(
            message.patient, message.restricted, message.deadline, message.signature
        )

    def already_done(self, message: SharingRestrictionRelay) -> bool:
        consents = self.node.chain.consents
        return (
            consents.is_restricted(message.patient) == message.restricted
            and consents.nonce(message.patient) > message.nonce
        )


KINDS: tuple[type[OutboxKind[Any]], ...] = (
    ConsentGrantKind,
    ConsentRevocationKind,
    ConsentConfirmationKind,
    DelegateChangeKind,
    SharingRestrictionKind,
)
RELAY_KINDS = tuple(kind.name() for kind in KINDS)


# ------------------------------------------------------------------------------- the relays


def _check_relay(node: Node, caller: Caller, patient: str) -> None:
    policy.require(policy.PATIENT_DELEGATE_OR_MEMBER_RELAYS, node, caller, patient)


def _check_signed(
    node: Node,
    message: ConsentMessage,
    parts: tuple[int, bytes, bytes],
    *,
    delegates_allowed: bool = True,
    categories: int = 0,
) -> str:
    """What the contract will check, checked now, in the contract's order, with one code per cause
    (``parts``: the signature as ``signature_parts`` returned it, v already 27/28 and s low; ``categories``:
    what the act decides on, which a delegate who signs it must not be kept from)."""
    v, r, s = parts
    require_unexpired(message.deadline)
    patient = message.patient
    require_next_nonce(node, patient, message.nonce)
    contract = node.manifest.address("ConsentRegistry")
    document = message.document(chain_id=node.chain_id, contract=contract)
    domain = document["domain"]
    try:
        signer = recover_typed(document, v, r, s)
    except Exception:
        raise InvalidValue(
            "signature: not a valid signature", field="signature", code="consent-signature-malformed"
        ) from None
    actor = delegation_rules.actor_of(node, signer)  # the account the key signs for (after a succession)
    delegation = delegation_rules.standing(node, patient, actor) if delegates_allowed and actor is not None else None
    if actor != patient and delegation is None:
        raise Forbidden(
            f"signature: under this consortium's EIP-712 domain (name {domain['name']!r}, version "
            f"{domain['version']!r}, chainId {node.chain_id}, verifyingContract {contract}) it is by "
            f"{signer}, who is neither the patient nor a delegate. A signature made for another chain "
            "or contract, or over other terms, recovers to such an unrelated account.",
            code="signature-wrong-signer",
            expected_chain_id=node.chain_id,
            expected_verifying_contract=contract,
        )
    if actor != patient and delegation is not None:
        delegation_rules.require_manages(delegation, categories)
    return signer


def relay_grant(node: Node, caller: Caller, grant: GrantIn) -> OutboxItemPublic:
    _check_relay(node, caller, grant.patient)
    if grant.valid_from >= grant.valid_until or grant.valid_until <= int(time.time()):
        raise InvalidValue(
            "valid_until: the window must end in the future, after valid_from",
            field="valid_until",
            code="consent-window-invalid",
        )
    terms = grant.terms()
    for grantee in terms.grantees:
        if not node.chain.registry.is_active_member(grantee):
            raise InvalidValue(
                f"grantees: {grantee} is not an active consortium member (a grant names only members active "
                "when the patient signs)",
                field="grantees",
                code="grantee-not-member",
            )
    if terms.care_to and terms.care_from > terms.care_to:
        raise InvalidValue(
            "care_to: the last day of care covered comes before the first", field="care_to", code="care-range-invalid"
        )
    notice = privacy_notice.current(node.settings.privacy_notice_dir)
    if terms.notice_version != notice.version or terms.notice_hash != notice.sha256:
        raise InvalidValue(
            f"notice_version/notice_hash: not the privacy notice in force (version {notice.version}, SHA-256 "
            f"{notice.sha256.hex()}): show the patient GET /v1/privacy-notice and sign again",
            field="notice_hash",
            code="notice-not-current",
        )
    message = ConsentGrant.of(grant.patient, terms, nonce=grant.nonce, deadline=grant.deadline)
    parts = signature_parts(grant.signature)
    _check_signed(node, message, parts, categories=terms.categories)
    return _enqueue(node, ConsentGrantRelay.of(message, parts))


def relay_revocation(node: Node, caller: Caller, revocation: RevocationIn) -> OutboxItemPublic:
    consent = _unrevoked_consent(node, caller, revocation, "is already revoked")
    message = ConsentRevocation(
        patient=consent.patient, consent_id=consent.consent_id, nonce=revocation.nonce, deadline=revocation.deadline
    )
    parts = signature_parts(revocation.signature)
    _check_signed(node, message, parts, categories=consent.categories)
    return _enqueue(node, ConsentRevocationRelay.of(message, parts))


def relay_confirmation(node: Node, caller: Caller, confirmation: RevocationIn) -> OutboxItemPublic:
    """The patient's own key confirms a consent a guardian or delegate signed in their name."""
    consent = _unrevoked_consent(node, caller, confirmation, "is revoked: there is nothing to confirm")
    message = ConsentConfirmation(
        patient=consent.patient, consent_id=consent.consent_id, nonce=confirmation.nonce, deadline=confirmation.deadline
    )
    parts = signature_parts(confirmation.signature)
    _check_signed(node, message, parts, delegates_allowed=False)  # the patient's own word, no one else's
    return _enqueue(node, ConsentConfirmationRelay.of(message, parts))


def _unrevoked_consent(node: Node, caller: Caller, signed: RevocationIn, if_revoked: str) -> Consent:
    """The consent a signed message names, once the caller may relay for its patient: 404 if none, 409 if
    revoked (``if_revoked`` says why that refuses it)."""
    consent_id = int(signed.consent_id)
    _check_relay(node, caller, patient_of(consent_id))
    try:
        consent = node.chain.consents.consent(consent_id)
    except ContractReverted:
        raise NotFound(f"no consent {consent_id}", code="consent-not-found") from None
    if consent.state == ConsentState.REVOKED:
        raise Conflict(f"consent {consent_id} {if_revoked}", code="consent-already-revoked")
    return consent


def relay_delegation(node: Node, caller: Caller, change: DelegationIn) -> OutboxItemPublic:
    _check_relay(node, caller, change.patient)
    if change.delegate == change.patient:
        raise InvalidValue(
            "delegate: a patient cannot be their own delegate", field="delegate", code="delegate-is-patient"
        )
    if change.scope == "none" and (change.valid_until or change.excluded_categories):
        raise InvalidValue(
            "scope: a removal (scope none) carries no end date and no excluded categories",
            field="scope",
            code="delegation-invalid",
        )
    if change.valid_until and change.valid_until <= int(time.time()):
        raise InvalidValue(
            "valid_until: a delegation ends in the future (0: until the patient removes it)",
            field="valid_until",
            code="delegation-end-passed",
        )
    message = DelegateChange(
        patient=change.patient,
        delegate=change.delegate,
        scope=int(change.delegate_scope()),
        valid_until=change.valid_until,
        excluded_categories=change.excluded_categories,
        nonce=change.nonce,
        deadline=change.deadline,
    )
    parts = signature_parts(change.signature)
    _check_signed(node, message, parts, delegates_allowed=False)
    stored = node.chain.consents.delegation(change.patient, change.delegate)
    if stored == change.terms() or (stored is None and change.scope == "none"):
        raise Conflict("the delegate already stands exactly so; nothing to change", code="delegation-unchanged")
    return _enqueue(node, DelegateChangeRelay.of(message, parts))


def relay_sharing_restriction(
    node: Node, caller: Caller, patient: str, change: SharingRestrictionIn
) -> OutboxItemPublic:
    """A patient's erasure request for all their records, where the law says they must be kept: a
    restriction on chain, honoured by every member's release check from its block on."""
    _check_relay(node, caller, patient)
    if node.chain.consents.is_restricted(patient) == change.restricted:
        raise Conflict(
            f"the patient's records are {'already' if change.restricted else 'not'} restricted",
            code="restriction-unchanged",
        )
    message = SharingRestriction(
        patient=patient, restricted=change.restricted, nonce=change.nonce, deadline=change.deadline
    )
    parts = signature_parts(change.signature)
    _check_signed(node, message, parts)
    return _enqueue(node, SharingRestrictionRelay.of(message, parts))


def sharing_restriction(node: Node, caller: Caller, patient: str) -> SharingRestrictionView:
    policy.require(policy.PATIENT_DELEGATE_OR_ANY_MEMBER_READS_CONSENTS, node, caller, patient)
    with session_scope(node.engine) as session:
        pending = session.exec(
            select(OutboxItem.id).where(
                OutboxItem.kind == SharingRestrictionRelay.kind,
                col(OutboxItem.state).in_(IN_FLIGHT),
                OutboxItem.payload["patient"].as_string() == patient,
            )
        ).first()
    return SharingRestrictionView(
        patient=patient, restricted=node.chain.consents.is_restricted(patient), pending=pending is not None
    )


def _enqueue(node: Node, relay: Relay) -> OutboxItemPublic:
    """Queues a relay, unless one for the same patient and nonce is still on its way (409 ``nonce-pending``):
    only one of them could land, and the other would fail later with a misleading reason.

    The check and the insert are one transaction taken under the node's write turn (SQLite) or a
    transaction-scoped advisory lock on the patient (PostgreSQL), so two racing relays cannot both pass."""
    patient, nonce = relay.patient, relay.nonce
    with node.write_turns.turn(), session_scope(node.engine) as session:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))").bindparams(key=f"relay:{patient}"))
        waiting = session.exec(
            select(OutboxItem).where(
                col(OutboxItem.kind).in_(RELAY_KINDS),
                col(OutboxItem.state).in_(IN_FLIGHT),
                OutboxItem.payload["patient"].as_string() == patient,
            )
        )
        for item in waiting:
            if item.payload.get("nonce") == nonce:
                raise Conflict(
                    f"nonce: relay {item.id} for the patient's nonce {nonce} is still on its way; follow "
                    f"GET /v1/relays/{item.id}",
                    code="nonce-pending",
                    relay_id=item.id,
                )
        item = enqueue(session, relay)
        return _public(item)


def _public(item: OutboxItem) -> OutboxItemPublic:
    view = OutboxItemPublic.model_validate(item, from_attributes=True)
    if item.kind == ConsentGrantRelay.kind and item.payload.get("consent_id") is not None:
        view.consent_id = str(item.payload["consent_id"])
    return view


def outbox_item(node: Node, caller: Caller, item_id: int) -> OutboxItemPublic:
    """A relay's progress. Patients see their own relays only: another's would tell whom they consented to
    (its transaction hash is on chain). Anything else in the outbox is not a relay and not shown here."""
    with session_scope(node.engine) as session:
        item = session.get(OutboxItem, item_id)
        if item is None or item.kind not in RELAY_KINDS:
            raise NotFound(f"no relay {item_id}", code="relay-not-found")
        patient = item.payload.get("patient", "")
        if not policy.allows(policy.PATIENT_DELEGATE_MEMBER_OR_AUDITOR_FOLLOWS_RELAY, node, caller, patient):
            raise NotFound(f"no relay {item_id}", code="relay-not-found")
        return _public(item)


def pending_grants(node: Node, patient: str) -> list[ConsentView]:
    """Grants for ``patient`` relayed by this node and not on chain yet (status "pending")."""
    with session_scope(node.engine) as session:
        pending = session.exec(
            select(OutboxItem).where(
                OutboxItem.kind == ConsentGrantRelay.kind,
                col(OutboxItem.state).in_(IN_FLIGHT),
                OutboxItem.payload["patient"].as_string() == checksum_address(patient),
            )
        ).all()
    views = []
    for item in pending:
        relay = ConsentGrantRelay.model_validate(item.payload)
        views.append(ConsentView.of(f"pending-{item.id}", patient, relay.terms, "pending"))
    return views
