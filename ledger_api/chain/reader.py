"""How the node reads the chain: one interface, two implementations.

- ``JsonRpcChainReader`` for HTTP(S) chains (production and anvil): plain JSON-RPC over the lean
  libcurl client of ``chain.rpc``, with a batch for "a call and the head block in one round trip".
- ``Web3ChainReader`` for the in-process eth-tester chain, which takes web3's request formatting.

Everything that reads (the typed clients, the block clock) holds a ``ChainReader`` and never asks
which one it has: the fork on the kind of chain happens once, in ``reader_for``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from web3 import Web3
from web3.providers.rpc import HTTPProvider

from ledger_api.chain.endpoints import Endpoints
from ledger_api.chain.reverts import decode_revert
from ledger_api.chain.rpc import JsonRpcReader
from ledger_api.chain.transactions import chain_call
from ledger_api.errors import TransactionFailed


class ChainReader(ABC):
    """Reads at a block; reverts raise the contract's decoded ``ContractReverted``."""

    @abstractmethod
    def call(self, to: str, data: bytes, block: int | str, *, contract: str) -> bytes:
        """An ``eth_call``'s return data."""

    @abstractmethod
    def call_at_head(self, to: str, data: bytes, *, contract: str) -> tuple[bytes, int]:
        """An ``eth_call`` at the latest block and the latest block number. Both are the chain's state
        at the moment of asking, but a block mined between the two answers would put them one block
        apart: for checks that must be current, not for values that must belong to exactly that
        block (those take ``call`` with a block)."""

    @abstractmethod
    def head_block(self) -> int:
        """The chain's latest block number."""

    @abstractmethod
    def block_timestamp(self, block: int) -> int:
        """A block's timestamp (unix seconds)."""


class JsonRpcChainReader(ChainReader):
    """Plain JSON-RPC requests to an HTTP(S) node (see ``chain.rpc`` for why not web3's provider)."""

    def __init__(self, rpc: JsonRpcReader) -> None:
        self.rpc = rpc

    def call(self, to: str, data: bytes, block: int | str, *, contract: str) -> bytes:
        block_id = hex(block) if isinstance(block, int) else block
        return _call_result(self.rpc.request("eth_call", [_call_object(to, data), block_id]), contract)

    def call_at_head(self, to: str, data: bytes, *, contract: str) -> tuple[bytes, int]:
        head, call = self.rpc.batch([("eth_blockNumber", []), ("eth_call", [_call_object(to, data), "latest"])])
        return _call_result(call, contract), _block_number(head)

    def head_block(self) -> int:
        return _block_number(self.rpc.request("eth_blockNumber", []))

    def block_timestamp(self, block: int) -> int:
        result = self.rpc.request("eth_getBlockByNumber", [hex(block), False]).get("result") or {}
        return int(result.get("timestamp", "0x0"), 16)


class Web3ChainReader(ChainReader):
    """Reads through web3 (the in-process eth-tester chain has no JSON-RPC endpoint)."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3

    def call(self, to: str, data: bytes, block: int | str, *, contract: str) -> bytes:
        return bytes(chain_call(self.w3.eth.call, {"to": to, "data": data}, block, contract=contract))

    def call_at_head(self, to: str, data: bytes, *, contract: str) -> tuple[bytes, int]:
        head = self.head_block()
        return self.call(to, data, "latest", contract=contract), head

    def head_block(self) -> int:
        return int(chain_call(lambda: self.w3.eth.block_number))

    def block_timestamp(self, block: int) -> int:
        return int(chain_call(self.w3.eth.get_block, block)["timestamp"])


def reader_for(w3: Web3) -> ChainReader:
    """The lean JSON-RPC reader for HTTP(S) chains; web3 itself for the in-process eth-tester."""
    provider = w3.provider
    if not isinstance(provider, HTTPProvider) or provider.endpoint_uri is None:
        return Web3ChainReader(w3)
    kwargs = provider.get_request_kwargs()
    timeout = kwargs.get("timeout", 10.0)
    endpoints = getattr(provider, "endpoints", None)  # a FailoverHTTPProvider's: the same failover for reads
    return JsonRpcChainReader(
        JsonRpcReader(
            endpoints if isinstance(endpoints, Endpoints) else str(provider.endpoint_uri),
            timeout=timeout if isinstance(timeout, int | float) else 10.0,
            headers={k: v for k, v in dict(kwargs.get("headers") or {}).items() if k != "User-Agent"},
        )
    )


def _call_object(to: str, data: bytes) -> dict[str, str]:
    return {"to": to, "data": "0x" + data.hex()}


def _call_result(response: dict[str, Any], contract: str) -> bytes:
    """An ``eth_call`` response's return data; a revert as its decoded ``ContractReverted``."""
    if "error" in response:
        error = response["error"]
        decoded = decode_revert(error.get("data"), contract) if isinstance(error, dict) else None
        if decoded is not None:
            raise decoded
        raise TransactionFailed(f"{contract} call failed: {error}")
    return bytes.fromhex(str(response["result"]).removeprefix("0x"))


def _block_number(response: dict[str, Any]) -> int:
    if "result" not in response:
        raise TransactionFailed(f"eth_blockNumber failed: {response.get('error')}")
    return int(response["result"], 16)
