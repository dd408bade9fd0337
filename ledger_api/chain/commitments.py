"""Salted commitments: how the chain binds what it must not show in clear.

A record anchor names neither its patient nor its category: it carries ``subject``, the first 24
bytes of the EIP-712 ``hashStruct`` of ``RecordSubject(recordId, patient, category, encounterDay, salt)``
(the RecordRegistry's ``subjectCommitment`` computes the same, and so does ethers'
``TypedDataEncoder.hashStruct``). The 32-byte salt is random per record and kept off chain with
the record; the custodian, the patient and auditors hold it and can open the anchor. Without it,
trying every known account and all 16 categories finds nothing, and two records of one patient
carry unrelated commitments. The day of care (``encounterDay``, see ``chain.days``) is bound too, so a
consent limited to "this episode" is checked against a day the custodian cannot change afterwards.

A break-glass declaration's coded reason and justification stay with the declaring member, bound
the same way (SHA-256 over a salt and the canonical JSON of both), as is an auditor's review reason.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os

from eth_abi import encode as abi_encode
from eth_utils import keccak

from ledger_api.chain.calldata import checksum_address

SUBJECT_TYPE = "RecordSubject(bytes32 recordId,address patient,uint16 category,uint16 encounterDay,bytes32 salt)"
SUBJECT_TYPEHASH = keccak(text=SUBJECT_TYPE)
SALT_BYTES = 32
SUBJECT_BYTES = 24


def new_salt() -> bytes:
    """A fresh random salt (one per record, per declaration, per review)."""
    return os.urandom(SALT_BYTES)


def record_subject(record_id: bytes, patient: str, category: int, salt: bytes, encounter_day: int = 0) -> bytes:
    """The 24-byte commitment a record's anchor carries instead of its patient, category and day of care
    (``encounter_day``, see ``chain.days``; 0 = not stated, which no care-limited consent covers)."""
    if len(record_id) != 32 or len(salt) != SALT_BYTES or not 0 <= category < 16 or not 0 <= encounter_day <= 0xFFFF:
        raise ValueError(
            "a record subject takes a 32-byte record id, a category below 16, a day of care and a 32-byte salt"
        )
    encoded = abi_encode(
        ["bytes32", "bytes32", "address", "uint16", "uint16", "bytes32"],
        [SUBJECT_TYPEHASH, record_id, checksum_address(patient), category, encounter_day, salt],
    )
    return keccak(encoded)[:SUBJECT_BYTES]


def opens(subject: bytes, record_id: bytes, patient: str, category: int, salt: bytes, encounter_day: int = 0) -> bool:
    """Whether ``(patient, category, day, salt)`` opens the anchored ``subject`` of ``record_id``."""
    try:
        return hmac.compare_digest(record_subject(record_id, patient, category, salt, encounter_day), bytes(subject))
    except ValueError:
        return False


def statement_commitment(salt: bytes, statement: dict[str, object]) -> bytes:
    """SHA-256 of a salt and the canonical JSON (sorted keys, no spaces) of a statement kept off chain:
    a break-glass declaration's reason and justification, or an auditor's review reason."""
    canonical = json.dumps(statement, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(salt + canonical.encode()).digest()
