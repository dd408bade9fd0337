"""Group commit: writes that arrive while one is under way share the next transaction.

Why: on SQLite every write transaction takes the database's single write lock (``WriteTurns``),
and under load the thread holding it spends most of its turn waiting for its process's GIL, not
writing (measured at ~300 fetches/s: a turn held ~1.3 ms for well under 0.3 ms of work, and the
lock ~80 % busy). Fewer, larger transactions are the lever: each caller queues its item and then
takes ``lock``; whichever thread holds it writes every item queued so far in one ``write`` call,
and the others, when their turn comes, find their results ready. Nothing is returned before its
transaction commits, and a failed transaction fails every caller in it (each raises a copy).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class _Pending(Generic[Item, Result]):
    item: Item
    done: bool = False
    result: Result | None = None
    error: BaseException | None = None


class GroupCommit(Generic[Item, Result]):
    """Runs ``write(items) -> results`` (one result per item, in order) for batches of concurrent callers."""

    def __init__(self, lock: threading.Lock, write: Callable[[list[Item]], Sequence[Result]]) -> None:
        self.lock, self._write = lock, write
        self._queue: list[_Pending[Item, Result]] = []
        self._queue_lock = threading.Lock()

    @property
    def queued(self) -> int:
        """Items waiting for the next transaction."""
        return len(self._queue)

    def submit(self, item: Item) -> Result:
        """The result for ``item`` once committed (by this thread or by one that held the lock first)."""
        pending: _Pending[Item, Result] = _Pending(item)
        with self._queue_lock:
            self._queue.append(pending)
        with self.lock:
            if not pending.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._run(batch)
        if pending.error is not None:
            raise copy.copy(pending.error)  # each caller raises its own copy; the batch shared the cause
        return pending.result  # type: ignore[return-value]

    def _run(self, batch: list[_Pending[Item, Result]]) -> None:
        try:
            results = self._write([p.item for p in batch])
        except BaseException as error:
            for pending in batch:
                pending.error, pending.done = error, True
            return
        for pending, result in zip(batch, results, strict=True):
            pending.result, pending.done = result, True
