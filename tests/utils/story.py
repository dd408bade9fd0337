"""The demo story (``scripts/demo.py``) against a consortium the test starts and stops itself, so that
what the story left on chain can still be read after it (the demo stops only a consortium it started)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from ledger_api.cli.consortium import up_command

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class StoryRun:
    data: Path
    output: str
    returncode: int

    @property
    def rpc_url(self) -> str:
        return str(json.loads((self.data / "consortium.json").read_text())["chain"])

    @property
    def patients(self) -> list[str]:
        """The accounts the story's patient used (it prints them)."""
        return sorted(set(re.findall(r"patient account (0x[0-9a-fA-F]{40})", self.output)))


def _ready(data: Path) -> bool:
    state = data / "consortium.json"
    try:
        nodes = json.loads(state.read_text())["nodes"]
        return len(nodes) >= 3 and all(
            httpx.get(f"{n['url']}/readyz", timeout=3).status_code == 200 for n in nodes.values()
        )
    except (OSError, httpx.HTTPError, ValueError, KeyError):
        return False


@contextmanager
def story_on_consortium(
    data: Path,
    *,
    rpc_port: int,
    base_port: int,
    network: str = "anvil",
    imaging_mb: int = 4,
    start_timeout_s: int = 180,
) -> Iterator[StoryRun]:
    """Starts ``consortium up``, runs the demo story against it, yields the run, then stops the consortium."""
    log = data.parent / "consortium-up.log"
    with open(log, "wb") as sink:
        supervisor = subprocess.Popen(
            up_command(data, rpc_port=rpc_port, base_port=base_port, extra=("--network", network)),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + start_timeout_s
        while not _ready(data):
            assert supervisor.poll() is None, f"the consortium exited while starting: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"the consortium did not start: {log.read_text()[-3000:]}"
            time.sleep(0.5)
        done = subprocess.run(
            [
                sys.executable,
                str(ROOT / "scripts" / "demo.py"),
                "--data-dir",
                str(data),
                "--imaging-mb",
                str(imaging_mb),
                "--rpc-port",
                str(rpc_port),
                "--base-port",
                str(base_port),
                "--network",
                network,
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        yield StoryRun(data, done.stdout + done.stderr, done.returncode)
    finally:
        supervisor.send_signal(signal.SIGINT)
        try:
            supervisor.wait(timeout=90)
        except subprocess.TimeoutExpired:
            supervisor.kill()
