"""Crash drills: this process dies (SIGKILL) at a named step of a write path, on purpose.

The reliability tests kill a node at every step of the upload and fetch paths, restart it and
check that nothing was lost or anchored twice. Only a real SIGKILL is an honest drill: no
``finally`` block, rollback, flush or goodbye runs, exactly as when the machine loses power. A
drill is armed by the settings ``crash_at`` (one of ``POINTS``) and ``crash_after`` (die on the
n-th pass, so the kill lands in the middle of a load), in dev mode only: a production node
refuses the setting at start-up.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable

POINTS = (
    "upload.before_commit",  # ciphertext on disk, database transaction not committed
    "upload.after_commit",  # record and its outbox row committed, nothing sent to the chain
    "fetch.before_commit",  # released data key computed, access entry not committed
    "fetch.after_commit",  # access entry and its outbox row committed, response not sent
    "outbox.after_sign.anchor_record",  # transaction signed and stored, not broadcast
    "outbox.after_broadcast.anchor_record",  # broadcast, receipt not awaited
    "outbox.after_sign.access_entry",
    "outbox.after_broadcast.access_entry",
)


class CrashDrill:
    """Kills this process the ``after``-th time ``point`` is reached (never, if ``point`` is None)."""

    def __init__(self, point: str | None = None, after: int = 1) -> None:
        if point is not None and point not in POINTS:
            raise ValueError(f"unknown crash point {point!r}; one of {', '.join(POINTS)}")
        self.point, self.after = point, after
        self._passes = 0
        self._lock = threading.Lock()

    def reached(self, point: str, *, flush: Callable[[], object] | None = None) -> None:
        """``flush``: writes the open transaction's rows (uncommitted) first, when this is the armed point."""
        if point != self.point:
            return
        if flush is not None:
            flush()
        with self._lock:
            self._passes += 1
            if self._passes >= self.after:
                os.kill(os.getpid(), signal.SIGKILL)
