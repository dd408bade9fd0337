"""Signs and sends transactions locally, one member key at a time, safely from many threads.

Why local signing: production nodes (Besu, GoQuorum) must never hold unlocked member keys.
Why our own nonce counter: concurrent requests on one member key would otherwise race on
``eth_getTransactionCount`` and produce duplicate or skipped nonces. The counter is taken under
a lock, synced from the node's pending count on first use and after any send failure, so a
failed send never leaves a gap.
"""

from __future__ import annotations

import ast
import threading
import time
from typing import Any, cast

from eth_account.signers.local import LocalAccount
from requests.exceptions import RequestException
from web3 import Web3
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError, TimeExhausted
from web3.types import TxParams

from ledger_api.chain.events import decode_log
from ledger_api.chain.reverts import decode_revert
from ledger_api.chain.types import DecodedEvent, PreparedTransaction, Receipt
from ledger_api.errors import ChainUnavailable, LedgerError, TransactionFailed

#: a transaction's call: a contract function, or a constructor (deployments)
ContractCall = ContractFunction | ContractConstructor


def chain_call(fn: Any, *args: Any, contract: str | None = None, **kwargs: Any) -> Any:
    """Runs a chain request, turning reverts into ``ContractReverted`` and outages into ``ChainUnavailable``."""
    try:
        return fn(*args, **kwargs)
    except (ContractCustomError, ContractLogicError, ContractPanicError) as exc:
        decoded = decode_revert(getattr(exc, "data", None), contract)
        if decoded is not None:
            raise decoded from None
        raise TransactionFailed(f"reverted without reason: {exc}") from None
    except (RequestException, ConnectionError, TimeoutError, OSError) as exc:
        raise ChainUnavailable(f"chain node unreachable: {type(exc).__name__}") from None
    except Exception as exc:
        if type(exc).__module__ == "eth_tester.exceptions" and type(exc).__name__ == "TransactionFailed":
            decoded = decode_revert(_eth_tester_revert_data(str(exc)), contract)
            if decoded is not None:
                raise decoded from None
            raise TransactionFailed(f"reverted: {exc}") from None
        raise


def _eth_tester_revert_data(message: str) -> bytes | None:
    """eth-tester (in-process chain) reports reverts as ``execution reverted: b'...'``."""
    prefix = "execution reverted: "
    literal = message[len(prefix) :] if message.startswith(prefix) else ""
    if not literal.startswith(("b'", 'b"')):
        return None
    try:
        value = ast.literal_eval(literal)
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, bytes) else None


class TransactionSender:
    """Sends contract transactions signed by one local account.

    ``confirmations``: blocks that must follow the transaction's block before it counts (0 on
    instant-finality chains such as QBFT). ``receipt_timeout``: seconds to wait for mining.
    ``gas_price``: a fixed price in wei (0 on consortium networks, where gas is free), or None to ask
    the node (``eth_gasPrice``) for every transaction. Transactions are legacy (type 0) either way:
    GoQuorum and Berlin networks know no other kind.
    """

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        *,
        chain_id: int | None = None,
        gas_margin: float = 1.25,
        receipt_timeout: float = 30.0,
        confirmations: int = 0,
        poll_interval: float = 0.05,
        gas_price: int | None = None,
    ) -> None:
        self.w3 = w3
        self.account = account
        self.chain_id = chain_id if chain_id is not None else chain_call(lambda: int(w3.eth.chain_id))
        self.gas_margin = gas_margin
        self.receipt_timeout = receipt_timeout
        self.confirmations = confirmations
        self.poll_interval = poll_interval
        self.gas_price = gas_price
        self._lock = threading.Lock()
        self._next_nonce: int | None = None

    @property
    def address(self) -> str:
        return self.account.address

    def send(self, fn: ContractCall, *, contract: str | None = None, gas: int | None = None) -> Receipt:
        """Estimates, signs, sends and waits for ``fn``; returns its receipt with decoded events.

        Raises ``ContractReverted`` (decoded custom error) if the call would revert or did,
        ``ChainUnavailable`` if the node cannot be reached, ``TransactionFailed`` otherwise.
        """
        fields = self._fields(fn, contract, gas)
        with self._lock:  # sent under the lock, so nonces reach the node in order
            signed, nonce = self._sign_next(fn, fields)
            try:
                tx_hash = chain_call(self.w3.eth.send_raw_transaction, signed.raw_transaction, contract=contract)
            except LedgerError:
                self._next_nonce = None  # resync from the node: never leave a gap
                raise
            except ValueError as exc:  # the node refused the transaction (nonce, funds ...)
                self._next_nonce = None
                raise TransactionFailed(f"node refused transaction: {exc}") from None
            self._next_nonce = nonce + 1
        return self.wait(tx_hash.to_0x_hex() if hasattr(tx_hash, "to_0x_hex") else str(tx_hash), fn, contract)

    def prepare(self, fn: ContractCall, *, contract: str | None = None) -> PreparedTransaction:
        """Estimates and signs ``fn`` with the next nonce, without sending it.

        The caller persists the result, then calls ``broadcast`` (again after a crash: the same
        bytes, so the chain executes it at most once).
        """
        fields = self._fields(fn, contract, None)
        with self._lock:
            signed, nonce = self._sign_next(fn, fields)
            self._next_nonce = nonce + 1
        return PreparedTransaction(raw=signed.raw_transaction.hex(), tx_hash=signed.hash.to_0x_hex(), nonce=nonce)

    def _fields(self, fn: ContractCall, contract: str | None, gas: int | None) -> dict[str, Any]:
        """Sender, chain id, gas (estimated with a margin unless given) and gas price; no lock needed."""
        fields: dict[str, Any] = {"from": self.account.address, "chainId": self.chain_id}
        if gas is None:
            gas = int(chain_call(fn.estimate_gas, fields, contract=contract) * self.gas_margin)
        price = self.gas_price if self.gas_price is not None else chain_call(lambda: self.w3.eth.gas_price)
        return {**fields, "gas": gas, "gasPrice": price}

    def _sign_next(self, fn: ContractCall, fields: dict[str, Any]) -> tuple[Any, int]:
        """Signs ``fn`` with the next nonce (synced from the node when unknown). Caller holds the lock."""
        if self._next_nonce is None:
            self._next_nonce = chain_call(self.w3.eth.get_transaction_count, self.account.address, "pending")
        nonce = self._next_nonce
        transaction = fn.build_transaction(cast(TxParams, {**fields, "nonce": nonce}))
        return self.account.sign_transaction(cast(Any, transaction)), nonce

    def broadcast(self, prepared: PreparedTransaction) -> None:
        """Sends a prepared transaction; a node that already has it (or mined it) is not an error."""
        try:
            chain_call(self.w3.eth.send_raw_transaction, bytes.fromhex(prepared.raw.removeprefix("0x")))
        except TransactionFailed:
            raise
        except ValueError as exc:  # "already known", "nonce too low": look at the receipt instead
            if self.receipt(prepared.tx_hash) is None and "already known" not in str(exc).lower():
                raise TransactionFailed(f"node refused transaction: {exc}") from None

    def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        """The raw receipt if the transaction is mined, else ``None``."""
        from web3.exceptions import TransactionNotFound

        try:
            found: dict[str, Any] = chain_call(self.w3.eth.get_transaction_receipt, tx_hash)
            return found
        except TransactionNotFound:
            return None

    def resync_nonce(self) -> None:
        """Forgets the local nonce counter; the next transaction reads the node's pending count."""
        with self._lock:
            self._next_nonce = None

    def wait(self, tx_hash: str, fn: ContractCall | None = None, contract: str | None = None) -> Receipt:
        """Waits for a sent transaction to be mined and confirmed; decodes a failure's reason."""
        try:
            raw = chain_call(
                self.w3.eth.wait_for_transaction_receipt,
                tx_hash,
                timeout=self.receipt_timeout,
                poll_latency=self.poll_interval,
            )
        except TimeExhausted:
            raise ChainUnavailable(f"transaction {tx_hash} not mined within {self.receipt_timeout:.0f}s") from None
        raw = self._confirmed(tx_hash, raw)
        if raw["status"] != 1:
            if isinstance(fn, ContractFunction):  # replay at the failing block to learn the custom error
                chain_call(fn.call, {"from": self.account.address}, raw["blockNumber"] - 1, contract=contract)
            raise TransactionFailed(f"transaction {tx_hash} failed (gas used {raw['gasUsed']})")
        return Receipt(
            tx_hash=tx_hash,
            block_number=raw["blockNumber"],
            block_hash=raw["blockHash"].to_0x_hex(),
            gas_used=raw["gasUsed"],
            contract_address=raw.get("contractAddress"),
            events=decode_events(self.w3, raw["logs"]),
        )

    def _confirmed(self, tx_hash: str, raw: Any) -> Any:
        """The receipt once ``confirmations`` blocks follow its block on the canonical chain.

        Why the receipt is read again: on Clique two signers can seal the same height, and the heavier
        branch then replaces the newest blocks. The transaction moves to another block (its receipt
        changes) or back to the pool for a while (no receipt); the receipt that counts is the one whose
        block is still the chain's block at that height once enough blocks follow it.
        """
        if self.confirmations <= 0:
            return raw
        deadline = time.monotonic() + self.receipt_timeout
        while True:
            if raw is not None:
                number = raw["blockNumber"]
                if chain_call(lambda: self.w3.eth.block_number) >= number + self.confirmations:
                    canonical = chain_call(self.w3.eth.get_block, number)["hash"]
                    if bytes(canonical) == bytes(raw["blockHash"]):
                        return raw
            if time.monotonic() > deadline:
                raise ChainUnavailable(f"transaction {tx_hash} not confirmed within {self.receipt_timeout:.0f}s")
            time.sleep(self.poll_interval)
            raw = self.receipt(tx_hash)


def decode_events(w3: Web3, logs: list[Any]) -> list[DecodedEvent]:
    """Decodes every log emitted by one of our contracts (others are skipped)."""
    return [event for event in (decode_log(w3, log) for log in logs) if event is not None]
