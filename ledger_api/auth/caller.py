"""Who is calling: what authentication established, and what every rule (``auth.policy``) reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ledger_api.chain.types import Member


@dataclass(frozen=True)
class Caller:
    """An authenticated caller. ``local``: the member system of this very node's hospital.

    ``member`` is the registry entry read from the chain for this very request (members and
    auditors), so later checks in the same request need not read it again.
    """

    kind: Literal["member", "auditor", "patient"]
    address: str
    local: bool = False
    member: Member | None = None
    #: a patient reached through another member's node: that member's account (see ``patient_proof``)
    via: str | None = None
    #: a patient session's consortium-view proof, forwarded when this node asks the other members
    proof: str | None = None
    #: the chain's latest block when the signer's membership was read (a release reads its
    #: authorisation at this block and logs it: one round trip fewer than asking again)
    head_block: int | None = None
