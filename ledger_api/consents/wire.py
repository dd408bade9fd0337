"""A signed grant as ``POST /v1/consents`` takes it: for clients written in Python (the CLI, benchmarks,
tests), so each builds the body from the same signed message instead of its own copy of the field list."""

from __future__ import annotations

from typing import Any

from medledger_crypto import ConsentGrant

from ledger_api.chain.days import day_iso
from ledger_api.chain.types import GrantTerms
from ledger_api.notice import service as privacy_notice


def terms_under_notice(directory: Any = None, **fields: Any) -> GrantTerms:
    """Grant terms signed under the privacy notice in force (``directory``: the consortium's notice texts,
    as the node's settings ``privacy_notice_dir``; none: the built-in notice)."""
    notice = privacy_notice.current(directory)
    return GrantTerms(notice_version=notice.version, notice_hash=notice.sha256, **fields)


def grant_body(message: ConsentGrant, signature: tuple[int, bytes, bytes]) -> dict[str, Any]:
    """The JSON body relaying ``message`` with its ``signature`` (v, r, s)."""
    v, r, s = signature
    return {
        "patient": message.patient,
        "grantees": list(message.grantees),
        "categories": message.categories,
        "purposes": message.purposes,
        "valid_from": message.valid_from,
        "valid_until": message.valid_until,
        "care_from": day_iso(message.care_from),
        "care_to": day_iso(message.care_to),
        "notice_version": message.notice_version,
        "notice_hash": message.notice_hash.hex(),
        "nonce": message.nonce,
        "deadline": message.deadline,
        "signature": {"v": v, "r": r.hex(), "s": s.hex()},
    }
