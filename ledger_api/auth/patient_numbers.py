"""Which patient a hospital's own number names: ``mrn:<value>`` in a route, resolved at that hospital only.

A hospital's information system knows its patients by medical record number (MRN), not by chain
account. A patient links the two at the registration desk with a statement they sign
(``ledger_api.enrolment``); the link lives in this member's database only. Every route this
hospital's own system calls with a patient account also takes ``mrn:<value>``, resolved here, once,
before anything else reads the patient. Another member (or a patient) cannot use this hospital's
numbers: they are refused the same way whether the number exists or not.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Path, Query
from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel, col, select
from web3 import Web3

from ledger_api.auth.caller import Caller
from ledger_api.core.db import session_scope
from ledger_api.errors import Forbidden, NotFound
from ledger_api.node import Node

MRN_PREFIX = "mrn:"
#: a medical record number: letters, digits and . _ -, up to 64
MRN_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
#: a patient in a path or query: an account, or ``mrn:<this hospital's number>``
PATIENT_REF_PATTERN = rf"^(0x[0-9a-fA-F]{{40}}|mrn:{MRN_PATTERN})$"
PATIENT_REF_DESCRIPTION = (
    "the patient's account (0x…), or, for this hospital's own system only, `mrn:<medical record number>` "
    "as linked at this hospital (POST /v1/patient-links)"
)


class PatientLink(SQLModel, table=True):
    """One patient's link at this hospital. The row stays when the patient removes the link (``mrn``
    empty): it keeps the time of the last statement applied, so an older one cannot be replayed."""

    __tablename__ = "patient_links"
    patient: str = Field(primary_key=True, max_length=42)
    #: unique among linked patients (removed links hold NULL, which never clashes)
    mrn: str | None = Field(default=None, unique=True, max_length=64)
    #: HMAC-SHA256 of the ID card number under this member's own key: for its master patient index only
    id_card_hash: str | None = Field(default=None, index=True, max_length=64)
    #: the last applied statement's ``issuedAt`` (unix ms); a statement must be later
    issued_at: int = Field(sa_type=BigInteger)
    linked_at: datetime | None = None
    removed_at: datetime | None = None
    #: the patient's signature over the last applied statement (the evidence)
    signature: str = Field(max_length=132)


def account_of_mrn(node: Node, mrn: str) -> str | None:
    """The account linked to ``mrn`` at this hospital now, if any."""
    with session_scope(node.engine) as session:
        return session.exec(select(PatientLink.patient).where(col(PatientLink.mrn) == mrn)).first()


def resolve_patient(node: Node, caller: Caller, reference: str) -> str:
    """The account a route's patient reference names: an account as given (checksummed), or the account
    linked to ``mrn:<value>`` when this hospital's own system asks."""
    if not reference.startswith(MRN_PREFIX):
        return Web3.to_checksum_address(reference)
    if not (caller.kind == "member" and caller.local):
        raise Forbidden(
            "mrn: a medical record number names a patient only to the hospital that issued it; "
            "use the patient's account",
            code="mrn-own-system-only",
        )
    mrn = reference.removeprefix(MRN_PREFIX)
    account = account_of_mrn(node, mrn)
    if account is None:
        raise NotFound(f"no patient is linked to MRN {mrn} at this hospital", code="mrn-not-found")
    return account


#: a route's patient, in its path or query: an account, or ``mrn:`` for this hospital's own system
PatientRefPath = Annotated[str, Path(pattern=PATIENT_REF_PATTERN, description=PATIENT_REF_DESCRIPTION)]
PatientRefQuery = Annotated[str, Query(pattern=PATIENT_REF_PATTERN, description=PATIENT_REF_DESCRIPTION)]
