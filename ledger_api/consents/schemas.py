"""What the consent routes take and give: signatures, the three signed messages' fields, and views."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator
from web3 import Web3

from ledger_api.auth.signing import is_high_s
from ledger_api.chain.types import GRANT_TERM_FIELDS
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
    consent_id: str
    patient: str
    grantee: str
    categories: int
    purposes: int
    valid_from: int
    valid_until: int
    status: Literal["active", "not-yet-valid", "expired", "revoked", "pending"]

    @classmethod
    def of(cls, consent_id: str, patient: str, terms: Any, status: str) -> ConsentView:
        """The view of a consent whose terms ``terms`` states (the chain's consent, an event, a pending relay)."""
        return cls(
            consent_id=consent_id,
            patient=patient,
            status=status,
            **{name: getattr(terms, name) for name in GRANT_TERM_FIELDS},
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
