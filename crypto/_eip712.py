"""EIP-712 typed data for consent grants, revocations, delegate changes and restrictions (patients sign these).

These are exactly the structs ``ConsentRegistry`` hashes (same type strings, same field order),
so a signature made by any EIP-712 wallet over them is accepted by the contract. The domain
binds chain id and contract address: a signature for another chain or contract is worthless.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount

DOMAIN_NAME = "MedLedger Consent"
DOMAIN_VERSION = "1"

_TYPES: dict[str, list[dict[str, str]]] = {
    "ConsentGrant": [
        {"name": "patient", "type": "address"},
        {"name": "grantees", "type": "address[]"},
        {"name": "categories", "type": "uint16"},
        {"name": "purposes", "type": "uint8"},
        {"name": "validFrom", "type": "uint32"},
        {"name": "validUntil", "type": "uint32"},
        {"name": "careFrom", "type": "uint16"},
        {"name": "careTo", "type": "uint16"},
        {"name": "noticeVersion", "type": "uint16"},
        {"name": "noticeHash", "type": "bytes32"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
    "ConsentRevocation": [
        {"name": "patient", "type": "address"},
        {"name": "consentId", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
    "DelegateChange": [
        {"name": "patient", "type": "address"},
        {"name": "delegate", "type": "address"},
        {"name": "scope", "type": "uint8"},
        {"name": "validUntil", "type": "uint32"},
        {"name": "excludedCategories", "type": "uint16"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
    # the patient's own key confirms a consent a guardian or delegate signed in their name
    "ConsentConfirmation": [
        {"name": "patient", "type": "address"},
        {"name": "consentId", "type": "uint256"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
    # succession of a patient account's key: planned (the current key signs), recovery (members in person
    # and/or guardians approve, the current key may cancel during the time lock), a minor's claim at age
    "KeyRotation": [
        {"name": "account", "type": "address"},
        {"name": "newKey", "type": "address"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
    "RecoveryApproval": [
        {"name": "account", "type": "address"},
        {"name": "newKey", "type": "address"},
        {"name": "round", "type": "uint32"},
        {"name": "deadline", "type": "uint256"},
    ],
    "RecoveryCancellation": [
        {"name": "account", "type": "address"},
        {"name": "newKey", "type": "address"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
    "MinorClaim": [
        {"name": "account", "type": "address"},
        {"name": "key", "type": "address"},
        {"name": "guardianScope", "type": "uint8"},
        {"name": "deadline", "type": "uint256"},
    ],
    "SharingRestriction": [
        {"name": "patient", "type": "address"},
        {"name": "restricted", "type": "bool"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
    # a records officer's countersignature of a legal order to erase a record before its retention end
    "LegalErasure": [
        {"name": "recordId", "type": "bytes32"},
        {"name": "orderId", "type": "uint256"},
        {"name": "order", "type": "bytes32"},
    ],
    # not relayed to the chain (that would link the patient to the record there): the record's custodian
    # checks it and keeps it; ``issuedAt`` (unix ms) only ever grows per record, so an old signature cannot be replayed
    "RecordRestriction": [
        {"name": "patient", "type": "address"},
        {"name": "recordId", "type": "bytes32"},
        {"name": "restricted", "type": "bool"},
        {"name": "issuedAt", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
    # hide (or show again) one record from every consent; like a restriction, checked and kept by the custodian
    "RecordHiding": [
        {"name": "patient", "type": "address"},
        {"name": "recordId", "type": "bytes32"},
        {"name": "hidden", "type": "bool"},
        {"name": "issuedAt", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
    # shown by the patient to a hospital's registration desk (QR or short code), never relayed: "my account is
    # patient ``mrn`` at ``hospital``" (``linked`` false: remove that link); ``issuedAt`` (unix ms) grows per patient
    "PatientNumberLink": [
        {"name": "patient", "type": "address"},
        {"name": "hospital", "type": "address"},
        {"name": "mrn", "type": "string"},
        {"name": "linked", "type": "bool"},
        {"name": "issuedAt", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ],
    # the patient's "no" to a hospital's consent request (a "yes" is the grant itself, on chain)
    "ConsentRequestRefusal": [
        {"name": "patient", "type": "address"},
        {"name": "requester", "type": "address"},
        {"name": "requestId", "type": "bytes16"},
        {"name": "deadline", "type": "uint256"},
    ],
}

_DOMAIN_TYPE = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def typed_data(primary_type: str, message: dict[str, Any], *, chain_id: int, contract: str) -> dict[str, Any]:
    """The full EIP-712 document (as wallets' ``eth_signTypedData_v4`` take it)."""
    if primary_type not in _TYPES:
        raise ValueError(f"unknown consent message type {primary_type!r}")
    expected = {f["name"] for f in _TYPES[primary_type]}
    if set(message) != expected:
        raise ValueError(f"{primary_type} needs fields {sorted(expected)}, got {sorted(message)}")
    return {
        "types": {"EIP712Domain": _DOMAIN_TYPE, primary_type: _TYPES[primary_type]},
        "primaryType": primary_type,
        "domain": {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": chain_id, "verifyingContract": contract},
        "message": message,
    }


def sign_typed(account: LocalAccount, document: dict[str, Any]) -> tuple[int, bytes, bytes]:
    """Signs an EIP-712 document; returns ``(v, r, s)`` as the contract takes them."""
    signed = account.sign_message(encode_typed_data(full_message=document))
    return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")


def recover_typed(document: dict[str, Any], v: int, r: bytes, s: bytes) -> str:
    """The address that signed ``document`` (checked by the node before relaying)."""
    return str(Account.recover_message(encode_typed_data(full_message=document), vrs=(v, r, s)))


# ------------------------------------------------------------------------------- the messages


@dataclass(frozen=True)
class TypedMessage:
    """A message a patient (or records officer) signs under the consortium's consent domain: its fields under
    their EIP-712 names, and its EIP-712 document."""

    primary_type: ClassVar[str]

    def fields(self) -> dict[str, Any]:
        """The message's fields under their EIP-712 names."""
        raise NotImplementedError

    def document(self, *, chain_id: int, contract: str) -> dict[str, Any]:
        return typed_data(self.primary_type, self.fields(), chain_id=chain_id, contract=contract)


@dataclass(frozen=True)
class ConsentMessage(TypedMessage):
    """A message the ConsentRegistry takes relayed: the patient's, with their nonce. The one model the node
    (to check a relay), the CLI and wallets' helpers (to sign) and the tests build."""

    patient: str
    nonce: int
    deadline: int


@dataclass(frozen=True)
class ConsentGrant(ConsentMessage):
    primary_type: ClassVar[str] = "ConsentGrant"
    #: the members named, in the order signed (each active at signing; "every member" lists them all)
    grantees: tuple[str, ...]
    categories: int
    purposes: int
    valid_from: int
    valid_until: int
    #: days of care covered, days since 1970-01-01 (UTC), inclusive; 0 = open end
    care_from: int
    care_to: int
    #: the privacy notice shown before signing: its version and SHA-256
    notice_version: int
    notice_hash: bytes

    @classmethod
    def of(cls, patient: str, terms: Any, *, nonce: int, deadline: int) -> ConsentGrant:
        """The grant of ``terms`` (anything with the fields of ``GRANT_TERMS``: the chain's terms, a relay
        request) by ``patient``."""
        fields = {name: getattr(terms, name) for name in GRANT_TERMS}
        fields["grantees"] = tuple(fields["grantees"])
        return cls(patient=patient, nonce=nonce, deadline=deadline, **fields)

    def fields(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "grantees": list(self.grantees),
            "categories": self.categories,
            "purposes": self.purposes,
            "validFrom": self.valid_from,
            "validUntil": self.valid_until,
            "careFrom": self.care_from,
            "careTo": self.care_to,
            "noticeVersion": self.notice_version,
            "noticeHash": self.notice_hash,
            "nonce": self.nonce,
            "deadline": self.deadline,
        }


#: the terms a patient grants, as every model of one names them
GRANT_TERMS = (
    "grantees",
    "categories",
    "purposes",
    "valid_from",
    "valid_until",
    "care_from",
    "care_to",
    "notice_version",
    "notice_hash",
)


@dataclass(frozen=True)
class ConsentRevocation(ConsentMessage):
    primary_type: ClassVar[str] = "ConsentRevocation"
    consent_id: int

    def fields(self) -> dict[str, Any]:
        return {"patient": self.patient, "consentId": self.consent_id, "nonce": self.nonce, "deadline": self.deadline}


@dataclass(frozen=True)
class DelegateChange(ConsentMessage):
    """Appoint a delegate (guardian), change what they may do, or remove them (``scope`` 0 and nothing else).
    ``scope``: 1 view (records, consents, history), 2 manage (also grant, revoke, restrict); ``valid_until``:
    the second the delegation ends (0: until removed); ``excluded_categories``: a bit set of record categories
    the delegate may neither see nor decide on."""

    primary_type: ClassVar[str] = "DelegateChange"
    delegate: str
    scope: int
    valid_until: int = 0
    excluded_categories: int = 0

    def fields(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "delegate": self.delegate,
            "scope": self.scope,
            "validUntil": self.valid_until,
            "excludedCategories": self.excluded_categories,
            "nonce": self.nonce,
            "deadline": self.deadline,
        }


@dataclass(frozen=True)
class SharingRestriction(ConsentMessage):
    """Restrict (or lift the restriction of) the sharing of all the patient's records, relayed to the chain."""

    primary_type: ClassVar[str] = "SharingRestriction"
    restricted: bool

    def fields(self) -> dict[str, Any]:
        return {"patient": self.patient, "restricted": self.restricted, "nonce": self.nonce, "deadline": self.deadline}


@dataclass(frozen=True)
class RecordRestriction(TypedMessage):
    """Restrict (or lift the restriction of) one record, sent to its custodian (never to the chain)."""

    primary_type: ClassVar[str] = "RecordRestriction"
    patient: str
    record_id: bytes
    restricted: bool
    issued_at: int
    deadline: int

    def fields(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "recordId": self.record_id,
            "restricted": self.restricted,
            "issuedAt": self.issued_at,
            "deadline": self.deadline,
        }


@dataclass(frozen=True)
class RecordHiding(TypedMessage):
    """Hide (or show again) one record from every consent, sent to its custodian (never to the chain)."""

    primary_type: ClassVar[str] = "RecordHiding"
    patient: str
    record_id: bytes
    hidden: bool
    issued_at: int
    deadline: int

    def fields(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "recordId": self.record_id,
            "hidden": self.hidden,
            "issuedAt": self.issued_at,
            "deadline": self.deadline,
        }


@dataclass(frozen=True)
class PatientNumberLink(TypedMessage):
    """A patient's statement that their account is patient ``mrn`` at ``hospital`` (or, ``linked`` false,
    that the hospital must drop its link). Checked and kept by that hospital's node only."""

    primary_type: ClassVar[str] = "PatientNumberLink"
    patient: str
    hospital: str
    mrn: str
    linked: bool
    issued_at: int
    deadline: int

    def fields(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "hospital": self.hospital,
            "mrn": self.mrn,
            "linked": self.linked,
            "issuedAt": self.issued_at,
            "deadline": self.deadline,
        }


@dataclass(frozen=True)
class ConsentRequestRefusal(TypedMessage):
    """A patient's refusal of one hospital's consent request, sent to that hospital's node."""

    primary_type: ClassVar[str] = "ConsentRequestRefusal"
    patient: str
    requester: str
    request_id: bytes
    deadline: int

    def fields(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "requester": self.requester,
            "requestId": self.request_id,
            "deadline": self.deadline,
        }


@dataclass(frozen=True)
class KeyRotation(ConsentMessage):
    """The account's current key hands the account to ``new_key`` (``patient``: the account)."""

    primary_type: ClassVar[str] = "KeyRotation"
    new_key: str

    def fields(self) -> dict[str, Any]:
        return {"account": self.patient, "newKey": self.new_key, "nonce": self.nonce, "deadline": self.deadline}


@dataclass(frozen=True)
class RecoveryCancellation(ConsentMessage):
    """The account's current key cancels the recovery to ``new_key`` under way (``patient``: the account)."""

    primary_type: ClassVar[str] = "RecoveryCancellation"
    new_key: str

    def fields(self) -> dict[str, Any]:
        return {"account": self.patient, "newKey": self.new_key, "nonce": self.nonce, "deadline": self.deadline}


@dataclass(frozen=True)
class RecoveryApproval(TypedMessage):
    """A guardian approves that ``new_key`` replaces the lost key of ``account``, in recovery round ``round``."""

    primary_type: ClassVar[str] = "RecoveryApproval"
    account: str
    new_key: str
    round: int
    deadline: int

    def fields(self) -> dict[str, Any]:
        return {"account": self.account, "newKey": self.new_key, "round": self.round, "deadline": self.deadline}


@dataclass(frozen=True)
class MinorClaim(TypedMessage):
    """The child, of age, claims ``account`` with ``key`` (which signs this) and says what their guardian may do
    from now on (``guardian_scope``: 0 nothing, 1 view, 2 manage)."""

    primary_type: ClassVar[str] = "MinorClaim"
    account: str
    key: str
    guardian_scope: int
    deadline: int

    def fields(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "key": self.key,
            "guardianScope": self.guardian_scope,
            "deadline": self.deadline,
        }


@dataclass(frozen=True)
class ConsentConfirmation(ConsentMessage):
    """The patient's own key confirms consent ``consent_id``, which a guardian or delegate signed for them."""

    primary_type: ClassVar[str] = "ConsentConfirmation"
    consent_id: int

    def fields(self) -> dict[str, Any]:
        return {"patient": self.patient, "consentId": self.consent_id, "nonce": self.nonce, "deadline": self.deadline}
