"""What the consent routes take and give: signatures, the three signed messages' fields, and views."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator
from web3 import Web3

from ledger_api.auth.signing import is_high_s
from ledger_api.chain.consent_registry import AccountEventKind
from ledger_api.chain.days import LAST_DAY, countable, day_number, day_of
from ledger_api.chain.types import DelegateScope, Delegation, GrantTerms
from ledger_api.errors import InvalidValue


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


def packed_signature(signature: Signature) -> bytes:
    """The signature as Ethereum tools print one, r || s || v (65 bytes), after ``signature_parts``'s checks:
    how a signed request is kept as evidence, and what its digest in the access trail is taken over."""
    v, r, s = signature_parts(signature)
    return r + s + bytes([v])


#: at most this many members named in one grant (the contract's recipient set has 128 places)
MAX_GRANTEES = 128


class GrantIn(BaseModel):
    """A patient-signed grant to relay: EIP-712 ``ConsentGrant(address patient,address[] grantees,uint16
    categories,uint8 purposes,uint32 validFrom,uint32 validUntil,uint16 careFrom,uint16 careTo,uint16
    noticeVersion,bytes32 noticeHash,uint256 nonce,uint256 deadline)``.

    ``grantees`` names every member the grant is for, each active now ("every member" = the list of
    ``GET /v1/consortium/members`` with role member and status active: a member that joins later is not
    covered). ``care_from``/``care_to`` limit it to records about care on those days (inclusive; signed as
    days since 1970-01-01, 0 for an open end). ``notice_version``/``notice_hash`` are the privacy notice the
    patient was shown (``GET /v1/privacy-notice``)."""

    patient: str
    grantees: list[str] = Field(min_length=1, max_length=MAX_GRANTEES)
    categories: int = Field(ge=1, le=0xFFFF)
    purposes: int = Field(ge=1, le=0xFF)
    valid_from: int = Field(ge=0, lt=2**32)
    valid_until: int = Field(ge=1, lt=2**32)
    care_from: date | None = Field(default=None, description="first day of care covered (none: no lower end)")
    care_to: date | None = Field(default=None, description="last day of care covered (none: no upper end)")
    notice_version: int = Field(ge=1, le=0xFFFF)
    notice_hash: str = Field(pattern=r"^(0x)?[0-9a-fA-F]{64}$", description="SHA-256 of the notice shown, hex")
    nonce: Nonce
    deadline: Deadline
    signature: Signature

    _check_patient = field_validator("patient")(_address)

    @field_validator("care_from", "care_to")
    @classmethod
    def _countable(cls, value: date | None) -> date | None:
        if value is not None and not countable(value):
            raise ValueError(f"a day of care from 1970-01-02 to {LAST_DAY.isoformat()}")
        return value

    @field_validator("grantees")
    @classmethod
    def _named_once(cls, value: list[str]) -> list[str]:
        named = [_address(g) for g in value]
        if len({g.lower() for g in named}) != len(named):
            raise ValueError("a member is named twice")
        return named

    def terms(self) -> GrantTerms:
        """The terms as the chain takes them (days of care as day numbers)."""
        return GrantTerms(
            grantees=tuple(self.grantees),
            categories=self.categories,
            purposes=self.purposes,
            valid_from=self.valid_from,
            valid_until=self.valid_until,
            care_from=day_number(self.care_from),
            care_to=day_number(self.care_to),
            notice_version=self.notice_version,
            notice_hash=bytes.fromhex(self.notice_hash.removeprefix("0x")),
        )


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


#: what a delegate may do, by name (the contract's ``scope`` numbers: none 0, view 1, manage 2)
DelegateScopeName = Literal["none", "view", "manage"]


class DelegationIn(BaseModel):
    """A patient-signed ``DelegateChange``: appoint a delegate (guardian), change what they may do, or remove
    them (``scope`` none, with no end and no exclusions)."""

    patient: str
    delegate: str
    scope: DelegateScopeName = Field(
        description="view: the patient's records, consents and history; manage: also grant, revoke, restrict, "
        "hide and answer requests; none: remove the delegate"
    )
    valid_until: int = Field(
        default=0, ge=0, le=2**32 - 1, description="Unix seconds when the delegation ends; 0: until removed"
    )
    excluded_categories: int = Field(
        default=0,
        ge=0,
        le=0xFFFF,
        description="bit set of record categories the delegate may neither see nor decide on (bit i = category i)",
    )
    nonce: Nonce
    deadline: Deadline
    signature: Signature

    _check = field_validator("patient", "delegate")(_address)

    def delegate_scope(self) -> DelegateScope:
        return DelegateScope[self.scope.upper()]

    def terms(self) -> Delegation:
        return Delegation(
            delegate=self.delegate,
            scope=self.delegate_scope(),
            valid_until=self.valid_until,
            excluded_categories=self.excluded_categories,
        )


class DelegateView(BaseModel):
    """One delegate now: what they may do, until when (0: until removed), and the categories kept from them."""

    delegate: str
    scope: Literal["view", "manage"]
    valid_until: int
    excluded_categories: int

    @classmethod
    def of(cls, delegation: Delegation) -> DelegateView:
        return cls(
            delegate=delegation.delegate,
            scope="manage" if delegation.scope == DelegateScope.MANAGE else "view",
            valid_until=delegation.valid_until,
            excluded_categories=delegation.excluded_categories,
        )


class SharingRestrictionIn(BaseModel):
    """A patient-signed ``SharingRestriction``: restrict (or lift) the sharing of all their records."""

    restricted: bool
    nonce: Nonce
    deadline: Deadline
    signature: Signature


class SharingRestrictionView(BaseModel):
    """Whether the patient's records are restricted now (on chain); ``pending``: a change on its way."""

    patient: str
    restricted: bool
    pending: bool


class ConsentView(BaseModel):
    """A consent: the members it names, its scope and window, the days of care it covers (none: open), and
    the privacy notice the patient was shown when signing it (from the grant's event; none if not read)."""

    consent_id: str
    patient: str
    grantees: list[str]
    categories: int
    purposes: int
    valid_from: int
    valid_until: int
    care_from: date | None = None
    care_to: date | None = None
    notice_version: int | None = None
    notice_hash: str | None = None
    status: Literal["active", "not-yet-valid", "expired", "revoked", "pending"]
    #: shown to the patient's side only: signed by a delegate (a guardian, while the patient was a minor), and
    #: whether the patient's own key confirmed it since (POST /v1/consents/confirmations)
    given_by_delegate: bool = False
    confirmed: bool = False

    @classmethod
    def of(
        cls, consent_id: str, patient: str, terms: Any, status: str, notice: tuple[int, bytes] | None = None
    ) -> ConsentView:
        """The view of a consent whose terms ``terms`` states (the chain's consent, a pending relay's terms);
        ``notice``: the version and hash its grant carried, when ``terms`` does not."""
        version = getattr(terms, "notice_version", None)
        digest = getattr(terms, "notice_hash", None)
        if version is None and notice is not None:
            version, digest = notice
        return cls(
            consent_id=consent_id,
            patient=patient,
            status=status,
            grantees=list(terms.grantees),
            categories=terms.categories,
            purposes=terms.purposes,
            valid_from=terms.valid_from,
            valid_until=terms.valid_until,
            care_from=day_of(terms.care_from),
            care_to=day_of(terms.care_to),
            notice_version=version,
            notice_hash=digest if isinstance(digest, str | None) else bytes(digest).hex(),
        )


class PermissionView(BaseModel):
    patient: str
    requester: str
    category: int
    purpose: int
    permitted: bool
    consent_id: str | None
    break_glass_id: str | None


def consent_status(*, revoked: bool, valid_from: int, valid_until: int, now: int) -> str:
    """A consent's status at ``now`` (unix seconds), as the contract judges it."""
    if revoked:
        return "revoked"
    if now >= valid_until:
        return "expired"
    return "not-yet-valid" if now < valid_from else "active"


class AccountChangeView(BaseModel):
    """One change to the patient's account (consents, delegates, restriction, keys), when it took effect on chain
    and who made it (``by``; ``signer``: the key that signed, a delegate's or the patient's own)."""

    kind: AccountEventKind
    at: int = Field(description="Unix seconds: the time of the block that recorded it")
    block: int
    signer: str
    by: Literal["patient", "delegate", "consortium"] = Field(
        description="the patient (any key that signed for the account then), a delegate, or the consortium's "
        "members (a recovery they approved, a minor's registration)"
    )
    consent_id: str | None = None
    delegate: DelegateView | None = Field(
        default=None, description="a delegate change: the delegation as it then stood (scope none: removed)"
    )
    delegate_removed: str | None = Field(default=None, description="a removal: the delegate removed")
    restricted: bool | None = None
    new_key: str | None = Field(default=None, description="a key change or recovery: the key that signs from then on")
    how: Literal["rotation", "recovery", "minor-claim"] | None = None
    ready_at: int | None = Field(default=None, description="a recovery: when it may complete (Unix seconds)")


class DelegationOfMine(BaseModel):
    """An account the caller is a delegate of now, and what they may do for it; ``minor_until``: a child's
    account the caller holds as guardian until that day."""

    patient: str
    scope: Literal["view", "manage"]
    valid_until: int
    excluded_categories: int
    minor_until: date | None = None
