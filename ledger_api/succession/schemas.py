"""What the succession routes take and give."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from web3 import Web3

from ledger_api.consents.schemas import Deadline, Nonce, Signature

#: a pseudonymous id of the staff member who checked the patient's identity in person (no name, no ID number)
StaffId = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")


def _address(value: str) -> str:
    if not Web3.is_address(value):
        raise ValueError("not an Ethereum address")
    return Web3.to_checksum_address(value)


class KeyRotationIn(BaseModel):
    """The account's current key signs EIP-712 ``KeyRotation(address account,address newKey,uint256 nonce,
    uint256 deadline)``: from now on ``new_key`` signs for the account (a planned rotation)."""

    new_key: str
    nonce: Nonce
    deadline: Deadline
    signature: Signature

    _check = field_validator("new_key")(_address)


class DeskApprovalIn(BaseModel):
    """This member's desk checked the patient's identity in person and approves that ``new_key`` replaces
    their lost key."""

    new_key: str
    identity_checked_by: str = StaffId

    _check = field_validator("new_key")(_address)


class GuardianApprovalIn(BaseModel):
    """A guardian (a delegate who manages the account) signs EIP-712 ``RecoveryApproval(address account,
    address newKey,uint32 round,uint256 deadline)`` for the recovery round under way."""

    new_key: str
    round: int = Field(ge=1, le=2**32 - 1)
    deadline: Deadline
    signature: Signature

    _check = field_validator("new_key")(_address)


class RecoveryCancellationIn(BaseModel):
    """The account's current key signs EIP-712 ``RecoveryCancellation(address account,address newKey,uint256
    nonce,uint256 deadline)`` naming the key under way."""

    new_key: str
    nonce: Nonce
    deadline: Deadline
    signature: Signature

    _check = field_validator("new_key")(_address)


class MinorIn(BaseModel):
    """A guardian enrols a child at this member's desk: the child's new account (made by the guardian's
    portal or the desk), the guardian's own account, and the child's date of birth from their documents
    (kept here; the chain learns only the first day the child may claim the account)."""

    account: str
    guardian: str
    date_of_birth: date
    identity_checked_by: str = StaffId

    _check = field_validator("account", "guardian")(_address)


class MinorClaimIn(BaseModel):
    """The child, of age and identified in person at this desk, claims the account: their own key signs
    EIP-712 ``MinorClaim(address account,address key,uint8 guardianScope,uint256 deadline)``."""

    key: str
    guardian_scope: Literal["none", "view", "manage"]
    deadline: Deadline
    signature: Signature
    identity_checked_by: str = StaffId

    _check = field_validator("key")(_address)


class RecoveryView(BaseModel):
    """The recovery under way (``new_key`` None: none), its approvals against the threshold, and when it may
    complete (None: the time lock has not started)."""

    new_key: str | None
    round: int
    approvals: int
    threshold: int
    time_lock_s: int
    ready_at: int | None


class SuccessionView(BaseModel):
    """Who signs for the account now, the recovery under way, and, for a minor's account, the first day the
    child may claim it."""

    account: str
    key: str
    recovery: RecoveryView
    minor_until: date | None


class MinorView(BaseModel):
    account: str
    guardian: str
    minor_until: date
