"""Signed requests between member systems, in the spirit of HTTP Message Signatures (RFC 9421).

Every request from a member system (a hospital's EHR, another member's node, an auditor) carries:

    X-MedLedger-Signer      the signer's account (checksummed address)
    X-MedLedger-Timestamp   unix seconds
    X-MedLedger-Nonce       16+ random bytes, hex; never accepted twice
    X-MedLedger-Content-SHA256  hex SHA-256 of the body
    X-MedLedger-Signature   EIP-191 signature (65 bytes, hex) over the signature base below

Signature base (lines joined by "\\n")::

    MedLedger-Request-v1
    <chain id>
    <audience: the receiving node's member account>
    <METHOD>
    <path>
    <query, pairs sorted, percent-encoded>
    <content sha256>
    <timestamp>
    <nonce>

The chain id and audience stop a request signed for one node or chain from being replayed at
another; the nonce and a short freshness window stop replays at the same node.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Generator
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

SIGNER, TIMESTAMP, NONCE, DIGEST, SIGNATURE = (
    "x-medledger-signer", "x-medledger-timestamp", "x-medledger-nonce", "x-medledger-content-sha256",
    "x-medledger-signature",
)  # fmt: skip
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def canonical_query(query: str) -> str:
    return urlencode(sorted(parse_qsl(query, keep_blank_values=True)))


def signature_base(*, chain_id: int, audience: str, method: str, path: str, query: str, digest: str,
                   timestamp: str, nonce: str) -> str:  # fmt: skip
    return "\n".join(["MedLedger-Request-v1", str(chain_id), audience.lower(), method.upper(), path,
                      canonical_query(query), digest, timestamp, nonce])  # fmt: skip


def sign_headers(account: LocalAccount, *, chain_id: int, audience: str, method: str, url: str,
                 digest: str = EMPTY_SHA256, timestamp: int | None = None,
                 nonce: str | None = None) -> dict[str, str]:  # fmt: skip
    """The headers that authenticate one request."""
    parts = urlsplit(url)
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(16)
    base = signature_base(chain_id=chain_id, audience=audience, method=method, path=parts.path or "/",
                          query=parts.query, digest=digest, timestamp=ts, nonce=nonce)  # fmt: skip
    signature = account.sign_message(encode_defunct(text=base)).signature
    return {SIGNER: account.address, TIMESTAMP: ts, NONCE: nonce, DIGEST: digest, SIGNATURE: signature.hex()}


def recover_signer(base: str, signature_hex: str) -> str:
    """The account that signed ``base``; ``ValueError`` if the signature is malformed."""
    raw = bytes.fromhex(signature_hex.removeprefix("0x"))
    if len(raw) != 65:
        raise ValueError("signature must be 65 bytes")
    try:
        return Account.recover_message(encode_defunct(text=base), signature=raw)
    except Exception as exc:  # noqa: BLE001 - eth-keys' BadSignature (bad v, r or s) is not a ValueError
        raise ValueError(f"not a valid signature ({type(exc).__name__})") from None


@dataclass
class MemberAuth(httpx.Auth):
    """httpx auth that signs every request as a member system (used by EHRs, peers, the CLI, tests)."""

    account: LocalAccount
    chain_id: int
    audience: str
    requires_request_body = True

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        body = request.content
        digest = hashlib.sha256(body).hexdigest()
        request.headers.update(sign_headers(self.account, chain_id=self.chain_id, audience=self.audience,
                                            method=request.method, url=str(request.url), digest=digest))  # fmt: skip
        yield request

