#!/usr/bin/env python3
"""Writes docs/request-signature-vectors.json: test vectors for docs/request-signature.md.

Run once when the scheme changes (never to make a failing test pass): the vectors are the
specification's examples, and both implementations (Python, clients/js) are tested against the file.
The keys are test keys derived from public strings; never use them for anything else.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from eth_account import Account
from eth_account.messages import _hash_eip191_message, encode_defunct
from eth_utils import keccak

from ledger_api.auth.signing import SIGNATURE, canonical_query, sign_headers, signature_base

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "request-signature-vectors.json"
KEY_1 = keccak(text="medledger request-signature test vector key 1")
KEY_2 = keccak(text="medledger request-signature test vector key 2")
AUDIENCE = Account.from_key(keccak(text="medledger request-signature test vector audience")).address
RECORD = "5f" * 32
CASES = [
    ("get-without-query", KEY_1, 1337, "GET", "http://node.example:8601/v1/consortium/members", b""),
    (
        "get-with-query-sorted",
        KEY_1,
        1337,
        "GET",
        f"http://node.example:8601/v1/records/{RECORD}/content?purpose=treatment&clinician=dr.li%40ward-3&version=2",
        b"",
    ),
    (
        "query-space-plus-and-unicode",
        KEY_2,
        20_241_129,
        "GET",
        "https://hospital.example/v1/permissions?name=%E6%9D%8E%E5%9B%9B&q=a+b&c=x%20y",
        b"",
    ),
    (
        "query-reserved-characters",
        KEY_2,
        1337,
        "GET",
        "http://node.example:8601/v1/access-log?x=%2F%3F%26%3D%25&tilde=~&star=*&paren=()",
        b"",
    ),
    (
        "query-key-without-value-and-literal-percent",
        KEY_1,
        1337,
        "GET",
        "http://node.example:8601/v1/access-log?b&a=%zz&a=",
        b"",
    ),
    (
        "query-names-sort-by-code-point",
        KEY_1,
        1337,
        "GET",
        "http://node.example:8601/v1/access-log?%C3%A9=1&z=2&Z=3&_=4",
        b"",
    ),
    (
        "post-json-body",
        KEY_1,
        1337,
        "POST",
        "http://node.example:8601/v1/consents",
        json.dumps({"patient": "0x" + "ab" * 20, "nonce": 0}, separators=(",", ":")).encode(),
    ),
    ("post-without-body", KEY_2, 1337, "POST", "http://node.example:8601/v1/governance/proposals/3/execution", b""),
    (
        "put-binary-body",
        KEY_2,
        1337,
        "PUT",
        f"http://node.example:8601/v1/incoming/{RECORD}/versions/1",
        bytes(range(256)),
    ),
    ("lowercase-method-is-upper-cased", KEY_1, 1, "delete", f"http://node.example:8601/v1/records/{RECORD}", b""),
]
REFUSED = [
    ("missing-header", "X-MedLedger-Nonce left out", 401, "signature-header-missing"),
    ("nonce-upper-case", "the nonce in upper-case hex", 401, "signature-header-malformed"),
    ("timestamp-too-old", "signed 10 minutes ago (window 60 s)", 401, "signature-outside-window"),
    ("signature-high-s", "the same signature with s replaced by n - s and v flipped", 401, "signature-malformed"),
    ("signature-bad-v", "v = 29", 401, "signature-malformed"),
    ("wrong-chain-id", "signed for another chain id", 401, "signature-mismatch"),
    ("wrong-audience", "signed for another node's account", 401, "signature-mismatch"),
    ("query-altered", "a query value changed after signing", 401, "signature-mismatch"),
    ("unknown-signer", "signed by a key that is no member", 401, "signer-not-member"),
    ("replayed", "the same request sent twice", 401, "signature-replayed"),
    ("body-altered", "a body that does not hash to X-MedLedger-Content-SHA256", 401, "body-digest-mismatch"),
    ("query-repeated-key", "a query key given twice", 400, "query-repeated-key"),
    ("query-not-utf8", "a query value that percent-decodes to bytes that are not UTF-8", 400, "query-not-utf8"),
]


def vector(name: str, key: bytes, chain_id: int, method: str, url: str, body: bytes) -> dict:
    import hashlib

    account = Account.from_key(key)
    timestamp, nonce = 1_780_000_000, keccak(text=name)[:16].hex()
    digest = hashlib.sha256(body).hexdigest()
    parts = urlsplit(url)
    base = signature_base(
        chain_id=chain_id,
        audience=AUDIENCE,
        method=method,
        path=parts.path,
        query=parts.query,
        digest=digest,
        timestamp=str(timestamp),
        nonce=nonce,
    )
    headers = sign_headers(
        account,
        chain_id=chain_id,
        audience=AUDIENCE,
        method=method,
        url=url,
        digest=digest,
        timestamp=timestamp,
        nonce=nonce,
    )
    return {
        "name": name,
        "private_key": "0x" + key.hex(),
        "chain_id": chain_id,
        "audience": AUDIENCE,
        "method": method,
        "url": url,
        "body_hex": body.hex(),
        "timestamp": str(timestamp),
        "nonce": nonce,
        "expected": {
            "canonical_query": canonical_query(parts.query),
            "content_sha256": digest,
            "signature_base": base,
            "digest": "0x" + _hash_eip191_message(encode_defunct(text=base)).hex(),
            "signature": "0x" + headers[SIGNATURE].removeprefix("0x"),
            "signer": account.address,
        },
    }


def main() -> None:
    document = {
        "description": "Test vectors for MedLedger signed member requests, docs/request-signature.md. The keys are "
        "public test keys.",
        "version": "MedLedger-Request-v1",
        "valid": [vector(*case) for case in CASES],
        "refused": [{"name": n, "change": c, "status": s, "code": code} for n, c, s, code in REFUSED],
    }
    OUT.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}: {len(CASES)} valid, {len(REFUSED)} refused")


if __name__ == "__main__":
    main()
