"""Sign-In with Ethereum (EIP-4361) for patients, verified with eth-account directly.

Why not the ``siwe`` package: it pins web3 < 8 and eth-account < 0.14, older than ours. The
message grammar we accept is EIP-4361's, with the fields we require::

    {domain} wants you to sign in with your Ethereum account:
    {address}

    {statement}

    URI: {uri}
    Version: 1
    Chain ID: {chain id}
    Nonce: {nonce}
    Issued At: {RFC 3339}
    Expiration Time: {RFC 3339}
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from eth_account import Account
from eth_account.messages import encode_defunct
from web3 import Web3

_MESSAGE = re.compile(
    r"^(?P<domain>[^\s]+) wants you to sign in with your Ethereum account:\n"
    r"(?P<address>0x[0-9a-fA-F]{40})\n\n"
    r"(?:(?P<statement>[^\n]+)\n\n)?"
    r"URI: (?P<uri>[^\s]+)\n"
    r"Version: (?P<version>1)\n"
    r"Chain ID: (?P<chain_id>[0-9]+)\n"
    r"Nonce: (?P<nonce>[A-Za-z0-9]{8,64})\n"
    r"Issued At: (?P<issued_at>[0-9T:\.\-+Z]+)"
    r"(?:\nExpiration Time: (?P<expiration>[0-9T:\.\-+Z]+))?"
    r"(?:\nNot Before: (?P<not_before>[0-9T:\.\-+Z]+))?"
    r"(?:\nRequest ID: (?P<request_id>[^\n]*))?"
    r"(?:\nResources:(?P<resources>(?:\n- [^\n]+)*))?$"
)


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


def _time(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("timestamps must carry a time zone")
    return parsed.astimezone(UTC)


def parse_message(text: str) -> SiweMessage:
    """Parses an EIP-4361 message; ``ValueError`` naming what is wrong."""
    match = _MESSAGE.match(text)
    if match is None:
        raise ValueError("not an EIP-4361 sign-in message")
    address = match["address"]
    if not Web3.is_checksum_address(address):
        raise ValueError("the address must be EIP-55 checksummed")
    issued_at = _time(match["issued_at"])
    assert issued_at is not None
    return SiweMessage(domain=match["domain"], address=address, statement=match["statement"], uri=match["uri"],
                       chain_id=int(match["chain_id"]), nonce=match["nonce"], issued_at=issued_at,
                       expiration=_time(match["expiration"]), not_before=_time(match["not_before"]),
                       resources=tuple(r[2:] for r in (match["resources"] or "").split("\n") if r))  # fmt: skip


def verify_signature(text: str, signature_hex: str) -> str:
    """The account that signed the message text (EIP-191 personal_sign, as wallets do for SIWE)."""
    raw = bytes.fromhex(signature_hex.removeprefix("0x"))
    if len(raw) != 65:
        raise ValueError("signature must be 65 bytes")
    try:
        return Account.recover_message(encode_defunct(text=text), signature=raw)
    except Exception as exc:  # noqa: BLE001 - eth-keys' BadSignature (bad v, r or s) is not a ValueError
        raise ValueError(f"not a valid signature ({type(exc).__name__})") from None


def build_message(*, domain: str, address: str, uri: str, chain_id: int, nonce: str, issued_at: datetime,
                  expiration: datetime, statement: str = "Sign in to MedLedger.",
                  resources: tuple[str, ...] = ()) -> str:  # fmt: skip
    """The message a patient's wallet signs (clients, the portal's script and tests build it the same way)."""
    def iso(moment: datetime) -> str:
        return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

    text = (f"{domain} wants you to sign in with your Ethereum account:\n{address}\n\n{statement}\n\n"
            f"URI: {uri}\nVersion: 1\nChain ID: {chain_id}\nNonce: {nonce}\nIssued At: {iso(issued_at)}\n"
            f"Expiration Time: {iso(expiration)}")  # fmt: skip
    if resources:
        text += "\nResources:" + "".join(f"\n- {resource}" for resource in resources)
    return text
