"""Decodes revert data from any of our contracts into a named ``ContractReverted`` error.

Custom errors are ABI-encoded as a 4-byte selector plus arguments. We index every error of every
committed artifact by selector once, so a revert from a nested call (for example a consumer
contract called by the registry) is still named correctly.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from hexbytes import HexBytes

from ledger_api.chain.artifacts import load_artifact
from ledger_api.chain.compiler import DEPLOYABLE
from ledger_api.errors import ContractReverted

_PANIC_SELECTOR = bytes.fromhex("4e487b71")
_ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")


def _abi_type(param: dict[str, Any]) -> str:
    if param["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){param['type'][len('tuple') :]}"
    return str(param["type"])


@cache
def _error_index() -> dict[bytes, tuple[str, list[str], list[str]]]:
    index: dict[bytes, tuple[str, list[str], list[str]]] = {}
    for name in DEPLOYABLE:
        for item in load_artifact(name).abi:
            if item["type"] != "error":
                continue
            types = [_abi_type(p) for p in item["inputs"]]
            selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(types)})")
            index[selector] = (item["name"], types, [p["name"] for p in item["inputs"]])
    return index


def decode_revert(data: Any, contract: str | None = None) -> ContractReverted | None:
    """Turns raw revert data into a ``ContractReverted``; ``None`` if there is no data to decode."""
    if data is None:
        return None
    if isinstance(data, str):
        if not data.startswith("0x"):
            return None
        try:
            raw = bytes(HexBytes(data))
        except ValueError:
            return None
    else:
        raw = bytes(data)
    if len(raw) < 4:
        return None
    selector, body = raw[:4], raw[4:]
    if selector == _PANIC_SELECTOR:
        (code,) = abi_decode(["uint256"], body)
        return ContractReverted("Panic", {"code": code}, contract)
    if selector == _ERROR_STRING_SELECTOR:
        (message,) = abi_decode(["string"], body)
        return ContractReverted("Error", {"message": message}, contract)
    known = _error_index().get(selector)
    if known is None:
        return ContractReverted("UnknownError", {"data": raw}, contract)
    name, types, names = known
    values = [
        to_checksum_address(value) if abi_type == "address" else value
        for abi_type, value in zip(types, abi_decode(types, body), strict=True)
    ]
    return ContractReverted(name, dict(zip(names, values, strict=True)), contract)
