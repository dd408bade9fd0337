"""Patient-signed grants as a relay takes them: the message's fields and its signature, as JSON."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from eth_account.signers.local import LocalAccount
from medledger_crypto import ConsentGrant, sign_typed

from ledger_api.chain.days import day_number
from ledger_api.consents.wire import grant_body, terms_under_notice


def signature_json(signature: tuple[int, bytes, bytes]) -> dict[str, Any]:
    v, r, s = signature
    return {"v": v, "r": r.hex(), "s": s.hex()}


def signed_grant_body(signer: LocalAccount, message: ConsentGrant, *, chain_id: int, contract: str) -> dict[str, Any]:
    """The body of ``POST /v1/consents`` for ``message``, signed by ``signer`` under the consortium's domain."""
    return grant_body(message, sign_typed(signer, message.document(chain_id=chain_id, contract=contract)))


def grant_message(
    patient: str,
    grantee: str | tuple[str, ...],
    *,
    nonce: int,
    deadline: int | None = None,
    lasts_s: int = 3600,
    **terms: Any,
) -> ConsentGrant:
    """A grant naming ``grantee`` (one member, or several) under the built-in privacy notice, valid from a
    minute ago for ``lasts_s`` seconds, to be signed within ``deadline`` (default ten minutes from now);
    ``terms``: categories and purposes (labs, treatment by default), care_from/care_to (day numbers)."""
    now = int(time.time())
    fields = terms_under_notice(
        grantees=(grantee,) if isinstance(grantee, str) else grantee,
        valid_from=now - 60,
        valid_until=now + lasts_s,
        **{"categories": 1, "purposes": 1, **terms},
    )
    return ConsentGrant.of(patient, fields, nonce=nonce, deadline=deadline if deadline is not None else now + 600)


def suggested_grant_message(
    patient: str, suggested: dict[str, Any], *, nonce: int, deadline: int, **changes: Any
) -> ConsentGrant:
    """The grant a consent request suggests (``suggested_grant``, as JSON), as the patient signs it under the
    built-in privacy notice; ``changes``: terms the patient narrows (valid_until, categories, ...)."""
    fields = {k: suggested[k] for k in ("categories", "purposes", "valid_from", "valid_until")}
    days = {
        k: day_number(date.fromisoformat(suggested[k])) if suggested.get(k) else 0 for k in ("care_from", "care_to")
    }
    terms = terms_under_notice(grantees=tuple(suggested["grantees"]), **{**fields, **days, **changes})
    return ConsentGrant.of(patient, terms, nonce=nonce, deadline=deadline)
