"""The consortium's BFT test network: one geth validator per member, sealing Clique blocks on loopback.

Why Clique on geth v1.13.15 and not QBFT on GoQuorum: see ``scripts/build-chain-engine`` and the README
("The consortium chain"): the Go module proxy refuses GoQuorum; geth v1.13.15 is the last geth that seals
proof-of-authority blocks. What the product needs from the network holds on both: no single member can
write history alone (a block needs a signer in turn, and a signer may seal at most one of every
``N // 2 + 1`` consecutive blocks, so 4 validators keep going with one down and stop with two down), every
member reads and writes through its own validator, and blocks carry more than 32 bytes of ``extraData``.

The fork is Berlin (no London, no EIP-1559): what GoQuorum v24.4.1 runs, and what Besu QBFT networks are
configured with here (``medledger chain genesis``). Gas is as good as free: legacy transactions at
1 wei, from accounts the genesis gives a balance no consortium will ever spend. Why not 0, as Besu and
GoQuorum networks run (and the product's senders do there: they take ``eth_gasPrice``): geth v1.13's
transaction pool refuses a zero-priced transaction that a peer relays (only the validator it was sent
to could then seal it, one block in four).

Everything lives in ``<data_dir>``: ``network.json`` (names, ports, chain id), and per validator
``<name>/`` (geth's data directory, its key as a V3 keystore under the development passphrase, and its
log). A second start resumes the same chain. Development and test networks only: production validators
run Besu (see ``chain.production``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_keys.datatypes import PrivateKey
from pydantic import BaseModel, ConfigDict, Field

from ledger_api.chain.backends import REPO_ROOT, free_port
from ledger_api.chain.rpc import JsonRpcReader
from ledger_api.errors import ChainUnavailable

DEFAULT_NETWORK_CHAIN_ID = 31_337_779
#: the block period; the figures in ``make bench`` are measured at 1 s
DEFAULT_BLOCK_PERIOD_S = 1
BLOCK_GAS_LIMIT = 30_000_000
#: gas costs 1 wei here (see the module docstring); this pays for 10^18 transactions of a million gas
GENESIS_BALANCE_WEI = 10**24
GAS_PRICE_WEI = 1
#: every fork up to Berlin from block 0, nothing later (see the module docstring)
BERLIN_FORKS = (
    "homesteadBlock",
    "eip150Block",
    "eip155Block",
    "eip158Block",
    "byzantiumBlock",
    "constantinopleBlock",
    "petersburgBlock",
    "istanbulBlock",
    "berlinBlock",
)


def geth_binary() -> Path:
    """The geth that ``scripts/build-chain-engine`` built (override: MEDLEDGER_GETH)."""
    override = os.environ.get("MEDLEDGER_GETH")
    path = Path(override) if override else REPO_ROOT / ".tools" / "geth"
    if not path.exists():
        raise ChainUnavailable(
            f"geth not found at {path}: run scripts/build-chain-engine (make does this; it needs Go and the "
            "Go module proxy)"
        )
    return path


class ValidatorPlan(BaseModel):
    """One validator's fixed place in the network (kept in ``network.json``)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")
    address: str
    p2p_port: int
    rpc_port: int
    auth_port: int
    #: keeps every block's state (the audit office's validator), instead of the last 128 blocks'
    archive: bool = False


class NetworkPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    chain_id: int
    block_period_s: int
    validators: list[ValidatorPlan]
    #: the consortium's accounts, given a balance in the genesis (see the module docstring: gas at 1 wei)
    funded_accounts: list[str] = Field(default_factory=list)


@dataclass
class ValidatorStatus:
    name: str
    rpc_url: str
    running: bool
    peers: int | None
    head: int | None
    signing: bool | None


def validator_status(name: str, rpc_url: str, address: str) -> ValidatorStatus:
    """What one validator says of itself: peers, head, and whether it seals (mining, and one of the
    signers); all None when it does not answer."""
    rpc = JsonRpcReader(rpc_url, timeout=2.0)
    try:
        answers = rpc.batch(
            [("admin_peers", []), ("eth_blockNumber", []), ("clique_getSigners", []), ("eth_mining", [])]
        )
        if any("error" in a for a in answers):
            raise ChainUnavailable(f"{name}: {[a.get('error') for a in answers if 'error' in a]}")
        peers, head, signers, mining = (a["result"] for a in answers)
        signing = bool(mining) and address.lower() in {s.lower() for s in signers}
        return ValidatorStatus(name, rpc_url, True, len(peers), int(head, 16), signing)
    except ChainUnavailable:
        return ValidatorStatus(name, rpc_url, False, None, None, None)
    finally:
        rpc.close()


class CliqueNetwork:
    """N geth validators on loopback with static peering; ``start`` creates or resumes them."""

    def __init__(
        self,
        data_dir: Path,
        names: list[str] | None = None,
        *,
        passphrase: str,
        archive: tuple[str, ...] = (),
        chain_id: int = DEFAULT_NETWORK_CHAIN_ID,
        block_period_s: int = DEFAULT_BLOCK_PERIOD_S,
        funded_accounts: list[str] | None = None,
        reserved_ports: Collection[int] = (),
    ) -> None:
        """``reserved_ports``: ports other servers will bind later (the member nodes'); a new network's
        validators take none of them."""
        self.data_dir = data_dir
        self.passphrase = passphrase
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        plan_path = data_dir / "network.json"
        if plan_path.exists():
            self.plan = NetworkPlan.model_validate_json(plan_path.read_text())
            self.keys = {v.name: self._load_key(v.name) for v in self.plan.validators}
            return
        if not names or len(names) < 1:
            raise ValueError("a new network needs the names of its validators")
        data_dir.mkdir(parents=True, exist_ok=True)
        self.keys = {name: self._create_key(name) for name in names}
        base = free_port(3 * len(names), avoid=reserved_ports)
        self.plan = NetworkPlan(
            chain_id=chain_id,
            block_period_s=block_period_s,
            validators=[
                ValidatorPlan(
                    name=name,
                    address=self.keys[name].address,
                    p2p_port=base + 3 * i,
                    rpc_port=base + 3 * i + 1,
                    auth_port=base + 3 * i + 2,
                    archive=name in archive,
                )
                for i, name in enumerate(names)
            ],
            funded_accounts=list(funded_accounts or []),
        )
        genesis = self.genesis()  # once: its timestamp is part of the genesis hash every validator shares
        for validator in self.plan.validators:
            self._initialise(validator, genesis)
        plan_path.write_text(self.plan.model_dump_json(indent=2))

    # -- identity and set-up ------------------------------------------------------------------------
    def _dir(self, name: str) -> Path:
        return self.data_dir / name

    def _create_key(self, name: str) -> LocalAccount:
        account: LocalAccount = Account.create()
        keystore = self._dir(name) / "keystore"
        keystore.mkdir(parents=True, exist_ok=True)
        encrypted = Account.encrypt(account.key, self.passphrase, kdf="scrypt", iterations=2**14)
        (keystore / f"validator-{account.address.lower()[2:]}.json").write_text(json.dumps(encrypted))
        password = self._dir(name) / "password.txt"
        password.write_text(self.passphrase)
        password.chmod(0o600)
        return account

    def _load_key(self, name: str) -> LocalAccount:
        keystore = next((self._dir(name) / "keystore").glob("validator-*.json"))
        loaded: LocalAccount = Account.from_key(Account.decrypt(json.loads(keystore.read_text()), self.passphrase))
        return loaded

    def enode(self, name: str) -> str:
        """The validator's node URL (its node key is its signer key, as on Besu QBFT)."""
        public = PrivateKey(bytes(self.keys[name].key)).public_key.to_bytes().hex()
        port = self.validator(name).p2p_port
        return f"enode://{public}@127.0.0.1:{port}?discport=0"

    def validator(self, name: str) -> ValidatorPlan:
        return next(v for v in self.plan.validators if v.name == name)

    def genesis(self) -> dict[str, Any]:
        """Clique genesis: the signers in ``extraData`` (32 bytes vanity, 20 per signer, 65 for the seal)."""
        signers = sorted((v.address for v in self.plan.validators), key=lambda a: int(a, 16))
        extra = "0x" + "00" * 32 + "".join(a.lower()[2:] for a in signers) + "00" * 65
        config: dict[str, Any] = {"chainId": self.plan.chain_id, **dict.fromkeys(BERLIN_FORKS, 0)}
        config["clique"] = {"period": self.plan.block_period_s, "epoch": 30_000}
        return {
            "config": config,
            "difficulty": "0x1",
            "timestamp": hex(int(time.time())),  # not 1970: a head that old reads as a node far behind
            "gasLimit": hex(BLOCK_GAS_LIMIT),
            "extraData": extra,
            "alloc": {a.lower()[2:]: {"balance": hex(GENESIS_BALANCE_WEI)} for a in self.plan.funded_accounts},
        }

    def _initialise(self, validator: ValidatorPlan, genesis: dict[str, Any]) -> None:
        directory = self._dir(validator.name)
        (directory / "genesis.json").write_text(json.dumps(genesis, indent=2))
        others = [self.enode(v.name) for v in self.plan.validators if v.name != validator.name]
        # geth 1.13 reads static peers from its TOML config (static-nodes.json is deprecated)
        (directory / "config.toml").write_text(
            "[Node.P2P]\n" + f"StaticNodes = {json.dumps(others)}\n" + f"TrustedNodes = {json.dumps(others)}\n"
        )
        (directory / "geth").mkdir(parents=True, exist_ok=True)
        (directory / "geth" / "nodekey").write_text(bytes(self.keys[validator.name].key).hex())
        result = subprocess.run(
            [str(geth_binary()), "--datadir", str(directory), "init", str(directory / "genesis.json")],
            capture_output=True,
            timeout=60,
        )
        if result.returncode != 0:
            raise ChainUnavailable(f"geth init failed for {validator.name}: {result.stderr.decode()[-500:]}")

    # -- processes ------------------------------------------------------------------------------
    def _command(self, validator: ValidatorPlan) -> list[str]:
        directory = self._dir(validator.name)
        return [
            str(geth_binary()),
            "--config",
            str(directory / "config.toml"),
            "--datadir",
            str(directory),
            "--networkid",
            str(self.plan.chain_id),
            "--port",
            str(validator.p2p_port),
            "--nat",
            "none",
            "--nodiscover",
            "--netrestrict",
            "127.0.0.0/8",
            "--maxpeers",
            str(len(self.plan.validators) + 4),
            "--http",
            "--http.addr",
            "127.0.0.1",
            "--http.port",
            str(validator.rpc_port),
            "--http.api",
            "eth,net,web3,clique,admin,txpool,miner,debug",
            "--authrpc.port",
            str(validator.auth_port),
            "--ipcdisable",
            "--syncmode",
            "full",
            "--gcmode",
            "archive" if validator.archive else "full",
            # no --mine: a validator starts sealing only once it is connected and at the others' head (see
            # ``_seal_where_ready``); sealing alone, or on an old head after a restart, forks the chain
            "--miner.etherbase",
            validator.address,
            "--miner.gasprice",
            str(GAS_PRICE_WEI),
            "--miner.gaslimit",
            str(BLOCK_GAS_LIMIT),
            # a block's transactions are chosen when its sealing starts; this is how soon one that
            # arrives meanwhile is added (geth's smallest interval: 1 s)
            "--miner.recommit",
            "1s",
            "--txpool.pricelimit",
            str(GAS_PRICE_WEI),
            "--rpc.txfeecap",
            "0",
            "--unlock",
            validator.address,
            "--password",
            str(directory / "password.txt"),
            "--allow-insecure-unlock",
            "--cache",
            "64",
            "--verbosity",
            "2",
        ]

    def start(self, names: list[str] | None = None) -> None:
        """Starts the named validators (default: every one not running)."""
        for validator in self.plan.validators:
            if names is not None and validator.name not in names:
                continue
            if self.running(validator.name):
                continue
            log = open(self._dir(validator.name) / "geth.log", "ab")
            self.processes[validator.name] = subprocess.Popen(
                self._command(validator), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            log.close()

    def running(self, name: str) -> bool:
        process = self.processes.get(name)
        return process is not None and process.poll() is None

    def kill(self, name: str) -> None:
        """SIGKILL, as a crash would (fault tests)."""
        process = self.processes.get(name)
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop(self, name: str, timeout: float = 20.0) -> None:
        """A clean stop (SIGTERM: geth writes its state out)."""
        process = self.processes.get(name)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(name)

    def close(self) -> None:
        """Stops every validator without leaving a fork behind.

        Why not just SIGTERM them all: a validator still sealing while its peers shut down seals blocks
        nobody receives, and Clique can then deadlock at the next start (each branch's next signers
        "signed recently" on the other). So sealing stops first, the heads are allowed to meet, and only
        then do the processes stop.
        """
        running = [v.name for v in self.plan.validators if self.running(v.name)]
        for name in running:
            try:
                self._ask(name, "miner_stop")
            except ChainUnavailable:
                pass
        deadline = time.monotonic() + 5
        while running and time.monotonic() < deadline:
            try:
                heads = {self._ask(n, "eth_getBlockByNumber", ["latest", False])["hash"] for n in running}
            except ChainUnavailable:
                break
            if len(heads) == 1:
                break
            time.sleep(0.2)
        for name in running:
            process = self.processes[name]
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for name in running:
            self.stop(name)

    def heal_fork(self, names: list[str]) -> int | None:
        """Rolls the named validators back to the last block they all share, when they stand on different
        branches and sealing has stopped (the Clique deadlock above, left by a crash); returns that block,
        or None if they agree. Sealed blocks on the abandoned branch are dropped; their transactions
        return to the pools and are sealed again (the outbox waits for receipts, so nothing is lost)."""
        heads = {name: self.head(name) for name in names}
        low = min(heads.values())
        at_low = {self._ask(n, "eth_getBlockByNumber", [hex(low), False])["hash"] for n in names}
        if len(at_low) == 1 and len(set(heads.values())) == 1:
            return None
        common = low
        while common > 0:
            hashes = {self._ask(n, "eth_getBlockByNumber", [hex(common), False])["hash"] for n in names}
            if len(hashes) == 1:
                break
            common -= 1
        for name in names:
            if heads[name] > common:
                self._ask(name, "debug_setHead", [hex(common)], timeout=30)
        return common

    # -- what the network says --------------------------------------------------------------------
    def rpc_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.validator(name).rpc_port}"

    @property
    def rpc_urls(self) -> dict[str, str]:
        return {v.name: self.rpc_url(v.name) for v in self.plan.validators}

    def _ask(self, name: str, method: str, params: list[Any] | None = None, timeout: float = 2.0) -> Any:
        rpc = JsonRpcReader(self.rpc_url(name), timeout=timeout)
        try:
            response = rpc.request(method, params or [])
        finally:
            rpc.close()
        if "error" in response:
            raise ChainUnavailable(f"{name}: {method} failed: {response['error']}")
        return response["result"]

    def status(self, name: str) -> ValidatorStatus:
        """Peers, head and whether the validator is one of the signers and sealing."""
        found = validator_status(name, self.rpc_url(name), self.validator(name).address)
        found.running = found.head is not None or self.running(name)
        return found

    def _seal_where_ready(self, statuses: list[ValidatorStatus], names: list[str]) -> None:
        """Starts sealing on every named validator that answers, has its key unlocked, is connected to the
        others named and is at their highest head (a restarted validator first catches up: sealing on an old
        head would fork).

        A network where none seals yet starts all of them together, once all are ready. Why: geth treats a
        node that has never synced or sealed as syncing and discards blocks its peers propagate; a block 1
        sealed while another validator is in that state is never fetched (the parent's difficulty it
        announces is the genesis', so no sync starts), and with the sealer then barred by Clique's
        "signed recently" rule, nobody seals block 2. Starting to seal marks a node synced. And a key still
        being unlocked when sealing starts fails the seal, which geth does not retry while no transaction
        arrives."""
        answering = [s for s in statuses if s.head is not None]
        if not answering:
            return
        top = max(s.head or 0 for s in answering)
        ready = [
            found
            for found in answering
            if not found.signing
            and (found.peers or 0) >= len(names) - 1
            and (found.head or 0) >= top
            and self._unlocked(found.name)
        ]
        if not any(s.signing for s in answering) and len(ready) < len(names):
            return  # a fresh start: all together (see above)
        for found in ready:
            try:
                self._ask(found.name, "miner_start", [])
            except ChainUnavailable:
                pass

    def _unlocked(self, name: str) -> bool:
        """Whether the validator's key is unlocked (geth unlocks it after its RPC is already up)."""
        try:
            self._ask(name, "eth_sign", [self.validator(name).address, "0x00"])
        except ChainUnavailable:
            return False
        return True

    def head(self, name: str) -> int:
        return int(self._ask(name, "eth_blockNumber"), 16)

    def wait_until_agreeing(self, timeout: float = 60.0, *, names: list[str] | None = None) -> int:
        """Waits until the named validators (default: all) answer, are connected to each other, have sealed
        a block past ``since`` and agree on it; returns that block number."""
        names = names or [v.name for v in self.plan.validators]
        deadline = time.monotonic() + timeout
        start_heads: dict[str, int] = {}
        last_error = "no answer yet"
        stalled_since: float | None = None
        healed = False
        #: (the heads, since when) while the validators disagree: branches that stop growing heal as a stall does
        split: tuple[tuple[int, ...], float] | None = None
        while time.monotonic() < deadline:
            for name in names:
                process = self.processes.get(name)
                if process is not None and process.poll() is not None:
                    raise ChainUnavailable(
                        f"validator {name} exited with code {process.returncode}; see {self._dir(name) / 'geth.log'}"
                    )
            try:
                statuses = [self.status(name) for name in names]
                self._seal_where_ready(statuses, names)
                if any(s.head is None for s in statuses):
                    raise ChainUnavailable("a validator does not answer yet")
                for s in statuses:
                    start_heads.setdefault(s.name, s.head or 0)
                if any((s.peers or 0) < len(names) - 1 for s in statuses):
                    raise ChainUnavailable(f"peers: {[(s.name, s.peers) for s in statuses]}")
                if not all(s.signing for s in statuses):
                    raise ChainUnavailable(f"not all sealing yet: {[(s.name, s.head) for s in statuses]}")
                common = min(s.head or 0 for s in statuses)
                if common <= max(start_heads.values()):
                    stalled_since = stalled_since or time.monotonic()
                    if time.monotonic() - stalled_since > 4 * self.plan.block_period_s + 4:
                        if not healed:
                            healed = self.heal_fork(names) is not None
                        if not healed:  # all agree and all say they seal, yet none does: restart sealing
                            for name in names:
                                self._ask(name, "miner_stop")
                                self._ask(name, "miner_start", [])
                        stalled_since = time.monotonic()
                    raise ChainUnavailable(f"waiting for a new block (heads {[s.head for s in statuses]})")
                hashes = {self._ask(name, "eth_getBlockByNumber", [hex(common), False])["hash"] for name in names}
                if len(hashes) == 1:
                    return common
                last_error = f"validators disagree on block {common}"
                # sealing on two branches can deadlock (each validator has sealed recently on its own branch
                # and waits for the others): once no branch has grown past the split for a while, roll back
                heads = tuple(s.head or 0 for s in statuses)
                if split is None or split[0] != heads:
                    split = (heads, time.monotonic())
                elif time.monotonic() - split[1] > 4 * self.plan.block_period_s + 4:
                    self.heal_fork(names)
                    split = None
            except ChainUnavailable as exc:
                last_error = str(exc)
            time.sleep(0.2)
        raise ChainUnavailable(f"the validators did not agree within {timeout:.0f}s: {last_error}")
