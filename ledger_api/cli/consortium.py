"""``medledger consortium up``: the local consortium — one chain, one process per member node.

The chain is the embedded development chain (managed anvil, state in ``<data>/chain``), or with
``--network clique`` the BFT test network (``chain.clique``: a validator per hospital and one for the
audit office, each member node talking to its own validator, the others as fallbacks); each
member node is its own ``medledger serve`` process with its own port, SQLite database, keystore
and log file under ``<data>/nodes/<member>``. Ctrl-C stops everything; a second start continues
with the same chain, keys and databases.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ledger_api.chain.defaults import (
    AUDITOR,
    DEFAULT_BREAK_GLASS_LIMIT,
    DEFAULT_BREAK_GLASS_WINDOW,
    DEFAULT_MEMBERS,
    DEFAULT_NAMES_ZH,
)
from ledger_api.cli.output import console, reported_errors
from ledger_api.errors import LedgerError

app = typer.Typer(help="Run the local consortium.", no_args_is_help=True)


#: the chains ``up`` can run: the embedded development chain, or the 4-validator BFT test network
NETWORKS = ("anvil", "clique")
#: blocks a member waits on the Clique network before a transaction counts (see chain.transactions)
CLIQUE_CONFIRMATIONS = 2
#: on a network with real blocks, access entries (anchored strictly in order) go as Merkle batches: one
#: at a time, a member could anchor no more than an entry every block or two
NETWORK_OUTBOX = {"batch_size": 64, "batch_delay_s": 1.0}


def up_command(data_dir: Path, *, rpc_port: int, base_port: int, extra: tuple[str, ...] = ()) -> list[str]:
    """The command line of ``medledger consortium up`` in this Python (for supervisors: the demo, the
    benchmarks, the tests)."""
    options = ["--data-dir", str(data_dir), "--rpc-port", str(rpc_port), "--base-port", str(base_port)]
    return [sys.executable, "-m", "ledger_api.cli", "consortium", "up", *options, *extra]


#: how much of a node's log a failed start shows (its log names no secret or personal data)
LOG_LINES_SHOWN = 12


class StartupFailed(LedgerError):
    status = 503
    code = "startup-failed"
    title = "A member node did not start"


class NotRunning(LedgerError):
    """No local consortium runs from this data directory (``status`` and ``down`` say so plainly)."""

    status = 404
    code = "not-running"
    title = "No local consortium is running"


class MemberConfig(BaseModel):
    """One member node: its dev slug (dapeng, kuichong, nanao), port and database."""

    model_config = ConfigDict(extra="forbid")
    slug: str = Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")
    port: int = Field(ge=1, le=65535)
    database_url: str | None = None  # default: SQLite in the node's data directory
    keystore: Path | None = None  # external chain: the member's identity keystore
    #: this hospital's records officers, who countersign legal erasure orders: staff id -> Ethereum account
    records_officers: dict[str, str] = Field(default_factory=dict, max_length=100)
    #: the hospital's name in Chinese (its English name is the one on chain); default: the dev members' own
    name_zh: str | None = Field(default=None, max_length=200)


class ChainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rpc_url: str | None = None  # an external chain (Besu QBFT, GoQuorum); None = a chain `up` runs itself
    #: the chain `up` runs: anvil (embedded, one process) or the 4-validator Clique network
    network: Literal["anvil", "clique"] = "anvil"
    rpc_port: int = Field(8545, ge=1, le=65535)  # the embedded chain's port
    #: the Clique network's block period
    block_period_s: int = Field(1, ge=1, le=60)
    manifest: Path | None = None  # external chain: its deployment manifest
    #: the embedded chain's deployment: break-glass declarations one member may make per window (on chain)
    break_glass_limit: int = Field(DEFAULT_BREAK_GLASS_LIMIT, ge=1, le=2**32 - 1)
    break_glass_window_s: int = Field(DEFAULT_BREAK_GLASS_WINDOW, ge=1, le=2**32 - 1)


class RetentionYears(BaseModel):
    """The consortium's retention rules (医疗机构病历管理规定: outpatient 15, inpatient 30 years at least)."""

    model_config = ConfigDict(extra="forbid")
    outpatient_years: int = Field(15, ge=0, le=200)
    inpatient_years: int = Field(30, ge=0, le=200)
    other_years: int = Field(30, ge=0, le=200)


class ConsentRequestLimits(BaseModel):
    """The consortium's limits on consent requests (see ``core.config.ConsentRequestSettings``)."""

    model_config = ConfigDict(extra="forbid")
    max_open_per_patient: int = Field(5, ge=1, le=100)
    answer_within_days: int = Field(14, ge=1, le=365)
    max_access_days: int = Field(365, ge=1, le=3650)


class ConsortiumConfig(BaseModel):
    """Everything `consortium up` runs, in one file (JSON)."""

    model_config = ConfigDict(extra="forbid")
    data_dir: Path = Path("data")
    chain: ChainConfig = ChainConfig()
    #: how long every member keeps records (years per kind; the same rules for the whole consortium)
    retention: RetentionYears = RetentionYears()
    #: hospitals' requests for consent: the same limits for every member
    consent_requests: ConsentRequestLimits = ConsentRequestLimits()
    members: list[MemberConfig]

    @model_validator(mode="after")
    def _check(self) -> ConsortiumConfig:
        if len({m.slug for m in self.members}) != len(self.members) or len({m.port for m in self.members}) != len(
            self.members
        ):
            raise ValueError("members need distinct slugs and ports")
        if self.chain.rpc_url is None:
            unknown = {m.slug for m in self.members} - {slug for slug, _ in DEFAULT_MEMBERS}
            if unknown:
                raise ValueError(f"the embedded chain has dev members {[s for s, _ in DEFAULT_MEMBERS]}, not {unknown}")
        elif self.chain.manifest is None or any(m.keystore is None for m in self.members):
            raise ValueError("an external chain needs chain.manifest and every member's keystore")
        return self

    @classmethod
    def defaults(
        cls,
        data_dir: Path,
        members: int,
        rpc_port: int,
        base_port: int,
        break_glass_limit: int = DEFAULT_BREAK_GLASS_LIMIT,
        network: Literal["anvil", "clique"] = "anvil",
    ) -> ConsortiumConfig:
        return cls(
            data_dir=data_dir,
            chain=ChainConfig(rpc_port=rpc_port, break_glass_limit=break_glass_limit, network=network),
            members=[
                MemberConfig(slug=slug, port=base_port + i) for i, (slug, _) in enumerate(DEFAULT_MEMBERS[:members])
            ],
        )


def lone_member_env(data_dir: Path, *, rpc_port: int, port: int) -> dict[str, str]:
    """The environment of one member node ("dapeng") on the dev chain of ``data_dir`` (benchmarks run one)."""
    from ledger_api.chain.devnet import dev_passphrase

    config = ConsortiumConfig(
        data_dir=data_dir, chain=ChainConfig(rpc_port=rpc_port), members=[MemberConfig(slug="dapeng", port=port)]
    )
    chain = data_dir / "chain"
    return _node_env(
        config,
        config.members[0],
        f"http://127.0.0.1:{rpc_port}",
        chain / "deployment.json",
        chain / "keys" / "dapeng.json",
        dev_passphrase(),
    )


def _node_env(
    config: ConsortiumConfig,
    member: MemberConfig,
    rpc_url: str,
    manifest: Path,
    keystore: Path,
    passphrase: str,
    chain: dict[str, Any] | None = None,
    member_names: dict[str, dict[str, str]] | None = None,
) -> dict[str, str]:
    node_dir = config.data_dir / "nodes" / member.slug
    node_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "MEDLEDGER_MODE": "dev",
        "MEDLEDGER_NODE_NAME": member.slug,
        "MEDLEDGER_DATA_DIR": str(node_dir),
        "MEDLEDGER_KEYSTORE_PATH": str(keystore),
        "MEDLEDGER_KEYSTORE_PASSPHRASE": passphrase,
        "MEDLEDGER_PUBLIC_URL": f"http://127.0.0.1:{member.port}",
        "MEDLEDGER_CHAIN": json.dumps({"rpc_url": rpc_url, "manifest_path": str(manifest), **(chain or {})}),
        "MEDLEDGER_AUTH": json.dumps({"siwe_domain": f"127.0.0.1:{member.port}"}),
        "MEDLEDGER_RETENTION": json.dumps({**config.retention.model_dump(), "officers": member.records_officers}),
        "MEDLEDGER_CONSENT_REQUESTS": json.dumps(config.consent_requests.model_dump()),
        "MEDLEDGER_MEMBER_NAMES": json.dumps(member_names or {}),
    }
    if member.database_url:
        env["MEDLEDGER_DATABASE_URL"] = member.database_url
    return env


def wait_ready(
    urls: dict[str, str],
    processes: dict[str, subprocess.Popen[bytes]],
    timeout: float,
    logs: dict[str, Path] | None = None,
) -> None:
    """Waits until every node answers /readyz with 200; ``StartupFailed`` if one exits or time runs out.
    The error ends with the last lines of the node's log (``logs``): why it stopped, where it is read."""
    import httpx

    deadline = time.monotonic() + timeout
    pending = dict(urls)
    while pending:
        for slug, url in list(pending.items()):
            if processes[slug].poll() is not None:
                log = (logs or {}).get(slug)
                last = log.read_text(errors="replace").splitlines()[-LOG_LINES_SHOWN:] if log and log.exists() else []
                raise StartupFailed(
                    f"{slug} exited with code {processes[slug].returncode}; see its node.log"
                    + "".join(f"\n  {line}" for line in last)
                )
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    del pending[slug]
            except httpx.HTTPError:
                pass
        if time.monotonic() > deadline:
            raise StartupFailed(f"not ready within {timeout:.0f}s: {', '.join(pending)}")
        time.sleep(0.2)


@app.command()
def up(
    config_file: Annotated[
        Path | None,
        typer.Option("--config", exists=True, dir_okay=False, help="One JSON file: data_dir, chain, members."),
    ] = None,
    data_dir: Annotated[Path, typer.Option(help="Where the chain and every node keep their data.")] = Path("data"),
    members: Annotated[int, typer.Option(min=1, max=len(DEFAULT_MEMBERS), help="How many member nodes.")] = 3,
    rpc_port: Annotated[int, typer.Option(help="Port of the local chain (anvil).")] = 8545,
    network: Annotated[
        str,
        typer.Option(
            help="The chain: anvil (embedded, one process) or clique (a geth validator per hospital and one "
            "for the audit office; needs scripts/build-chain-engine). qbft names the production consensus: "
            "its engine cannot be built here, see the README."
        ),
    ] = "anvil",
    base_port: Annotated[int, typer.Option(help="Port of the first member node; the next ones follow.")] = 8601,
    break_glass_limit: Annotated[
        int,
        typer.Option(
            min=1,
            help="Break-glass declarations one member may make per "
            "day (a consortium setting, fixed at the first deployment).",
        ),
    ] = (DEFAULT_BREAK_GLASS_LIMIT),
) -> None:
    """Starts the chain and the member nodes, prints where they are, and runs until Ctrl-C.

    With --config, everything comes from that file (members, ports, database URLs, and an external
    chain's RPC URL with its manifest and the members' keystores); otherwise the flags describe
    the embedded default: managed anvil, dev identities, SQLite.
    """
    from ledger_api.chain.devnet import dev_passphrase, start_devnet, start_network

    started = time.monotonic()
    with reported_errors():
        if network not in NETWORKS:
            raise ValueError(
                f"--network {network}: this machine runs {' or '.join(NETWORKS)}"
                + (
                    " (QBFT needs GoQuorum, which the Go module proxy refuses here; clique runs the same "
                    "4-validator consortium on geth: see the README)"
                    if network == "qbft"
                    else ""
                )
            )
        config = (
            ConsortiumConfig.model_validate_json(config_file.read_text())
            if config_file
            else ConsortiumConfig.defaults(
                data_dir,
                members,
                rpc_port,
                base_port,
                break_glass_limit,
                network="clique" if network == "clique" else "anvil",
            )
        )
    data_dir = config.data_dir
    names = dict(DEFAULT_MEMBERS)
    devnet = None
    member_chain: dict[str, dict[str, Any]] = {}
    if config.chain.rpc_url is None:
        endpoints = {m.slug: f"http://127.0.0.1:{m.port}" for m in config.members}
        with reported_errors():
            if config.chain.network == "clique":
                devnet = start_network(
                    data_dir / "chain",
                    endpoints=endpoints,
                    block_period_s=config.chain.block_period_s,
                    break_glass_limit=config.chain.break_glass_limit,
                    break_glass_window=config.chain.break_glass_window_s,
                )
            else:
                devnet = start_devnet(
                    data_dir / "chain",
                    port=config.chain.rpc_port,
                    endpoints=endpoints,
                    break_glass_limit=config.chain.break_glass_limit,
                    break_glass_window=config.chain.break_glass_window_s,
                )
        rpc_url, manifest_path, chain_id = (
            devnet.backend.url,
            data_dir / "chain" / "deployment.json",
            devnet.manifest.chain_id,
        )
        if devnet.network is not None:
            # every member talks to its own validator; the others are its fallbacks while that one is down
            urls = devnet.network.rpc_urls
            for m in config.members:
                member_chain[m.slug] = {
                    "rpc_url": urls[m.slug],
                    "fallback_urls": [u for slug, u in urls.items() if slug != m.slug],
                    "confirmations": CLIQUE_CONFIRMATIONS,
                    "validator_votes": "clique",
                }
            rpc_url = urls["auditor"]  # what the audit office reads: its own (archive) validator
        keystores = {m.slug: data_dir / "chain" / "keys" / f"{m.slug}.json" for m in config.members}
        passphrase = dev_passphrase()
        accounts = {slug: identity.address for slug, identity in devnet.identities.items()}
    else:
        rpc_url, external_manifest = config.chain.rpc_url, config.chain.manifest
        assert external_manifest is not None
        manifest_path = external_manifest
        chain_id = json.loads(manifest_path.read_text())["chain_id"]
        keystores = {m.slug: m.keystore for m in config.members if m.keystore is not None}
        passphrase = os.environ.get("MEDLEDGER_KEYSTORE_PASSPHRASE", "")
        accounts = {slug: json.loads(path.read_text())["address"] for slug, path in keystores.items()}
    names_zh = {**DEFAULT_NAMES_ZH, **{m.slug: m.name_zh for m in config.members if m.name_zh}}
    english = {**names, AUDITOR[0]: AUDITOR[1]}
    member_names = {
        account.lower(): {"en": english.get(slug, slug), **({"zh": names_zh[slug]} if slug in names_zh else {})}
        for slug, account in accounts.items()
    }
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        urls = {}
        for member in config.members:
            own = member_chain.get(member.slug, {})
            env = _node_env(
                config,
                member,
                own.get("rpc_url", rpc_url),
                manifest_path,
                keystores[member.slug],
                passphrase,
                chain={k: v for k, v in own.items() if k != "rpc_url"},
                member_names=member_names,
            )
            if own:
                env["MEDLEDGER_OUTBOX"] = json.dumps(NETWORK_OUTBOX)
            log = open(data_dir / "nodes" / member.slug / "node.log", "ab")
            processes[member.slug] = subprocess.Popen(
                [sys.executable, "-m", "ledger_api.cli", "serve", "--port", str(member.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            urls[member.slug] = f"http://127.0.0.1:{member.port}"
        with reported_errors():
            wait_ready(
                urls,
                processes,
                timeout=60,
                logs={m.slug: data_dir / "nodes" / m.slug / "node.log" for m in config.members},
            )
        console.print(f"[bold]MedLedger local consortium[/bold]: chain {chain_id} at {rpc_url}")
        if devnet is not None and devnet.network is not None:
            for slug, url in devnet.network.rpc_urls.items():
                console.print(f"  validator {slug}: {url} (Clique, {devnet.network.plan.block_period_s} s blocks)")
        for member in config.members:
            name = names.get(member.slug, member.slug)
            console.print(
                f"  {name}\n    node {urls[member.slug]}  patient portal {urls[member.slug]}/portal/  "
                f"API docs {urls[member.slug]}/docs\n    account {accounts[member.slug]}"
            )
        if "auditor" in accounts:
            console.print(f"  Consortium Audit Office (auditor)\n    account {accounts['auditor']}")
        _state_file(data_dir).write_text(
            json.dumps(
                {
                    "pid": os.getpid(),
                    "chain": rpc_url,
                    "chain_id": chain_id,
                    "network": config.chain.network if config.chain.rpc_url is None else "external",
                    "validators": (
                        {
                            v.name: {
                                "url": devnet.network.rpc_url(v.name),
                                "address": v.address,
                                "pid": devnet.network.processes[v.name].pid,
                            }
                            for v in devnet.network.plan.validators
                        }
                        if devnet is not None and devnet.network is not None
                        else {}
                    ),
                    "nodes": {
                        m.slug: {
                            "name": names.get(m.slug, m.slug),
                            "url": urls[m.slug],
                            "rpc_url": member_chain.get(m.slug, {}).get("rpc_url", rpc_url),
                            "account": accounts[m.slug],
                            "pid": processes[m.slug].pid,
                        }
                        for m in config.members
                    },
                },
                indent=2,
            )
        )
        console.print(f"ready in {time.monotonic() - started:.1f}s; data in {data_dir}; press Ctrl-C to stop")
        console.file.flush()  # a piped stdout is block-buffered: supervisors must see "ready" now
        stop = {"now": False}
        # Ctrl-C and SIGTERM both stop it, set here rather than inherited: a process started in the
        # background of a non-interactive shell inherits SIGINT ignored, and Python then never raises
        # KeyboardInterrupt (a consortium that cannot be stopped with the signal its supervisor sends)
        signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
        signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
        while not stop["now"]:
            for slug, process in processes.items():
                if process.poll() is not None:
                    console.print(f"[red]{slug} stopped (code {process.returncode}); see its node.log[/red]")
                    stop["now"] = True
            time.sleep(0.5)
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        if devnet is not None:
            devnet.close()
        _state_file(data_dir).unlink(missing_ok=True)
        console.print("consortium stopped; chain state and databases kept")
        console.file.flush()


def _state_file(data_dir: Path) -> Path:
    return data_dir / "consortium.json"


def _running(data_dir: Path) -> dict[str, Any]:
    path = _state_file(data_dir)
    if not path.exists():
        raise NotRunning(
            f"no local consortium is running from {data_dir}: start one with `make run` "
            f"(or `medledger consortium up --data-dir {data_dir}`)"
        )
    state: dict[str, Any] = json.loads(path.read_text())
    try:
        os.kill(state["pid"], 0)
    except ProcessLookupError:
        path.unlink(missing_ok=True)
        raise NotRunning(
            f"the consortium that ran from {data_dir} is gone (stale state removed); start it again with `make run`"
        ) from None
    return state


@app.command()
def status(
    data_dir: Annotated[Path, typer.Option(help="The data directory `up` runs from.")] = Path("data"),
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Shows the running local consortium: each member node's readiness and, on the Clique network, each
    validator's peers, head and whether it is sealing."""
    from ledger_api.cli.output import print_listing

    with reported_errors():
        state = _running(data_dir)
        import httpx

        rows = []
        for slug, info in state["nodes"].items():
            try:
                ready = httpx.get(f"{info['url']}/readyz", timeout=3)
                health = "ready" if ready.status_code == 200 else f"not ready: {ready.json().get('checks')}"
            except httpx.HTTPError:
                health = "unreachable"
            rows.append(
                {"member": slug, "name": info["name"], "url": info["url"], "account": info["account"], "status": health}
            )
        validators = state.get("validators", {})
        if validators:  # imported only here: the chain client takes ~0.7 s to import, the rest needs none of it
            from ledger_api.chain.clique import validator_status
        for name, info in validators.items():
            found = validator_status(name, info["url"], info["address"])
            health = (
                "down"
                if found.head is None
                else f"head {found.head}, {found.peers} peers, {'signing' if found.signing else 'not signing'}"
            )
            rows.append(
                {
                    "validator": name,
                    "name": f"validator {name}",
                    "url": info["url"],
                    "address": info["address"],
                    "peers": found.peers,
                    "head": found.head,
                    "signing": found.signing,
                    "status": health,
                }
            )
        print_listing(
            rows,
            as_json=as_json,
            title=f"Local consortium (chain {state['chain_id']} at {state['chain']})",
            columns=("member", "node", "status"),
            row=lambda r: (r["name"], r["url"], r["status"]),
        )


@app.command()
def down(data_dir: Annotated[Path, typer.Option(help="The data directory `up` runs from.")] = Path("data")) -> None:
    """Stops the running local consortium cleanly (as Ctrl-C would); its data stays."""
    with reported_errors():
        state = _running(data_dir)
        os.kill(state["pid"], signal.SIGTERM)
        deadline = time.monotonic() + 60
        while _state_file(data_dir).exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        console.print("consortium stopped" if not _state_file(data_dir).exists() else "stop requested; still stopping")
