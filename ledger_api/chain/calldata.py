"""ABI encoding of contract-call arguments and decoding of results, fast where the hot path needs it.

Why not eth_abi alone: authorisation reads the chain on every request, and eth_abi's generic
encoders and decoders (validation, registry lookups, stream objects) cost more CPU than the
JSON-RPC round trip itself. Two well-defined shortcuts, with eth_abi for everything else and as
the judge of anything unusual:

- Static argument and result types (address, bool, uint<M>, bytes32) are 32-byte words: encoded
  by ``to_bytes`` and decoded by slicing. A value outside a shortcut's checks goes to eth_abi,
  which encodes it or raises as it always did.
- Results with dynamic parts (a member's name, endpoint and key) are decoded once per distinct
  byte string: decoding is a pure function of the bytes, so the same answer read again (the
  chain is still asked every time) needs no second decode.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import to_checksum_address

_UINT = re.compile(r"uint(\d+)$")
_ZERO_PAD = bytes(12)


def _uint_bits(abi_type: str) -> int | None:
    match = _UINT.match(abi_type)
    return int(match.group(1)) if match else None


def _word(abi_type: str, value: Any) -> bytes | None:
    """One static argument as its 32-byte word, or None when the shortcut does not apply."""
    if abi_type == "address":
        if isinstance(value, str) and len(value) == 42 and value[:2] == "0x":
            try:
                raw = bytes.fromhex(value[2:])
            except ValueError:
                return None
            digits = value[2:]  # eth_abi takes all-lower or all-upper hex, or mixed case only if it is the checksum
            if digits.islower() or digits.isupper() or digits.isdigit() or checksum_address(value) == value:
                return _ZERO_PAD + raw
        return None
    if abi_type == "bool":
        return (b"\x00" * 31 + (b"\x01" if value else b"\x00")) if isinstance(value, bool) else None
    if abi_type == "bytes32":
        return bytes(value) if isinstance(value, bytes | bytearray) and len(value) == 32 else None
    bits = _uint_bits(abi_type)
    if bits is not None and type(value) is int and 0 <= value < (1 << bits):
        return value.to_bytes(32, "big")
    return None


def encode_arguments(types: tuple[str, ...], args: tuple[Any, ...]) -> bytes:
    """The ABI encoding of ``args`` (what follows the selector in calldata)."""
    words = [_word(t, v) for t, v in zip(types, args, strict=True)]
    if all(w is not None for w in words):
        return b"".join(words)  # type: ignore[arg-type]
    return abi_encode(list(types), list(args))


def _static_value(abi_type: str, word: bytes) -> Any:
    """A static result word decoded, or ``_UNDECODED`` when the shortcut does not apply."""
    if abi_type == "address":
        return checksum_address("0x" + word[12:].hex()) if word[:12] == _ZERO_PAD else _UNDECODED
    if abi_type == "bool":
        return bool(word[31]) if word[:31] == bytes(31) and word[31] in (0, 1) else _UNDECODED
    if abi_type == "bytes32":
        return word
    bits = _uint_bits(abi_type)
    if bits is not None:
        value = int.from_bytes(word, "big")
        return value if value < (1 << bits) else _UNDECODED
    return _UNDECODED


_UNDECODED = object()


def decode_results(types: tuple[str, ...], raw: bytes) -> tuple[Any, ...]:
    """The decoded result values, addresses checksummed (as web3 returns them), also inside tuples.

    Results that are only static words take the shortcut; others are decoded with eth_abi once per
    distinct byte string (see the module's docstring). Results holding arrays are never shared
    between callers (lists are mutable): they are decoded afresh.
    """
    if len(raw) == 32 * len(types):
        values = [_static_value(t, raw[32 * i : 32 * i + 32]) for i, t in enumerate(types)]
        if all(v is not _UNDECODED for v in values):
            return tuple(values)
    if any("[" in t for t in types):
        return _decode(types, raw)
    return _decode_memoised(types, raw)


def _decode(types: tuple[str, ...], raw: bytes) -> tuple[Any, ...]:
    values = abi_decode(list(types), raw)
    return tuple(_checksummed(t, v) for t, v in zip(types, values, strict=True))


@lru_cache(maxsize=4096)
def _decode_memoised(types: tuple[str, ...], raw: bytes) -> tuple[Any, ...]:
    return _decode(types, raw)


@lru_cache(maxsize=65536)
def checksum_address(value: str) -> str:
    """EIP-55 form of an address, memoised: it costs a Keccak per call and the same members and
    patients recur on every request."""
    return to_checksum_address(value)


def _checksummed(abi_type: str, value: Any) -> Any:
    if abi_type == "address":
        return checksum_address(value)
    if abi_type.startswith("(") and abi_type.endswith(")"):
        inner = split_tuple(abi_type[1:-1])
        return tuple(_checksummed(t, v) for t, v in zip(inner, value, strict=True))
    if abi_type == "address[]":
        return [checksum_address(v) for v in value]
    return value


def split_tuple(types: str) -> list[str]:
    """The component types of a tuple type's inside (``address,(uint8,bool),string``)."""
    parts, depth, current = [], 0, ""
    for char in types:
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current += char
    return [*parts, current] if current else parts
