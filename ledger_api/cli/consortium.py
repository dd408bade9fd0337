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
        console.print("consortium stopped; chain state and databases kept")
        console.file.flush()
