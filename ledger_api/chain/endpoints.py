"""A member's chain endpoints: its own validator first, then the fallbacks it may use while that one is down.

Why here and not in a load balancer: the product's rule is that a member talks to its own validator
(its own copy of the chain, the one it trusts); a fallback is a consortium partner's validator, used only
while its own does not answer, and left again as soon as it does. A failed endpoint is skipped for
``cooldown_s``; then, if it has caught up (``probe``: a validator restarted after a crash replays its
blocks, and until it is back at the others' head its answers are old: a revoked consent would still
look active), it is first again, so a restarted validator gets its member back within seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

import structlog

T = TypeVar("T")
log = structlog.get_logger("medledger.chain")


class Endpoints:
    """The URLs in order of preference, with the ones that just failed moved to the back."""

    def __init__(
        self, urls: Sequence[str], *, cooldown_s: float = 5.0, probe: Callable[[str], bool] | None = None
    ) -> None:
        if not urls:
            raise ValueError("at least one chain endpoint is needed")
        self.urls = list(dict.fromkeys(urls))
        self.cooldown_s = cooldown_s
        #: whether an endpoint back after its cooldown may serve again (None: always)
        self.probe = probe
        self._failed_at: dict[str, float] = {}
        self._lock = threading.Lock()

    @property
    def primary(self) -> str:
        return self.urls[0]

    def order(self) -> list[str]:
        """Every URL once: those not failing (in preference order), then the failing ones (oldest failure
        first), so a request still reaches some node when all have failed lately. One whose cooldown
        is over serves again once its probe passes; a failed probe starts another cooldown."""
        now = time.monotonic()
        with self._lock:
            failed_at = dict(self._failed_at)
        healthy, failing = [], {}
        for url in self.urls:
            failed = failed_at.get(url)
            if failed is None:
                healthy.append(url)
            elif now - failed >= self.cooldown_s and (self.probe is None or self.probe(url)):
                self.succeeded(url)
                healthy.append(url)
            else:
                if now - failed >= self.cooldown_s:
                    self.failed(url)
                failing[url] = failed
        return healthy + sorted(failing, key=failing.__getitem__)

    def first(self, attempt: Callable[[str], T], failures: tuple[type[Exception], ...]) -> T:
        """``attempt(url)`` at each endpoint in ``order`` until one answers: the one place the JSON-RPC
        reader and web3's provider fail over. ``failures`` are what count as this endpoint's failure
        (the last one is raised when none answered)."""
        failure: Exception | None = None
        for url in self.order():
            try:
                answer = attempt(url)
            except failures as exc:
                if len(self.urls) > 1:
                    log.warning("chain_endpoint_failed", url=url, reason=str(exc)[:200] or type(exc).__name__)
                self.failed(url)
                failure = exc
                continue
            self.succeeded(url)
            return answer
        assert failure is not None
        raise failure

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
