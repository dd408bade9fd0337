"""Signed requests between member systems, in the spirit of HTTP Message Signatures (RFC 9421).

The normative description, byte by byte, with the error for each failure, is
``docs/request-signature.md``; ``docs/request-signature-vectors.json`` holds test vectors that this
module and the JavaScript signer (``clients/js/medledger-signer.mjs``) are both tested against.
In short, five headers (``X-MedLedger-Signer``, ``-Timestamp``, ``-Nonce``, ``-Content-SHA256``,
``-Signature``) carry an EIP-191 signature over nine lines::

    MedLedger-Request-v1
    <chain id>
    <audience: the receiving node's member account, lowercase>
    <METHOD>
    <path>
    <query: pairs percent-decoded, sorted, re-encoded>
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

from ledger_api.core import headers as header_names

#: the signed-request headers, lower-cased as the signature base spells them
SIGNER, TIMESTAMP, NONCE, DIGEST, SIGNATURE = (
    name.lower()
    for name in (
        header_names.SIGNER,
        header_names.TIMESTAMP,
        header_names.NONCE,
        header_names.CONTENT_SHA256,
        header_names.SIGNATURE,
    )
)
SIGNATURE_HEADERS = (SIGNER, TIMESTAMP, NONCE, DIGEST, SIGNATURE)
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def canonical_query(query: str) -> str:
    return urlencode(sorted(parse_qsl(query, keep_blank_values=True)))


def signature_base(
    *, chain_id: int, audience: str, method: str, path: str, query: str, digest: str, timestamp: str, nonce: str
) -> str:
    return "\n".join(
        [
            "MedLedger-Request-v1",
            str(chain_id),
            audience.lower(),
            method.upper(),
            path,
            canonical_query(query),
            digest,
            timestamp,
            nonce,
        ]
    )


def sign_headers(
    account: LocalAccount,
    *,
    chain_id: int,
    audience: str,
    method: str,
    url: str,
    digest: str = EMPTY_SHA256,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The headers that authenticate one request."""
    parts = urlsplit(url)
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or secrets.token_hex(16)
    base = signature_base(
        chain_id=chain_id,
        audience=audience,
        method=method,
        path=parts.path or "/",
        query=parts.query,
        digest=digest,
        timestamp=ts,
        nonce=nonce,
    )
    signature = account.sign_message(encode_defunct(text=base)).signature
    return {SIGNER: account.address, TIMESTAMP: ts, NONCE: nonce, DIGEST: digest, SIGNATURE: signature.hex()}


SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HEX = frozenset("0123456789abcdefABCDEF")


def is_high_s(s: bytes) -> bool:
    """Is ``s`` in the upper half of the curve order? EIP-2 (and our contracts) refuse such signatures."""
    return int.from_bytes(s, "big") > SECP256K1_N // 2


def signature_bytes(signature_hex: str) -> bytes:
    """65 bytes r || s || v from hex (``0x`` optional); ``ValueError`` naming what is wrong.

    ``v`` may be 27/28 (what wallets and ethers produce) or 0/1 (the recovery id alone). ``s`` must be
    in the lower half of the curve order (EIP-2): the other half is the same signature mirrored,
    and accepting both would give one request two valid encodings.
    """
    text = signature_hex.removeprefix("0x")
    if len(text) != 130 or not set(text) <= _HEX:
        raise ValueError("signature must be 65 bytes as 130 hex characters")
    raw = bytes.fromhex(text)
    if raw[64] not in (0, 1, 27, 28):
        raise ValueError("signature v must be 27, 28, 0 or 1")
    if is_high_s(raw[32:64]):
        raise ValueError("signature s is in the upper half of the curve order (EIP-2 forbids it)")
    return raw


def recover_signer(base: str, signature_hex: str) -> str:
    """The account that signed ``base``; ``ValueError`` if the signature is malformed."""
    raw = signature_bytes(signature_hex)
    try:
        return str(Account.recover_message(encode_defunct(text=base), signature=raw))
    except Exception as exc:
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
        request.headers.update(
            sign_headers(
                self.account,
                chain_id=self.chain_id,
                audience=self.audience,
                method=request.method,
                url=str(request.url),
                digest=digest,
            )
        )
        yield request
