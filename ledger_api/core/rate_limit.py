"""Bounds on how often and how much at once: token buckets per client, and slots for work in flight.

Token buckets:
Why in memory: the routes it guards (anonymous sign-in challenges) must be refused *before* they
cost a database write. Each API process keeps its own buckets, so with N processes a client gets at
most N times the rate: still bounded, and the database-side cap on outstanding challenges holds
across processes. The table of clients is bounded too (least recently seen forgotten first), so a
flood of distinct addresses cannot grow memory.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from ledger_api.errors import TooManyRequests


class TokenBuckets:
    """``rate_per_s`` tokens a second per key, at most ``burst`` saved up; ``take`` spends one."""

    def __init__(self, *, rate_per_s: float, burst: int, max_keys: int = 10_000) -> None:
        if rate_per_s <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate, burst and max_keys must be positive")
        self.rate = rate_per_s
        self.burst = float(burst)
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, *, now: float | None = None) -> float:
        """Spends a token for ``key``: 0.0 if there was one, else the seconds until there is."""
        moment = time.monotonic() if now is None else now
        with self._lock:
            tokens, seen = self._buckets.pop(key, (self.burst, moment))
            tokens = min(self.burst, tokens + (moment - seen) * self.rate)
            if tokens >= 1.0:
                tokens -= 1.0
                wait = 0.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens, moment)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait

    @staticmethod
    def retry_after(wait_s: float) -> int:
        return max(1, math.ceil(wait_s))


class InFlightSlots:
    """Bounds work in flight: at most ``per_key`` at once for one key, ``total`` for everyone.

    For work that waits on something slow (a consortium fan-out waits on other members up to its
    deadline): without a bound, one caller repeating it while a member hangs piles requests up
    without end. Past either bound, ``TooManyRequests`` at once, never a queue.
    """

    def __init__(self, *, per_key: int, total: int) -> None:
        self.per_key, self.total = per_key, total
        self._in_flight: dict[str, int] = {}
        self._lock = threading.Lock()

    def in_flight(self) -> int:
        """How much work holds a slot now (for metrics and tests)."""
        with self._lock:
            return sum(self._in_flight.values())

    @contextmanager
    def hold(self, key: str, busy: str) -> Iterator[None]:
        with self._lock:
            if sum(self._in_flight.values()) >= self.total:
                raise TooManyRequests("the node has too much of this in flight; retry shortly", code="node-busy")
            if self._in_flight.get(key, 0) >= self.per_key:
                raise TooManyRequests(busy, code="caller-busy")
            self._in_flight[key] = self._in_flight.get(key, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                left = self._in_flight[key] - 1
                if left:
                    self._in_flight[key] = left
                else:
                    del self._in_flight[key]
