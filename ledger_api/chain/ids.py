"""Identifiers minted off chain whose bytes say whose they are: record ids (their custodian's
account first) and consent ids (their patient's account in the high bits)."""

from __future__ import annotations

import os

from ledger_api.chain.calldata import checksum_address


def mint_record_id(custodian: str) -> bytes:
    """A new record id, owned by ``custodian``: its account's 20 bytes, then 12 random bytes.

    The RecordRegistry lets only that member anchor version 1 of it (no member can take another's
    pending record id); 96 random bits per member keep ids from colliding.
    """
    return bytes.fromhex(checksum_address(custodian)[2:]) + os.urandom(12)


def record_id_minted_by(record_id: bytes) -> str:
    """The member that minted a record id (its first 20 bytes)."""
    return checksum_address("0x" + record_id[:20].hex())


def consent_id_base(patient: str) -> int:
    """Consent ids of ``patient`` are ``base | index``."""
    return int(checksum_address(patient), 16) << 96


def patient_of(consent_id: int) -> str:
    """The patient a consent id belongs to."""
    return checksum_address((consent_id >> 96).to_bytes(20, "big"))
