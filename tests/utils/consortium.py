"""A real ``medledger consortium up`` (what ``make run`` runs) supervised by a test."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

from ledger_api.cli.consortium import up_command


class Supervised:
    """A running ``consortium up`` whose output is collected by a thread (never blocks the test)."""

    def __init__(self, data: Path, rpc: int, base: int, members: int = 2, *extra: str) -> None:
        self.process = subprocess.Popen(
            up_command(data, rpc_port=rpc, base_port=base, extra=("--members", str(members), *extra)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(
            target=lambda: self.lines.extend(iter(self.process.stdout.readline, "")), daemon=True
        )
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
