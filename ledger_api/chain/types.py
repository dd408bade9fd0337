"""The chain's vocabulary: enums with the contracts' numbering, the values reads return, and what a
transaction leaves behind. Plain data, importing nothing of the chain layer, so every module above
it (and every domain) names these without pulling in a client or a connection.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Annotated, Any, Literal, cast

from medledger_crypto import GRANT_TERMS
from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

from ledger_api.chain.calldata import checksum_address

# --------------------------------------------------------------------------- enums (as on chain)


class Role(IntEnum):
    NONE = 0
    MEMBER = 1
    AUDITOR = 2


class MemberStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    SUSPENDED = 2
    REMOVED = 3


class ProposalKind(IntEnum):
    ADD_MEMBER = 0
    SUSPEND_MEMBER = 1
    REINSTATE_MEMBER = 2
    REMOVE_MEMBER = 3
    UPDATE_MEMBER_KEYS = 4


class ProposalState(IntEnum):
    NONE = 0
    PENDING = 1
    APPROVED = 2
    DEFEATED = 3
    EXPIRED = 4
    EXECUTED = 5


class ConsentState(IntEnum):
    NONE = 0
    ACTIVE = 1
    REVOKED = 2


class DelegateScope(IntEnum):
    """What a delegate (guardian) may do for the patient: nothing (removed), view the patient's records,
    consents and history, or also manage them (grant, revoke, restrict, hide, answer requests)."""

    NONE = 0
    VIEW = 1
    MANAGE = 2

    @property
    def label(self) -> Literal["none", "view", "manage"]:
        return cast(Literal["none", "view", "manage"], self.name.lower())


#: a review's one name off chain
ReviewLabel = Literal["pending", "justified", "not-justified"]


class Review(IntEnum):
    """An auditor's review of a break-glass declaration; ``label`` is its one name off chain."""

    PENDING = 0
    JUSTIFIED = 1
    NOT_JUSTIFIED = 2

    @property
    def label(self) -> ReviewLabel:
        """``pending``, ``justified`` or ``not-justified``: the word every API, page and notification uses."""
        return cast(ReviewLabel, self.name.lower().replace("_", "-"))


# --------------------------------------------------------------------------- models


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class Member(_Model):
    """A consortium member as the registry holds it."""

    account: str
    index: int
    role: Role
    status: MemberStatus
    key_version: int
    joined_at: int
    name: str
    endpoint: str
    hpke_public_key: bytes


class GenesisMember(_Model):
    """A founding member, fixed at deployment."""

    account: str
    role: Role
    name: str
    endpoint: str
    hpke_public_key: bytes


class Proposal(_Model):
    kind: ProposalKind
    target: str
    proposer: str
    created_at: int
    expires_at: int
    approvals: int
    rejections: int
    executed: bool
    payload: bytes


class Consent(_Model):
    """A consent as stored (expiry is derived from ``valid_until``, not stored). ``grantees``: the members
    it names, in consortium order; ``care_from``/``care_to``: days of care covered (``chain.days``, 0 = open)."""

    consent_id: int
    patient: str
    grantees: tuple[str, ...]
    categories: int
    purposes: int
    state: ConsentState
    valid_from: int
    valid_until: int
    care_from: int = 0
    care_to: int = 0

    def names(self, member: str) -> bool:
        """Whether the consent names ``member`` as a recipient."""
        return member.lower() in {g.lower() for g in self.grantees}


class Delegation(_Model):
    """A delegate's standing with one patient as stored: ``scope``, the second it ends (``valid_until``, 0:
    until removed) and the record categories kept from them (``excluded_categories``, a bit set)."""

    delegate: str
    scope: DelegateScope
    valid_until: int = 0
    excluded_categories: int = 0

    def live(self, now: int) -> bool:
        """Whether the delegation stands at ``now`` (seconds): appointed and not ended."""
        return self.scope != DelegateScope.NONE and (self.valid_until == 0 or now < self.valid_until)

    @classmethod
    def of_event(cls, args: Any) -> Delegation:
        """The delegation a ``DelegateChanged`` event states (its ``delegate``, ``scope``, ``validUntil`` and
        ``excludedCategories``)."""
        return cls(
            delegate=checksum_address(args["delegate"]),
            scope=DelegateScope(args["scope"]),
            valid_until=args["validUntil"],
            excluded_categories=args["excludedCategories"],
        )

    def as_tuple(self) -> tuple[int, int, int]:
        return (int(self.scope), self.valid_until, self.excluded_categories)


class Succession(IntEnum):
    """How a patient account's key changed (``KeyRotated``)."""

    NONE = 0
    ROTATION = 1
    RECOVERY = 2
    MINOR_CLAIM = 3


class Recovery(_Model):
    """A recovery of a lost key under way (``new_key`` None: none): its round, the approvals counted and,
    once enough, the second from which it may complete (0: the time lock has not started)."""

    new_key: str | None
    round: int
    approvals: int
    ready_at: int


def _bytes_from_hex(value: Any) -> Any:
    return bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else value


#: 32 bytes, kept as hex in JSON (an outbox payload, a view)
Bytes32 = Annotated[
    bytes, BeforeValidator(_bytes_from_hex), PlainSerializer(lambda b: b.hex(), return_type=str, when_used="json")
]


class GrantTerms(_Model):
    """What a patient grants: the members named (each active at signing), scope, window, the days of care
    covered (``chain.days``; 0 = open end) and the privacy notice shown before signing (version, SHA-256)."""

    grantees: tuple[str, ...]
    categories: int
    purposes: int
    valid_from: int
    valid_until: int
    care_from: int = 0
    care_to: int = 0
    notice_version: int
    notice_hash: Bytes32

    def packed(self) -> int:
        """All but the grantees and the notice hash in the one word the contract takes and its
        ``ConsentGranted`` event states (``IConsentRegistry``, "A grant's terms"). Raises ``ValueError``
        for a field wider than the signed message's type."""
        word = 0
        for name, (shift, bits) in TERMS_LAYOUT.items():
            value = getattr(self, name)
            if not 0 <= value < 1 << bits:
                raise ValueError(f"{name} does not fit in {bits} bits: {value}")
            word |= value << shift
        return word

    @classmethod
    def unpacked(cls, grantees: tuple[str, ...], terms: int, notice_hash: bytes) -> GrantTerms:
        """The terms a ``ConsentGranted`` event states (its ``terms`` word and ``noticeHash``), with the
        members its ``recipients`` name."""
        fields = {name: (terms >> shift) & ((1 << bits) - 1) for name, (shift, bits) in TERMS_LAYOUT.items()}
        return cls(grantees=grantees, notice_hash=bytes(notice_hash), **fields)

    @classmethod
    def of(cls, source: Any) -> GrantTerms:
        """The terms of anything that states them under these names (a signed grant, a request, a view)."""
        return cls(**{name: getattr(source, name) for name in GRANT_TERM_FIELDS})


#: where each term sits in the contract's ``terms`` word: field -> (lowest bit, width); bits 24-31 stay zero
#: (a stored consent keeps its state there)
TERMS_LAYOUT = {
    "categories": (0, 16),
    "purposes": (16, 8),
    "valid_from": (32, 32),
    "valid_until": (64, 32),
    "care_from": (96, 16),
    "care_to": (112, 16),
    "notice_version": (128, 16),
}


def member_indices(recipients: int) -> list[int]:
    """The consortium indexes a consent's recipient set names (bit i: the member at index i), in order."""
    return [index for index in range(recipients.bit_length()) if recipients >> index & 1]


#: the terms of a consent, as every model of one names them (in the order of the EIP-712 ``ConsentGrant``'s
#: fields): the signed message's own list
GRANT_TERM_FIELDS = GRANT_TERMS


class BreakGlass(_Model):
    break_glass_id: int
    member: str
    declared_at: int
    expires_at: int
    review: Review
    patient: str
    justification_hash: bytes
    review_reason_hash: bytes


class RecordInfo(_Model):
    """A record's anchor: its custodian, its subject commitment (see ``chain.commitments``) and versions."""

    custodian: str
    subject: bytes
    latest_version: int


# --------------------------------------------------------------------------- transactions


class DecodedEvent(BaseModel):
    """One event log decoded with the emitting contract's ABI."""

    model_config = ConfigDict(frozen=True)
    name: str
    address: str
    args: dict[str, Any]
    log_index: int


class Receipt(BaseModel):
    """What a mined, successful transaction left behind."""

    model_config = ConfigDict(frozen=True)
    tx_hash: str
    block_number: int
    block_hash: str
    gas_used: int
    contract_address: str | None = None
    events: list[DecodedEvent] = []

    def event(self, name: str) -> DecodedEvent:
        """The first event called ``name``; ``KeyError`` if the transaction emitted none."""
        for event in self.events:
            if event.name == name:
                return event
        raise KeyError(f"no {name} event in {self.tx_hash}")


class PreparedTransaction(BaseModel):
    """A signed transaction not yet (or not surely) broadcast: store it, then send it, any number of times."""

    model_config = ConfigDict(frozen=True)
    raw: str
    tx_hash: str
    nonce: int
