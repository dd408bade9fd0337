"""A member's chain endpoints: its own validator first, then the fallbacks it may use while that one is down.

Why here and not in a load balancer: the product's rule is that a member talks to its own validator
(its own copy of the chain, the one it trusts); a fallback is a consortium partner's validator, used only
while its own does not answer, and left again as soon as it does. A failed endpoint is skipped for
``cooldown_s``, then tried again first, so a restarted validator gets its member back within seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence


class Endpoints:
    """The URLs in order of preference, with the ones that just failed moved to the back."""

    def __init__(self, urls: Sequence[str], *, cooldown_s: float = 5.0) -> None:
        if not urls:
            raise ValueError("at least one chain endpoint is needed")
        self.urls = list(dict.fromkeys(urls))
        self.cooldown_s = cooldown_s
        self._failed_at: dict[str, float] = {}
        self._lock = threading.Lock()

    @property
    def primary(self) -> str:
        return self.urls[0]

    def order(self) -> list[str]:
        """Every URL once: those not failing (in preference order), then the cooling ones (oldest failure
        first), so a request still reaches some node when all have failed lately."""
        now = time.monotonic()
        with self._lock:
            failing = {u: t for u, t in self._failed_at.items() if now - t < self.cooldown_s}
        healthy = [u for u in self.urls if u not in failing]
        return healthy + sorted(failing, key=failing.__getitem__)

    def failed(self, url: str) -> None:
        with self._lock:
            self._failed_at[url] = time.monotonic()

    def succeeded(self, url: str) -> None:
        if url in self._failed_at:
            with self._lock:
                self._failed_at.pop(url, None)

    @property
    def current(self) -> str:
        """Where the next request goes first."""
        return self.order()[0]
