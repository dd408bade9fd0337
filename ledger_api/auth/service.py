"""Who is calling: verifies signed member requests and patient sessions. Raises domain errors only."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import urlsplit

import structlog
from sqlalchemy import delete, func
from sqlmodel import Session, col, select

from ledger_api.auth import patient_proof, policy, signing, siwe
from ledger_api.auth.caller import Caller
from ledger_api.auth.models import EndedProof, PatientSession, SiweChallenge
from ledger_api.auth.nonces import nonce_book
from ledger_api.chain.types import MemberStatus, Role
from ledger_api.core.db import as_utc, session_scope
from ledger_api.core.rate_limit import TokenBuckets
from ledger_api.errors import ContractReverted, Forbidden, InvalidValue, TooManyRequests, Unauthenticated
from ledger_api.node import Node

log = structlog.get_logger("medledger.auth")


def now() -> datetime:
    return datetime.now(UTC)


def verify_signed_request(node: Node, *, method: str, path: str, query: str, headers: dict[str, str]) -> Caller:
    """Checks signature, freshness, nonce and the signer's on-chain role and status."""
    try:
        signer, ts, nonce, digest, signature = (
            headers[h] for h in (signing.SIGNER, signing.TIMESTAMP, signing.NONCE, signing.DIGEST, signing.SIGNATURE)
        )
    except KeyError as missing:
        raise Unauthenticated(f"missing signature header {missing.args[0]}", code="signature-header-missing") from None
    if not ts.isdigit() or not (16 <= len(nonce) <= 128) or not all(c in "0123456789abcdef" for c in nonce):
        raise Unauthenticated(
            "malformed timestamp or nonce: the timestamp is unix seconds in digits, the nonce "
            "16 to 128 lowercase hex characters",
            code="signature-header-malformed",
        )
    window = node.settings.auth.signature_window_s
    if abs(now().timestamp() - int(ts)) > window:
        reject("expired", signer)
        raise Unauthenticated(
            f"signature timestamp outside the {window}s window (check the signer's clock)",
            code="signature-outside-window",
        )
    base = signing.signature_base(
        chain_id=node.chain_id,
        audience=node.address,
        method=method,
        path=path,
        query=query,
        digest=digest,
        timestamp=ts,
        nonce=nonce,
    )
    try:
        recovered = signing.recover_signer(base, signature)
    except ValueError as exc:
        reject("malformed-signature", signer)
        raise Unauthenticated(f"malformed signature: {exc}", code="signature-malformed") from None
    if recovered.lower() != signer.lower():
        reject("bad-signature", signer)
        raise Unauthenticated(
            f"signature does not match the signer: this node signs over chain id {node.chain_id} and "
            f"audience {node.address.lower()}; or the request was altered",
            code="signature-mismatch",
        )
    try:
        member, head = node.chain.registry.member_and_head(recovered)
    except ContractReverted:
        reject("unknown-signer", recovered)
        raise Unauthenticated("signer is not a consortium member", code="signer-not-member") from None
    role, status = member.role, member.status
    if status != MemberStatus.ACTIVE:
        reject(f"signer-{status.name.lower()}", recovered)
        raise Forbidden(f"signer's membership is {status.name.lower()}", code="signer-not-active")
    _consume_nonce(node, recovered, nonce, int(ts) + window)
    kind: Literal["member", "auditor"] = "member" if role == Role.MEMBER else "auditor"
    return Caller(kind=kind, address=recovered, local=recovered == node.address, member=member, head_block=head)


def reject(reason: str, signer: str) -> None:
    """Logs why a signed request was refused (an operator's first question; the caller gets the gist)."""
    log.warning("signed_request_rejected", reason=reason, signer=signer)


def _consume_nonce(node: Node, signer: str, nonce: str, valid_until: int) -> None:
    if not nonce_book(node).remember(f"{signer}:{nonce}", datetime.fromtimestamp(valid_until, UTC)):
        reject("replayed", signer)
        raise Unauthenticated(
            "request nonce already used (replay): sign every request with a new nonce", code="signature-replayed"
        )


def purge_expired(node: Node, session: Session) -> None:
    """Drops nonces, sessions and sign-in challenges that can no longer be used."""
    moment = now()
    nonce_book(node).purge(moment)
    for table in (PatientSession, SiweChallenge, EndedProof):
        session.exec(delete(table).where(col(table.expires_at) < moment))


# ----------------------------------------------------------------------------- patients (SIWE)


def create_challenge(node: Node, *, client: str) -> SiweChallenge:
    """A one-time sign-in nonce. Anyone may ask, so each client is rate-limited (before any database
    work) and the node holds a bounded number of outstanding challenges: 429 with Retry-After past either."""
    wait = node.challenge_buckets.take(client)
    if wait > 0:
        raise TooManyRequests(
            "too many sign-in challenges from this client; retry later",
            retry_after_s=TokenBuckets.retry_after(wait),
            code="challenge-rate-limited",
        )
    moment = now()
    with session_scope(node.engine) as session:
        outstanding = session.exec(
            select(func.count())
            .select_from(SiweChallenge)
            .where(col(SiweChallenge.expires_at) > moment, col(SiweChallenge.used).is_(False))
        ).one()
        if outstanding >= node.settings.auth.max_outstanding_challenges:
            oldest = session.exec(
                select(func.min(SiweChallenge.expires_at)).where(col(SiweChallenge.expires_at) > moment)
            ).one()
            wait_s = (as_utc(oldest) - moment).total_seconds() if oldest is not None else 1
            raise TooManyRequests(
                "the node holds too many unanswered sign-in challenges; retry later",
                retry_after_s=TokenBuckets.retry_after(wait_s),
                code="challenge-backlog-full",
            )
    challenge = SiweChallenge(
        nonce=secrets.token_hex(16), expires_at=now() + timedelta(seconds=node.settings.auth.siwe_nonce_ttl_s)
    )
    with session_scope(node.engine) as session:
        session.add(challenge)
    return challenge


def open_session(node: Node, *, message: str, signature: str) -> tuple[str, PatientSession]:
    """Verifies a signed EIP-4361 message and returns a fresh session token (shown once)."""
    try:
        parsed = siwe.parse_message(message)
    except ValueError as exc:
        raise InvalidValue(f"message: {exc}", field="message", code="siwe-message-malformed") from None
    _check_sign_in_policy(node, parsed)
    moment = now()
    try:
        signer = siwe.verify_signature(message, signature)
    except ValueError as exc:
        raise InvalidValue(f"signature: {exc}", field="signature", code="siwe-signature-malformed") from None
    if signer != parsed.address:
        raise Unauthenticated("signature is not by the account named in the message", code="siwe-signature-mismatch")
    account = _account_signed_for(node, signer)
    token = secrets.token_urlsafe(32)
    ttl = node.settings.auth.session_ttl_s
    expires = min(moment + timedelta(seconds=ttl), parsed.expiration or moment + timedelta(seconds=ttl))
    record = PatientSession(
        token_hash=_hash(token),
        patient=account,
        signing_key=signer if signer != account else None,
        created_at=moment,
        expires_at=expires,
    )
    if patient_proof.CONSORTIUM_VIEW in parsed.resources:
        if parsed.uri.rstrip("/") != node.settings.public_url.rstrip("/"):
            raise Unauthenticated(
                f"message is for {parsed.uri!r}, not this node ({node.settings.public_url!r})",
                code="siwe-uri-not-allowed",
            )
        record.sign_in_message, record.sign_in_signature = message, signature
    with session_scope(node.engine) as session:
        challenge = session.get(SiweChallenge, parsed.nonce)
        if challenge is None or challenge.used or challenge.expires_at <= moment:
            raise Unauthenticated(
                "unknown, used or expired sign-in nonce: ask POST /v1/auth/challenge for a new one",
                code="siwe-nonce-unknown",
            )
        challenge.used = True
        session.add(challenge)
        session.add(record)
    return token, record


def _account_signed_for(node: Node, key: str) -> str:
    """The patient account a sign-in key acts as (after a key rotation or recovery, the account it was given);
    a key that was replaced signs in as no one."""
    account = node.chain.consents.account_of(key)
    if account is None:
        raise Unauthenticated(
            "this key was replaced by another (a rotation or recovery): sign in with the account's new key",
            code="key-retired",
        )
    return account


def _check_sign_in_policy(node: Node, parsed: siwe.SiweMessage) -> None:
    """This node's own rules for a well-formed EIP-4361 message (the grammar allows more):

    - the domain is the node's ``auth.siwe_domain``; a scheme, when given, is the public URL's;
    - the chain is the consortium's;
    - the URI is on the node's public origin (scheme, host and port of ``public_url``);
    - Issued At is at most 60 s ahead of the node's clock, Not Before (if any) has passed and
      Expiration Time (if any) has not; the session lasts ``auth.session_ttl_s`` at most, and never past
      the Expiration Time.
    """
    auth, moment = node.settings.auth, now()
    public = urlsplit(node.settings.public_url)
    if parsed.domain != auth.siwe_domain or (parsed.scheme is not None and parsed.scheme != public.scheme):
        shown = f"{parsed.scheme}://{parsed.domain}" if parsed.scheme else parsed.domain
        raise Unauthenticated(f"message is for domain {shown!r}, not {auth.siwe_domain!r}", code="siwe-domain-mismatch")
    if parsed.chain_id != node.chain_id:
        raise Unauthenticated(
            f"message is for chain {parsed.chain_id}, not {node.chain_id}", code="siwe-chain-mismatch"
        )
    uri = urlsplit(parsed.uri)
    if (uri.scheme, uri.netloc) != (public.scheme, public.netloc):
        raise Unauthenticated(
            f"message URI {parsed.uri!r} is not on this node's origin ({public.scheme}://{public.netloc})",
            code="siwe-uri-not-allowed",
        )
    if parsed.expiration is not None and parsed.expiration <= moment:
        raise Unauthenticated("sign-in message expired", code="siwe-expired")
    if parsed.issued_at > moment + timedelta(seconds=60) or (parsed.not_before and parsed.not_before > moment):
        raise Unauthenticated("sign-in message is not valid yet", code="siwe-not-yet-valid")


def resolve_session(node: Node, token: str) -> Caller:
    with session_scope(node.engine) as session:
        record = session.get(PatientSession, _hash(token))
    if record is None or record.expires_at <= now():
        raise Unauthenticated("unknown or expired session", code="session-invalid")
    if _account_signed_for(node, record.signing_key or record.patient) != record.patient:
        raise Unauthenticated(  # the key changed since sign-in: a lost key's session ends with its recovery
            "the key this session signed in with no longer signs for the account: sign in again", code="key-retired"
        )
    proof = None
    if record.sign_in_message and record.sign_in_signature:
        proof = patient_proof.encode(record.sign_in_message, record.sign_in_signature)
    return Caller(kind="patient", address=record.patient, proof=proof)


def resolve_patient_proof(node: Node, presenter: Caller, method: str, value: str) -> Caller:
    """The patient a member's node is asking for, on the strength of the patient's own proof."""
    policy.require(policy.ANOTHER_MEMBER, node, presenter)
    if presenter.member is None:  # a signed member's entry is read with its signature: never the case
        raise Forbidden("only another member's node presents a patient's proof", code="role-not-allowed")
    try:
        proof = patient_proof.verify(chain_id=node.chain_id, presenter=presenter.member, method=method, value=value)
        with session_scope(node.engine) as session:
            if session.get(EndedProof, proof.digest) is not None:
                raise Unauthenticated("the patient signed out: this proof has ended", code="proof-ended")
    except (Unauthenticated, Forbidden) as exc:
        reject(f"patient-proof: {exc.detail}", presenter.address)
        raise
    try:
        account = _account_signed_for(node, proof.patient)
    except Unauthenticated as exc:
        reject(f"patient-proof: {exc.detail}", presenter.address)
        raise
    return Caller(kind="patient", address=account, via=presenter.address)


def end_patient_proof(node: Node, presenter: Caller, value: str) -> None:
    """Records that a proof's session ended, at the word of the member that presented it (and no other)."""
    policy.require(policy.ANOTHER_MEMBER, node, presenter)
    if presenter.member is None:  # a signed member's entry is read with its signature: never the case
        raise Forbidden("only the member a patient signed in at ends that patient's proof", code="role-not-allowed")
    try:
        proof = patient_proof.check(chain_id=node.chain_id, presenter=presenter.member, value=value)
    except Unauthenticated as exc:
        if exc.detail.startswith(patient_proof.MALFORMED):
            raise InvalidValue(f"proof: {exc.detail}", field="proof") from None
        return  # expired, or not signed as it claims: nothing that could still be used, nothing to remember
    with session_scope(node.engine) as session:
        if session.get(EndedProof, proof.digest) is None:
            session.add(EndedProof(digest=proof.digest, expires_at=proof.expires_at))


def session_proof(node: Node, token: str) -> str | None:
    """The consortium-view proof a session carries (to announce its end at sign-out), or None."""
    with session_scope(node.engine) as session:
        record = session.get(PatientSession, _hash(token))
        if record is None or not (record.sign_in_message and record.sign_in_signature):
            return None
        return patient_proof.encode(record.sign_in_message, record.sign_in_signature)


def close_session(node: Node, token: str) -> None:
    with session_scope(node.engine) as session:
        session.exec(delete(PatientSession).where(col(PatientSession.token_hash) == _hash(token)))


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
