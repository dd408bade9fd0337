"""`medledger consortium up` (what `make run` runs): real processes, ready nodes, clean stop, resumable."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from ledger_api.chain.backends import free_port


class Supervised:
    """A running ``consortium up`` whose output is collected by a thread (never blocks the test)."""

    def __init__(self, data: Path, rpc: int, base: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ledger_api.cli", "consortium", "up", "--data-dir", str(data), "--rpc-port",
             str(rpc), "--base-port", str(base), "--members", "2"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(iter(self.process.stdout.readline, "")),
                                        daemon=True)  # fmt: skip
        self._reader.start()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"no {text!r} in:\n{self.output}")
            time.sleep(0.1)

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)
        self._reader.join(timeout=10)
        return self.output


@pytest.mark.slow
def test_local_consortium_starts_serves_stops_and_resumes(tmp_path: Path) -> None:
    rpc, base = free_port(), free_port()
    first = Supervised(tmp_path, rpc, base)
    try:
        first.wait_for("press Ctrl-C")
        assert "Dapeng New District People's Hospital" in first.output
        assert f"http://127.0.0.1:{base}/docs" in first.output
        assert httpx.get(f"http://127.0.0.1:{base}/readyz", timeout=5).json()["status"] == "ready"
        assert httpx.get(f"http://127.0.0.1:{base + 1}/openapi.json", timeout=5).status_code == 200
    finally:
        output = first.stop()
    assert "consortium stopped" in output
    assert (tmp_path / "chain" / "anvil-state.json").exists() and (tmp_path / "nodes" / "dapeng" / "ledger.db").exists()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{base}/healthz", timeout=1)
    again = Supervised(tmp_path, rpc, base)
    try:
        again.wait_for("press Ctrl-C")
        assert httpx.get(f"http://127.0.0.1:{base + 1}/readyz", timeout=5).status_code == 200
        status = subprocess.run([sys.executable, "-m", "ledger_api.cli", "consortium", "status", "--data-dir",
                                 str(tmp_path), "--json"], capture_output=True, text=True, timeout=60)  # fmt: skip
        assert [n["status"] for n in json.loads(status.stdout)] == ["ready", "ready"], status.stdout
        down = subprocess.run([sys.executable, "-m", "ledger_api.cli", "consortium", "down", "--data-dir",
                               str(tmp_path)], capture_output=True, text=True, timeout=90)  # fmt: skip
        assert "consortium stopped" in down.stdout, down.stdout + down.stderr
        assert again.process.wait(timeout=30) is not None
    finally:
        again.stop()
    gone = subprocess.run([sys.executable, "-m", "ledger_api.cli", "consortium", "status", "--data-dir",
                           str(tmp_path)], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert gone.returncode != 0 and "no local consortium is running" in gone.stderr
