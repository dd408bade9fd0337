"""What every typed contract client shares: reads encoded from cached ABI types through the node's
``ChainReader``, and writes handed to a writer.

The writer decides what a write method returns. A ``TransactionSender`` signs, sends and waits:
the method returns the ``Receipt``. ``PREPARE_ONLY`` returns the ``UnsignedTransaction`` instead,
so the outbox builds its calls through the same typed methods (argument order, address checksums,
enum values in one place) and signs them itself, in order, after storing them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

from eth_utils import function_signature_to_4byte_selector
from web3 import Web3
from web3.contract.contract import ContractFunction

from ledger_api.chain.artifacts import load_artifact
from ledger_api.chain.calldata import decode_results, encode_arguments
from ledger_api.chain.reader import ChainReader, reader_for
from ledger_api.errors import ChainUnavailable

#: what a client's write methods return: a ``Receipt`` when sent, an ``UnsignedTransaction`` when prepared
W = TypeVar("W")
W_co = TypeVar("W_co", covariant=True)


class Writer(Protocol[W_co]):
    def send(self, fn: ContractFunction, *, contract: str | None = None) -> W_co: ...


@dataclass(frozen=True)
class UnsignedTransaction:
    """A contract call built but not signed: the outbox signs it with the node's next nonce."""

    function: ContractFunction
    contract: str


class PrepareOnly:
    """The writer of the prepare-only mode: a write method returns its unsigned transaction."""

    def send(self, fn: ContractFunction, *, contract: str | None = None) -> UnsignedTransaction:
        return UnsignedTransaction(function=fn, contract=contract or "")


PREPARE_ONLY = PrepareOnly()


class ContractClient(Generic[W]):
    """Common plumbing: the contract object, reads with decoded reverts, writes through the writer."""

    contract_name: ClassVar[str]

    def __init__(
        self, w3: Web3, address: str, sender: Writer[W] | None = None, *, reader: ChainReader | None = None
    ) -> None:
        self.w3 = w3
        self.address = Web3.to_checksum_address(address)
        self.sender = sender
        self.contract = w3.eth.contract(address=self.address, abi=load_artifact(self.contract_name).abi)
        self.reader = reader if reader is not None else reader_for(w3)

    def with_sender(self, sender: Writer[W]) -> Self:
        """The same contract, writing as another account."""
        return type(self)(self.w3, self.address, sender, reader=self.reader)

    def _read(self, function: str, *args: Any, block: int | str = "latest") -> Any:
        """One ``eth_call`` with calldata encoded from cached ABI types and outputs decoded directly.

        Why not ``contract.functions.f().call()``: building a contract function per call (ABI
        lookup, argument matching, validation) costs milliseconds, and reads are on every
        request's hot path (authorisation reads the chain each time); see ``chain.calldata``.
        """
        spec, data = self._calldata(function, args)
        return _returned(spec, self.reader.call(self.address, data, block, contract=self.contract_name))

    def _calldata(self, function: str, args: tuple[Any, ...]) -> tuple[_FunctionSpec, bytes]:
        spec = _function_spec(self.contract_name, function)
        return spec, spec.selector + encode_arguments(spec.inputs, args)

    def head_block(self) -> int:
        """The chain's latest block number (authorisation is read at one named block and logged with it)."""
        return self.reader.head_block()

    def _read_with_head(self, function: str, *args: Any) -> tuple[Any, int]:
        """``_read`` at the latest block, and the latest block number, in one round trip where the
        chain allows (see ``ChainReader.call_at_head``)."""
        spec, data = self._calldata(function, args)
        raw, head = self.reader.call_at_head(self.address, data, contract=self.contract_name)
        return _returned(spec, raw), head

    def _write(self, function: str, *args: Any) -> W:
        if self.sender is None:
            raise RuntimeError(f"{self.contract_name} client has no sender: it is read-only")
        fn = getattr(self.contract.functions, function)(*args)
        return self.sender.send(fn, contract=self.contract_name)


@dataclass(frozen=True)
class _FunctionSpec:
    selector: bytes
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


def _abi_type(param: dict[str, Any]) -> str:
    if param["type"].startswith("tuple"):
        return f"({','.join(_abi_type(c) for c in param['components'])}){param['type'][len('tuple') :]}"
    return str(param["type"])


@cache
def _function_spec(contract: str, function: str) -> _FunctionSpec:
    (item,) = [i for i in load_artifact(contract).abi if i["type"] == "function" and i["name"] == function]
    inputs = [_abi_type(p) for p in item["inputs"]]
    selector = function_signature_to_4byte_selector(f"{function}({','.join(inputs)})")
    return _FunctionSpec(selector, tuple(inputs), tuple(_abi_type(p) for p in item["outputs"]))


def _returned(spec: _FunctionSpec, raw: bytes) -> Any:
    """A call's decoded return value: the value itself when the function returns one, else the tuple.

    No data where the function returns some: no code at the address at the node's head. The contracts
    are there on the consortium's chain, so the node answering is not (a validator restarted after a
    crash replays its blocks from its last saved state): the chain is unavailable, not the call wrong.
    """
    if not raw and spec.outputs:
        raise ChainUnavailable("the chain node has no consortium contracts at its head (still catching up)")
    values = decode_results(spec.outputs, raw)
    return values[0] if len(values) == 1 else values
