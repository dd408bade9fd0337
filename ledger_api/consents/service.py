"""Consents: relay patient-signed grants and revocations to the chain, list them, answer "may X read?".

The node checks a signed grant before relaying it, exactly as the contract will (chain id,
contract, current nonce, deadline, signer = patient or delegate), so a bad signature is a clear
4xx now, not a failed transaction later. Relays go through the outbox: the response says
"pending", and the listing shows when it is on chain.
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

from medledger_crypto import recover_typed, typed_data
from medledger_crypto._eip712 import DOMAIN_NAME, DOMAIN_VERSION
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import text
from sqlmodel import col, select
from web3 import Web3

from ledger_api.auth.service import Caller, speaks_for
from ledger_api.auth.signing import is_high_s
from ledger_api.chain.clients import ANY_MEMBER, ConsentState, GrantTerms, patient_of
from ledger_api.core.db import session_scope
from ledger_api.errors import Conflict, ContractReverted, Forbidden, InvalidValue, NotFound
from ledger_api.node import Node
from ledger_api.outbox.models import OutboxItem, OutboxItemPublic
from ledger_api.outbox.service import enqueue


def _address(value: str) -> str:
    if not Web3.is_address(value):
        raise ValueError("not an Ethereum address")
    return Web3.to_checksum_address(value)


UINT256 = 2**256
#: a patient's nonce and a signature's deadline: any uint256 (the contract's types)
Nonce = Annotated[int, Field(ge=0, lt=UINT256)]
Deadline = Annotated[
    int,
    Field(
        ge=0,
        lt=UINT256,
        description="unix seconds; any uint256, as a JSON number or a "
        "decimal string (JavaScript numbers lose precision past 2**53)",
    ),
]


class SignatureIn(BaseModel):
    """An EIP-712 signature as three parts; ``v`` as 27/28 or as the bare recovery id 0/1."""

    v: int = Field(ge=0, le=28, description="27 or 28 (0 and 1 are taken as 27 and 28)")
    r: str = Field(pattern=r"^(0x)?[0-9a-fA-F]{64}$")
    s: str = Field(pattern=r"^(0x)?[0-9a-fA-F]{64}$")

    def as_tuple(self) -> tuple[int, bytes, bytes]:
        return self.v, bytes.fromhex(self.r.removeprefix("0x")), bytes.fromhex(self.s.removeprefix("0x"))


#: what ethers' ``signTypedData`` returns: r || s || v as one 65-byte hex string
SignatureHex = Annotated[
    str,
    Field(pattern=r"^(0x)?[0-9a-fA-F]{130}$", description="65 bytes r || s || v in hex, as wallets and ethers produce"),
]
Signature = SignatureIn | SignatureHex


def signature_parts(signature: Signature) -> tuple[int, bytes, bytes]:
    """(v as 27/28, r, s), refusing what the contract would refuse: another ``v``, or a high ``s``."""
    if isinstance(signature, str):
        raw = bytes.fromhex(signature.removeprefix("0x"))
        v, r, s = raw[64], raw[:32], raw[32:64]
    else:
        v, r, s = signature.as_tuple()
    if v in (0, 1):
        v += 27
    if v not in (27, 28):
        raise InvalidValue(
            "signature: v must be 27 or 28 (or 0 or 1)", field="signature", code="consent-signature-malformed"
        )
    if is_high_s(s):
        raise InvalidValue(
            "signature: s is in the upper half of the curve order; the contract accepts only the "
            "lower-s form (EIP-2): sign again with a standard wallet",
            field="signature",
            code="signature-malleable",
        )
    return v, r, s


class GrantIn(BaseModel):
    """A patient-signed grant to relay. ``grantee`` = the zero address for every active member."""

    patient: str
    grantee: str
    categories: int = Field(ge=1, le=0xFFFF)
    purposes: int = Field(ge=1, le=0xFF)
    valid_from: int = Field(ge=0, lt=2**32)
    valid_until: int = Field(ge=1, lt=2**32)
    nonce: Nonce
    deadline: Deadline
    signature: Signature

    _check_patient = field_validator("patient", "grantee")(_address)


class RevocationIn(BaseModel):
    consent_id: str = Field(pattern=r"^[0-9]{1,78}$", description="decimal consent id")

    @field_validator("consent_id")
    @classmethod
    def _uint256(cls, value: str) -> str:
        if int(value) >= 2**256:
            raise ValueError("a consent id is below 2**256")
        return value

    nonce: Nonce
    deadline: Deadline
    signature: Signature


class DelegationIn(BaseModel):
    patient: str
    delegate: str
    appointed: bool
    nonce: Nonce
    deadline: Deadline
    signature: Signature

    _check = field_validator("patient", "delegate")(_address)


class ConsentView(BaseModel):
    consent_id: str
    patient: str
    grantee: str
    categories: int
    purposes: int
    valid_from: int
    valid_until: int
    status: Literal["active", "not-yet-valid", "expired", "revoked", "pending"]


class PermissionView(BaseModel):
    patient: str
    requester: str
    category: int
    purpose: int
    permitted: bool
    consent_id: str | None
    break_glass_id: str | None


def _check_relay(node: Node, caller: Caller, patient: str) -> None:
    if caller.kind == "auditor":
        raise Forbidden("auditors do not relay consents", code="role-not-allowed")
    if caller.kind == "patient" and not speaks_for(node, caller, patient):
        raise Forbidden("patients relay only their own consents (or those they are delegate for)", code="patient-scope")


def _check_signed(
    node: Node,
    primary: str,
    message: dict,
    parts: tuple[int, bytes, bytes],
    patient: str,
    *,
    delegates_allowed: bool = True,
) -> str:
    """What the contract will check, checked now, in the contract's order, with one code per cause
    (``parts``: the signature as ``signature_parts`` returned it, v already 27/28 and s low)."""
    v, r, s = parts
    if message["deadline"] < int(time.time()):
        raise InvalidValue(
            "deadline: the signature's deadline has passed; ask the patient to sign again",
            field="deadline",
            code="signature-deadline-passed",
        )
    current = node.chain.consents.nonce(patient)
    if message["nonce"] < current:
        raise Conflict(
            f"nonce: signed for nonce {message['nonce']}, which is used; the patient's next nonce is "
            f"{current} (GET /v1/patients/{{patient}}/signing-domain)",
            code="nonce-stale",
        )
    if message["nonce"] != current:
        raise Conflict(
            f"nonce: signed for nonce {message['nonce']}, ahead of the patient's next nonce {current}; "
            "a signature is relayed only for the next nonce",
            code="nonce-ahead",
        )
    contract = node.manifest.address("ConsentRegistry")
    document = typed_data(primary, message, chain_id=node.chain_id, contract=contract)
    try:
        signer = recover_typed(document, v, r, s)
    except Exception:
        raise InvalidValue(
            "signature: not a valid signature", field="signature", code="consent-signature-malformed"
        ) from None
    allowed = signer == patient or (delegates_allowed and node.chain.consents.is_delegate(patient, signer))
    if not allowed:
        raise Forbidden(
            f"signature: under this consortium's EIP-712 domain (name {DOMAIN_NAME!r}, version "
            f"{DOMAIN_VERSION!r}, chainId {node.chain_id}, verifyingContract {contract}) it is by "
            f"{signer}, who is neither the patient nor a delegate. A signature made for another chain "
            "or contract, or over other terms, recovers to such an unrelated account.",
            code="signature-wrong-signer",
            expected_chain_id=node.chain_id,
            expected_verifying_contract=contract,
        )
    return signer


def relay_grant(node: Node, caller: Caller, grant: GrantIn) -> OutboxItemPublic:
    _check_relay(node, caller, grant.patient)
    if grant.valid_from >= grant.valid_until or grant.valid_until <= int(time.time()):
        raise InvalidValue(
            "valid_until: the window must end in the future, after valid_from",
            field="valid_until",
            code="consent-window-invalid",
        )
    if grant.grantee != ANY_MEMBER and not node.chain.registry.is_active_member(grant.grantee):
        raise InvalidValue("grantee: not an active consortium member", field="grantee", code="grantee-not-member")
    terms = GrantTerms(
        grantee=grant.grantee,
        categories=grant.categories,
        purposes=grant.purposes,
        valid_from=grant.valid_from,
        valid_until=grant.valid_until,
    )
    message = {
        "patient": grant.patient,
        "grantee": grant.grantee,
        "categories": grant.categories,
        "purposes": grant.purposes,
        "validFrom": grant.valid_from,
        "validUntil": grant.valid_until,
        "nonce": grant.nonce,
        "deadline": grant.deadline,
    }
    parts = signature_parts(grant.signature)
    _check_signed(node, "ConsentGrant", message, parts, grant.patient)
    return _enqueue(
        node,
        "consent_grant",
        {
            "patient": grant.patient,
            "terms": terms.model_dump(),
            "nonce": grant.nonce,
            "deadline": grant.deadline,
            **_sig(parts),
        },
    )


def relay_revocation(node: Node, caller: Caller, revocation: RevocationIn) -> OutboxItemPublic:
    consent_id = int(revocation.consent_id)
    patient = patient_of(consent_id)
    _check_relay(node, caller, patient)
    try:
        consent = node.chain.consents.consent(consent_id)
    except ContractReverted:
        raise NotFound(f"no consent {consent_id}", code="consent-not-found") from None
    if consent.state == ConsentState.REVOKED:
        raise Conflict(f"consent {consent_id} is already revoked", code="consent-already-revoked")
    message = {"patient": patient, "consentId": consent_id, "nonce": revocation.nonce, "deadline": revocation.deadline}
    parts = signature_parts(revocation.signature)
    _check_signed(node, "ConsentRevocation", message, parts, patient)
    return _enqueue(
        node,
        "consent_revoke",
        {
            "patient": patient,
            "consent_id": str(consent_id),
            "nonce": revocation.nonce,
            "deadline": revocation.deadline,
            **_sig(parts),
        },
    )


def relay_delegation(node: Node, caller: Caller, change: DelegationIn) -> OutboxItemPublic:
    _check_relay(node, caller, change.patient)
    if change.delegate == change.patient:
        raise InvalidValue(
            "delegate: a patient cannot be their own delegate", field="delegate", code="delegate-is-patient"
        )
    message = {
        "patient": change.patient,
        "delegate": change.delegate,
        "appointed": change.appointed,
        "nonce": change.nonce,
        "deadline": change.deadline,
    }
    parts = signature_parts(change.signature)
    _check_signed(node, "DelegateChange", message, parts, change.patient, delegates_allowed=False)
    return _enqueue(
        node,
        "delegate_change",
        {
            "patient": change.patient,
            "delegate": change.delegate,
            "appointed": change.appointed,
            "nonce": change.nonce,
            "deadline": change.deadline,
            **_sig(parts),
        },
    )


def _sig(parts: tuple[int, bytes, bytes]) -> dict:
    v, r, s = parts
    return {"v": v, "r": r.hex(), "s": s.hex()}


def _enqueue(node: Node, kind: str, payload: dict) -> OutboxItemPublic:
    """Queues a relay, unless one for the same patient and nonce is still on its way (409 ``nonce-pending``):
    only one of them could land, and the other would fail later with a misleading reason.

    The check and the insert are one transaction taken under the node's write turn (SQLite) or a
    transaction-scoped advisory lock on the patient (PostgreSQL), so two racing relays cannot both pass."""
    patient, nonce = payload["patient"], payload["nonce"]
    with node.write_turns.turn(), session_scope(node.engine) as session:
        if session.get_bind().dialect.name == "postgresql":
            session.exec(text("SELECT pg_advisory_xact_lock(hashtext(:key))").bindparams(key=f"relay:{patient}"))
        waiting = session.exec(
            select(OutboxItem).where(
                col(OutboxItem.kind).in_(RELAY_KINDS),
                col(OutboxItem.state).in_(("pending", "sent")),
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
        item = enqueue(session, kind, payload)
        return _public(item)


def _public(item: OutboxItem) -> OutboxItemPublic:
    view = OutboxItemPublic.model_validate(item, from_attributes=True)
    if item.kind == "consent_grant" and item.payload.get("consent_id") is not None:
        view.consent_id = str(item.payload["consent_id"])
    return view


RELAY_KINDS = ("consent_grant", "consent_revoke", "delegate_change")


def outbox_item(node: Node, caller: Caller, item_id: int) -> OutboxItemPublic:
    """A relay's progress. Patients see their own relays only: another's would tell whom they consented to
    (its transaction hash is on chain). Anything else in the outbox is not a relay and not shown here."""
    with session_scope(node.engine) as session:
        item = session.get(OutboxItem, item_id)
        if item is None or item.kind not in RELAY_KINDS:
            raise NotFound(f"no relay {item_id}", code="relay-not-found")
        patient = item.payload.get("patient", "")
        if caller.kind == "patient" and not speaks_for(node, caller, patient):
            raise NotFound(f"no relay {item_id}", code="relay-not-found")
        return _public(item)


def consent_status(*, revoked: bool, valid_from: int, valid_until: int, now: int) -> str:
    """A consent's status at ``now`` (unix seconds), as the contract judges it."""
    if revoked:
        return "revoked"
    if now >= valid_until:
        return "expired"
    return "not-yet-valid" if now < valid_from else "active"


def list_consents(node: Node, caller: Caller, patient: str) -> list[ConsentView]:
    """The patient's consents as the chain holds them, plus grants relayed here and not yet on chain."""
    if caller.kind == "patient" and not speaks_for(node, caller, patient):
        raise Forbidden("patients see only their own consents (or those they are delegate for)", code="patient-scope")
    now = int(time.time())
    views = []
    for c in node.chain.consents.consents_of(patient):
        status = consent_status(
            revoked=c.state == ConsentState.REVOKED, valid_from=c.valid_from, valid_until=c.valid_until, now=now
        )
        views.append(
            ConsentView(
                consent_id=str(c.consent_id),
                patient=patient,
                grantee=c.grantee,
                categories=c.categories,
                purposes=c.purposes,
                valid_from=c.valid_from,
                valid_until=c.valid_until,
                status=status,
            )
        )
    with session_scope(node.engine) as session:
        pending = session.exec(
            select(OutboxItem).where(OutboxItem.kind == "consent_grant", col(OutboxItem.state).in_(["pending", "sent"]))
        ).all()
    for item in pending:
        if item.payload["patient"] == patient:
            t = item.payload["terms"]
            views.append(
                ConsentView(
                    consent_id=f"pending-{item.id}",
                    patient=patient,
                    grantee=t["grantee"],
                    categories=t["categories"],
                    purposes=t["purposes"],
                    valid_from=t["valid_from"],
                    valid_until=t["valid_until"],
                    status="pending",
                )
            )
    return views


def check_permission(node: Node, patient: str, requester: str, category: int, purpose: int) -> PermissionView:
    consent_id = node.chain.consents.permitting_consent(patient, requester, category, purpose)
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
