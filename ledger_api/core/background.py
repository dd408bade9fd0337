"""A node's background jobs (outbox sender, notification scanner): one daemon thread each, same loop.

The loop calls ``tick`` until stopped; when a tick found nothing to do, or the chain or the
database is down, it waits ``idle_interval_s`` before the next. An unexpected error is logged and
the loop goes on: a background job must outlive any single bad row or event.
"""

from __future__ import annotations

import threading

import structlog

from ledger_api.errors import ChainUnavailable, DatabaseUnavailable


class BackgroundLoop:
    """Subclasses set ``job`` (thread and log name) and implement ``tick`` and ``idle_interval_s``."""

    job = "background"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._log = structlog.get_logger(f"medledger.{self.job}")

    def tick(self) -> int:
        """One round of work; returns how much it did (0: idle)."""
        raise NotImplementedError

    def idle_interval_s(self) -> float:
        raise NotImplementedError

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"{self.job}-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.tick()
            except (ChainUnavailable, DatabaseUnavailable) as exc:
                self._log.warning(f"{self.job}_paused", reason=exc.code)
                busy = 0
            except Exception:
                self._log.exception(f"{self.job}_error")
                busy = 0
            if not busy:
                self._stop.wait(self.idle_interval_s())
