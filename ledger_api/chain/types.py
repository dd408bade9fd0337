"""The chain's vocabulary: enums with the contracts' numbering, the values reads return, and what a
transaction leaves behind. Plain data, importing nothing of the chain layer, so every module above
it (and every domain) names these without pulling in a client or a connection.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict

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
    """A consent as stored (expiry is derived from ``valid_until``, not stored)."""

    consent_id: int
    patient: str
    grantee: str
    categories: int
    purposes: int
    state: ConsentState
    valid_from: int
    valid_until: int


class GrantTerms(_Model):
    """What a patient grants; ``grantee`` = ``ANY_MEMBER`` for every active member."""

    grantee: str
    categories: int
    purposes: int
    valid_from: int
    valid_until: int

    def as_tuple(self) -> tuple[str, int, int, int, int]:
        return (self.grantee, self.categories, self.purposes, self.valid_from, self.valid_until)

    @classmethod
    def of(cls, source: Any) -> GrantTerms:
        """The terms of anything that states them under these names (a signed grant, a request, a view)."""
        return cls(**{name: getattr(source, name) for name in GRANT_TERM_FIELDS})


#: the five terms of a consent, as every model of one names them
GRANT_TERM_FIELDS = ("grantee", "categories", "purposes", "valid_from", "valid_until")


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
