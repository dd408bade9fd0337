"""Sign-In with Ethereum (EIP-4361) for patients, verified with eth-account directly.

Why not the ``siwe`` package: it pins web3 < 8 and eth-account < 0.14, older than ours.

``parse_message`` accepts exactly the messages EIP-4361's ABNF allows, every optional part present
or absent (scheme, statement, Expiration Time, Not Before, Request ID, Resources)::

    [scheme "://"] domain " wants you to sign in with your Ethereum account:" LF
    address LF
    LF
    [statement LF]
    LF
    "URI: " uri LF
    "Version: 1" LF
    "Chain ID: " chain-id LF
    "Nonce: " nonce LF
    "Issued At: " issued-at
    [LF "Expiration Time: " expiration-time]
    [LF "Not Before: " not-before]
    [LF "Request ID: " request-id]
    [LF "Resources:" *(LF "- " uri)]

What this node then requires of a well-formed message (its domain, chain, URI, times) is its own
policy, checked apart from the grammar in ``auth.service.open_session`` and documented in the README.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct
from web3 import Web3

HEADER = " wants you to sign in with your Ethereum account:"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
#: RFC 3986 authority: [userinfo "@"] host [":" port], host a reg-name, IPv4 or [IPv6]
_AUTHORITY = re.compile(
    r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:%]*@)?"
    r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]*)(?::[0-9]*)?"
)
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
#: reserved / unreserved / " " (RFC 3986 characters and space; no line feed)
_STATEMENT = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;= ]*")
#: an RFC 3986 URI: scheme ":" then URI characters
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
_NONCE = re.compile(r"[A-Za-z0-9]{8,}")
_DATE_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_PCHAR = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@%]*")
_OPTIONAL = (("Expiration Time: ", "expiration"), ("Not Before: ", "not_before"), ("Request ID: ", "request_id"))


@dataclass(frozen=True)
class SiweMessage:
    domain: str
    address: str
    statement: str | None
    uri: str
    chain_id: int
    nonce: str
    issued_at: datetime
    expiration: datetime | None
    not_before: datetime | None
    resources: tuple[str, ...] = ()
    scheme: str | None = None
    request_id: str | None = None


def _time(value: str, name: str) -> datetime:
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        raise ValueError(f"{name} is not an RFC 3339 date-time")
    date, clock, fraction, zone = match.groups()
    fraction = (fraction or ".0")[:7]  # Python keeps microseconds
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        return datetime.fromisoformat(f"{date}T{clock}{fraction}{zone}").astimezone(UTC)
    except ValueError:
        raise ValueError(f"{name} is not a valid date-time") from None


def _field(lines: list[str], at: int, prefix: str, pattern: re.Pattern[str], name: str) -> str:
    if at >= len(lines) or not lines[at].startswith(prefix):
        raise ValueError(f"expected the {prefix.strip()!r} line")
    value = lines[at][len(prefix) :]
    if pattern.fullmatch(value) is None:
        raise ValueError(f"{name} is malformed")
    return value


def parse_message(text: str) -> SiweMessage:
    """Parses an EIP-4361 message by its ABNF; ``ValueError`` naming what is wrong."""
    lines = text.split("\n")
    if len(lines) < 9 or not lines[0].endswith(HEADER):
        raise ValueError("not an EIP-4361 sign-in message (first line)")
    origin = lines[0][: -len(HEADER)]
    scheme, _, domain = origin.rpartition("://") if "://" in origin else ("", "", origin)
    if (scheme and _SCHEME.fullmatch(scheme) is None) or not domain or _AUTHORITY.fullmatch(domain) is None:
        raise ValueError("the domain is not an RFC 3986 authority (with an optional scheme)")
    address = lines[1]
    if _ADDRESS.fullmatch(address) is None:
        raise ValueError("the second line must be the 0x-prefixed address")
    if not Web3.is_checksum_address(address):
        raise ValueError("the address must be EIP-55 checksummed")
    if lines[2] != "":
        raise ValueError("a blank line must follow the address")
    statement: str | None = None
    at = 3
    if lines[3] == "":  # no statement: two blank lines in all
        at = 4
    else:
        statement = lines[3]
        if _STATEMENT.fullmatch(statement) is None:
            raise ValueError("the statement may hold only RFC 3986 characters and spaces")
        if len(lines) < 5 or lines[4] != "":
            raise ValueError("a blank line must follow the statement")
        at = 5
    if at < len(lines) and lines[at] == "" and statement is None:  # an empty statement line, then the blank line
        at += 1
    uri = _field(lines, at, "URI: ", _URI, "URI")
    if _field(lines, at + 1, "Version: ", re.compile("1"), "Version (only 1 exists)") != "1":
        raise ValueError("Version must be 1")
    chain_id = int(_field(lines, at + 2, "Chain ID: ", re.compile(r"[0-9]+"), "Chain ID"))
    nonce = _field(lines, at + 3, "Nonce: ", _NONCE, "Nonce (8 or more letters and digits)")
    issued_at = _time(_field(lines, at + 4, "Issued At: ", re.compile(r".+"), "Issued At"), "Issued At")
    at += 5
    found: dict[str, str] = {}
    for prefix, key in _OPTIONAL:
        if at < len(lines) and lines[at].startswith(prefix):
            found[key] = lines[at][len(prefix) :]
            at += 1
    if "request_id" in found and _PCHAR.fullmatch(found["request_id"]) is None:
        raise ValueError("Request ID is malformed")
    resources: list[str] = []
    if at < len(lines) and lines[at] == "Resources:":
        at += 1
        while at < len(lines) and lines[at].startswith("- "):
            if _URI.fullmatch(lines[at][2:]) is None:
                raise ValueError(f"resource {len(resources) + 1} is not a URI")
            resources.append(lines[at][2:])
            at += 1
    if at != len(lines):
        raise ValueError(f"unexpected line {at + 1}: fields are out of order, repeated or unknown")
    return SiweMessage(
        domain=domain,
        address=address,
        statement=statement,
        uri=uri,
        chain_id=chain_id,
        nonce=nonce,
        issued_at=issued_at,
        expiration=_time(found["expiration"], "Expiration Time") if "expiration" in found else None,
        not_before=_time(found["not_before"], "Not Before") if "not_before" in found else None,
        resources=tuple(resources),
        scheme=scheme or None,
        request_id=found.get("request_id"),
    )


def verify_signature(text: str, signature_hex: str) -> str:
    """The account that signed the message text (EIP-191 personal_sign, as wallets do for SIWE)."""
    raw = bytes.fromhex(signature_hex.removeprefix("0x"))
    if len(raw) != 65:
        raise ValueError("signature must be 65 bytes")
    try:
        return str(Account.recover_message(encode_defunct(text=text), signature=raw))
    except Exception as exc:
        raise ValueError(f"not a valid signature ({type(exc).__name__})") from None


def build_message(
    *,
    domain: str,
    address: str,
    uri: str,
    chain_id: int,
    nonce: str,
    issued_at: datetime,
    expiration: datetime,
    statement: str = "Sign in to MedLedger.",
    resources: tuple[str, ...] = (),
) -> str:
    """The message a patient's wallet signs (clients, the portal's script and tests build it the same way)."""

    def iso(moment: datetime) -> str:
        return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

    text = (
        f"{domain} wants you to sign in with your Ethereum account:\n{address}\n\n{statement}\n\n"
        f"URI: {uri}\nVersion: 1\nChain ID: {chain_id}\nNonce: {nonce}\nIssued At: {iso(issued_at)}\n"
        f"Expiration Time: {iso(expiration)}"
    )
    if resources:
        text += "\nResources:" + "".join(f"\n- {resource}" for resource in resources)
    return text


def answer_to(challenge: Mapping[str, Any], *, address: str, lasts: timedelta, resources: tuple[str, ...] = ()) -> str:
    """The message that answers a node's sign-in challenge (``POST /v1/auth/challenge``), valid from now
    for ``lasts``: what a client signs to sign in."""
    moment = datetime.now(UTC)
    return build_message(
        domain=challenge["domain"],
        address=address,
        uri=challenge["uri"],
        chain_id=challenge["chain_id"],
        nonce=challenge["nonce"],
        issued_at=moment,
        expiration=moment + lasts,
        resources=resources,
    )
