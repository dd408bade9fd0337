"""``medledger consortium up``: the local consortium — one chain, one process per member node.

The chain is the embedded development chain (managed anvil, state in ``<data>/chain``); each
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
from typing import Annotated

import httpx
import typer

from ledger_api.chain.devnet import DEFAULT_MEMBERS, _passphrase, start_devnet
from ledger_api.cli.output import console, reported_errors
from ledger_api.errors import LedgerError

app = typer.Typer(help="Run the local consortium.", no_args_is_help=True)


class StartupFailed(LedgerError):
    status = 503
    code = "startup-failed"
    title = "A member node did not start"


def _node_env(data: Path, slug: str, port: int, rpc_port: int) -> dict[str, str]:
    node_dir = data / "nodes" / slug
    node_dir.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "MEDLEDGER_MODE": "dev",
        "MEDLEDGER_NODE_NAME": slug,
        "MEDLEDGER_DATA_DIR": str(node_dir),
        "MEDLEDGER_KEYSTORE_PATH": str(data / "chain" / "keys" / f"{slug}.json"),
        "MEDLEDGER_KEYSTORE_PASSPHRASE": _passphrase(),
        "MEDLEDGER_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "MEDLEDGER_CHAIN": json.dumps({"rpc_url": f"http://127.0.0.1:{rpc_port}",
                                       "manifest_path": str(data / "chain" / "deployment.json")}),
        "MEDLEDGER_AUTH": json.dumps({"siwe_domain": f"127.0.0.1:{port}"}),
    }  # fmt: skip


def _wait_ready(urls: dict[str, str], processes: dict[str, subprocess.Popen], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    pending = dict(urls)
    while pending:
        for slug, url in list(pending.items()):
            if processes[slug].poll() is not None:
                raise StartupFailed(f"{slug} exited with code {processes[slug].returncode}; see its node.log")
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
    data_dir: Annotated[Path, typer.Option(help="Where the chain and every node keep their data.")] = Path("data"),
    members: Annotated[int, typer.Option(min=1, max=len(DEFAULT_MEMBERS), help="How many member nodes.")] = 3,
    rpc_port: Annotated[int, typer.Option(help="Port of the local chain.")] = 8545,
    base_port: Annotated[int, typer.Option(help="Port of the first member node; the next ones follow.")] = 8601,
) -> None:
    """Starts the chain and the member nodes, prints where they are, and runs until Ctrl-C."""
    started = time.monotonic()
    with reported_errors():
        devnet = start_devnet(data_dir / "chain", port=rpc_port, base_port=base_port)
    processes: dict[str, subprocess.Popen] = {}
    try:
        urls = {}
        for i, (slug, _) in enumerate(DEFAULT_MEMBERS[:members]):
            port = base_port + i
            env = _node_env(data_dir, slug, port, rpc_port)
            log = open(data_dir / "nodes" / slug / "node.log", "ab")  # noqa: SIM115 - owned by the child
            processes[slug] = subprocess.Popen([sys.executable, "-m", "ledger_api.cli", "serve", "--port", str(port)],
                                               env=env, stdout=log, stderr=subprocess.STDOUT,
                                               start_new_session=True)  # fmt: skip
            urls[slug] = f"http://127.0.0.1:{port}"
        with reported_errors():
            _wait_ready(urls, processes, timeout=60)
        console.print(f"[bold]MedLedger local consortium[/bold]: chain {devnet.manifest.chain_id} at "
                      f"{devnet.backend.url}", soft_wrap=True)  # fmt: skip
        for slug, name in DEFAULT_MEMBERS[:members]:
            console.print(f"  {name}\n    node {urls[slug]}  API docs {urls[slug]}/docs\n"
                          f"    account {devnet.identities[slug].address}", soft_wrap=True)  # fmt: skip
        console.print(f"  Consortium Audit Office (auditor)\n    account {devnet.identities['auditor'].address}",
                      soft_wrap=True)
        _state_file(data_dir).write_text(json.dumps({
            "pid": os.getpid(), "chain": devnet.backend.url, "chain_id": devnet.manifest.chain_id,
            "nodes": {slug: {"name": name, "url": urls[slug], "account": devnet.identities[slug].address}
                      for slug, name in DEFAULT_MEMBERS[:members]},
        }, indent=2))  # fmt: skip
        console.print(f"ready in {time.monotonic() - started:.1f}s; data in {data_dir}; press Ctrl-C to stop",
                      soft_wrap=True)
        console.file.flush()  # a piped stdout is block-buffered: supervisors must see "ready" now
        stop = {"now": False}
        signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
        try:
            while not stop["now"]:
                for slug, process in processes.items():
                    if process.poll() is not None:
                        console.print(f"[red]{slug} stopped (code {process.returncode}); see its node.log[/red]")
                        stop["now"] = True
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
    finally:
        for process in processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        devnet.backend.close()
        _state_file(data_dir).unlink(missing_ok=True)
        console.print("consortium stopped; chain state and databases kept")
        console.file.flush()


def _state_file(data_dir: Path) -> Path:
    return data_dir / "consortium.json"


def _running(data_dir: Path) -> dict:
    path = _state_file(data_dir)
    if not path.exists():
        raise StartupFailed(f"no local consortium is running from {data_dir}")
    state = json.loads(path.read_text())
    try:
        os.kill(state["pid"], 0)
    except ProcessLookupError:
        path.unlink(missing_ok=True)
        raise StartupFailed(f"the consortium that ran from {data_dir} is gone (stale state removed)") from None
    return state


@app.command()
def status(
    data_dir: Annotated[Path, typer.Option(help="The data directory `up` runs from.")] = Path("data"),
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Shows the running local consortium: the chain and each member node's readiness."""
    from ledger_api.cli.output import print_listing

    with reported_errors():
        state = _running(data_dir)
        rows = []
        for slug, info in state["nodes"].items():
            try:
                ready = httpx.get(f"{info['url']}/readyz", timeout=3)
                health = "ready" if ready.status_code == 200 else f"not ready: {ready.json().get('checks')}"
            except httpx.HTTPError:
                health = "unreachable"
            rows.append({"member": slug, "name": info["name"], "url": info["url"], "account": info["account"],
                         "status": health})  # fmt: skip
        print_listing(rows, as_json=as_json, title=f"Local consortium (chain {state['chain_id']} at {state['chain']})",
                      columns=("member", "node", "status"),
                      row=lambda r: (r["name"], r["url"], r["status"]))  # fmt: skip


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
