"""Three ways to reach a chain, behind one interface.

* ``EthTesterBackend``: an in-process py-evm chain, for fast unit tests.
* ``AnvilBackend``: a managed ``anvil`` subprocess (from the pinned npm package) whose state is
  persisted in the data directory; the default for running locally.
* ``RpcBackend``: any JSON-RPC URL (production: Hyperledger Besu QBFT, GoQuorum; here also the Clique test
  network of ``chain.clique``), with optional fallback URLs used while the first does not answer.

Everything that talks to a chain takes a backend's ``Web3``; signing is always local (see
``transactions``). The dev-only helpers (funding, time travel, snapshots) exist on the two
development chains and refuse on a production RPC.
"""

from __future__ import annotations

import json
import os
import platform
import random
import signal
import socket
import subprocess
import time
from abc import ABC
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from eth_typing import URI
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import Timeout as RequestsTimeout
from web3 import Web3
from web3.middleware import ExtraDataToPOAMiddleware
from web3.providers.rpc import HTTPProvider
from web3.types import RPCEndpoint

from ledger_api.chain.endpoints import Endpoints
from ledger_api.chain.rpc import JsonRpcReader, behind
from ledger_api.errors import ChainUnavailable

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_LOCAL_CHAIN_ID = 31_337_777


class ChainBackend(ABC):
    """A connection to one chain."""

    kind: str
    w3: Web3

    @property
    def chain_id(self) -> int:
        return int(self.w3.eth.chain_id)

    def close(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Releases the connection (and stops the chain if this backend started it)."""

    # -- development-chain helpers -------------------------------------------------------------
    def fund(self, address: str, wei: int) -> None:
        """Gives ``address`` a balance (development chains only)."""
        raise NotImplementedError(f"{self.kind} chain cannot mint balances")

    def increase_time(self, seconds: int) -> None:
        """Moves the chain clock forward and mines a block (development chains only)."""
        raise NotImplementedError(f"{self.kind} chain cannot travel in time")

    def snapshot(self) -> Any:
        raise NotImplementedError(f"{self.kind} chain cannot snapshot")

    def revert(self, snapshot_id: Any) -> None:
        raise NotImplementedError(f"{self.kind} chain cannot revert")

    def __enter__(self) -> ChainBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _DevRpcMixin:
    """Anvil's dev RPC methods (also answered by Hardhat-style nodes)."""

    w3: Web3

    def fund(self, address: str, wei: int) -> None:
        self.w3.provider.make_request("anvil_setBalance", [address, hex(wei)])  # type: ignore[arg-type]

    def increase_time(self, seconds: int) -> None:
        self.w3.provider.make_request("evm_increaseTime", [int(seconds)])  # type: ignore[arg-type]
        self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    def snapshot(self) -> Any:
        return self.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]

    def revert(self, snapshot_id: Any) -> None:
        """Back to the snapshot's state, but not to its time: anvil's revert also rewinds its clock, so
        the next blocks would be stamped as long ago as the snapshot was taken (wall-clock consent
        windows would then look "not yet valid"). A chain's clock never runs backwards."""
        result = self.w3.provider.make_request("evm_revert", [snapshot_id])  # type: ignore[arg-type]
        if not result.get("result"):
            raise RuntimeError(f"evm_revert({snapshot_id}) failed: {result}")
        now = int(time.time())
        if self.w3.eth.get_block("latest")["timestamp"] < now:
            self.w3.provider.make_request("evm_setTime", [now])  # type: ignore[arg-type]


class EthTesterBackend(ChainBackend):
    """In-process py-evm chain: no process, no port, fresh state per instance."""

    kind = "eth-tester"

    def __init__(self) -> None:
        from eth_tester import EthereumTester, PyEVMBackend
        from web3.providers.eth_tester import EthereumTesterProvider

        self.tester = EthereumTester(PyEVMBackend())
        self.w3 = Web3(EthereumTesterProvider(self.tester))
        self._funder_key = self.tester.backend.account_keys[0]

    def fund(self, address: str, wei: int) -> None:
        from eth_account import Account

        funder = Account.from_key(self._funder_key.to_bytes())
        tx = {
            "to": Web3.to_checksum_address(address),
            "value": wei,
            "gas": 21_000,
            "gasPrice": self.w3.eth.gas_price,
            "nonce": self.w3.eth.get_transaction_count(funder.address, "pending"),
            "chainId": self.chain_id,
        }
        tx_hash = self.w3.eth.send_raw_transaction(funder.sign_transaction(tx).raw_transaction)
        self.w3.eth.wait_for_transaction_receipt(tx_hash)

    def increase_time(self, seconds: int) -> None:
        latest = self.w3.eth.get_block("latest")["timestamp"]
        self.tester.time_travel(int(latest) + int(seconds))
        self.tester.mine_blocks(1)  # reads see the latest mined block, like anvil's evm_mine

    def snapshot(self) -> Any:
        return self.tester.take_snapshot()

    def revert(self, snapshot_id: Any) -> None:
        self.tester.revert_to_snapshot(snapshot_id)


class FailoverHTTPProvider(HTTPProvider):
    """web3's HTTP provider over ``Endpoints``: a request the first endpoint cannot take (refused, reset,
    timed out) goes to the next. Which one answered is the only state; ``endpoint_uri`` stays the
    primary (web3 and ``reader_for`` read it), so threads never race on it."""

    def __init__(self, endpoints: Endpoints, **kwargs: Any) -> None:
        super().__init__(endpoints.primary, **kwargs)
        self.endpoints = endpoints

    def _make_request(self, method: RPCEndpoint, request_data: bytes) -> bytes:
        def attempt(url: str) -> bytes:
            answer: bytes = self._request_session_manager.make_post_request(
                URI(url), request_data, **self.get_request_kwargs()
            )
            if len(self.endpoints.urls) > 1 and behind(json.loads(answer)):
                raise RequestsConnectionError("chain node is behind the chain's head")
            return answer

        return self.endpoints.first(attempt, (RequestsConnectionError, RequestsTimeout, ValueError))


class RpcBackend(ChainBackend):
    """Any JSON-RPC endpoint, with fallbacks. Requests time out after ``timeout`` seconds.

    Blocks of proof-of-authority networks (Clique, QBFT, IBFT) carry the signers and seals in
    ``extraData``, longer than the 32 bytes web3 accepts by default: its PoA middleware moves them to
    ``proofOfAuthorityData``, so ``get_block`` works on every network (and changes nothing elsewhere).
    """

    kind = "rpc"

    def __init__(self, url: str, timeout: float = 10.0, *, fallbacks: Sequence[str] = ()) -> None:
        self.url = url
        self.endpoints = Endpoints([url, *fallbacks], probe=self._caught_up if fallbacks else None)
        self._timeout = timeout
        # cache_allowed_requests: web3 caches eth_chainId (asked twice per call by its validation
        # middleware otherwise), tripling the round trips of every contract read.
        provider = FailoverHTTPProvider(
            self.endpoints, request_kwargs={"timeout": timeout}, cache_allowed_requests=True
        )
        self.w3 = Web3(provider)
        self.w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)

    def _caught_up(self, url: str) -> bool:
        """Whether an endpoint back from an outage is at the chain's head again (within a block of the
        highest head its peers report); until then its member keeps reading from the fallbacks."""
        heads = {}
        for each in self.endpoints.urls:
            rpc = JsonRpcReader(each, timeout=min(self._timeout, 2.0))
            try:
                heads[each] = int(rpc.request("eth_blockNumber", [])["result"], 16)
            except (ChainUnavailable, KeyError, ValueError):
                if each == url:
                    return False
            finally:
                rpc.close()
        return heads[url] >= max(heads.values()) - 1


class AnvilBackend(_DevRpcMixin, RpcBackend):
    """A managed anvil subprocess; its state survives restarts in ``<data_dir>/anvil-state.json``.

    State is dumped every ``state_interval`` seconds and on a clean stop (SIGTERM), so a crash
    loses at most that interval of blocks; deployment manifests record block numbers so a lost
    tail is noticed (the contracts then are not at the manifest's addresses).
    """

    kind = "anvil"

    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        port: int | None = None,
        chain_id: int = DEFAULT_LOCAL_CHAIN_ID,
        state_interval: int = 2,
        startup_timeout: float = 30.0,
    ) -> None:
        self.port = port or free_port()
        self.data_dir = data_dir
        self.log_path: Path | None = None
        command = [
            str(anvil_binary()),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--chain-id",
            str(chain_id),
            "--accounts",
            "1",
            "--gas-price",
            "1000000000",
        ]
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
            command += ["--state", str(data_dir / "anvil-state.json"), "--state-interval", str(state_interval)]
            self.log_path = data_dir / "anvil.log"
            log = open(self.log_path, "ab")
        else:
            log = subprocess.DEVNULL  # type: ignore[assignment]
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        super().__init__(f"http://127.0.0.1:{self.port}")
        self._wait_until_ready(startup_timeout)

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ChainUnavailable(f"anvil exited with code {self.process.returncode} (log: {self.log_path})")
            try:
                if self.w3.is_connected():
                    return
            except Exception:
                pass
            time.sleep(0.05)
        self.close()
        raise ChainUnavailable(f"anvil did not answer on port {self.port} within {timeout:.0f}s")

    def kill(self) -> None:
        """Kills the node abruptly (SIGKILL), as a crash would; for fault tests."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def anvil_binary() -> Path:
    """Locates the anvil binary shipped by the pinned npm package (override: MEDLEDGER_ANVIL)."""
    override = os.environ.get("MEDLEDGER_ANVIL")
    if override:
        return Path(override)
    system = {"Linux": "linux", "Darwin": "darwin", "Windows": "win32"}.get(platform.system(), "")
    machine = {"x86_64": "amd64", "AMD64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), "")
    path = REPO_ROOT / "node_modules" / "@foundry-rs" / f"anvil-{system}-{machine}" / "bin" / "anvil"
    if not path.exists():
        raise ChainUnavailable(
            f"anvil binary not found at {path}: run `npm ci` (make does this), or set MEDLEDGER_ANVIL "
            "to an anvil binary on platforms other than linux x64"
        )
    return path


def free_port(count: int = 1, *, avoid: Collection[int] = ()) -> int:
    """The first of ``count`` consecutive unused loopback TCP ports, below the ephemeral range, none
    of them in ``avoid`` (ports chosen for servers that have not bound them yet).

    Why not let the OS pick (bind to port 0): it picks from the ephemeral range, which outgoing
    connections draw from too, so between choosing a port and a server binding it another process's
    connection can take it ("address already in use" at start-up). Ports 20000-29999 are never
    handed out for outgoing connections. ``consortium up`` binds base, base+1, ...: hence ``count``.
    """
    for _ in range(200):
        base = random.randrange(20_000, 30_000 - count)
        if any(port in avoid for port in range(base, base + count)):
            continue
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                sockets.append(sock := socket.socket())
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise ChainUnavailable(f"no {count} consecutive free loopback ports in 20000-29999")
