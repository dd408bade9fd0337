"""A lean JSON-RPC client for the read hot path (``eth_call``, ``eth_blockNumber``), beside web3's provider.

Why not ``HTTPProvider.make_request``: every request through web3 + requests re-reads the proxy
environment, runs web3's formatter chain and builds a new request object. Why not urllib3 either
(this module's first version): ``http.client`` parses every response's headers with the
``email`` package, ~0.16 ms of CPU under the GIL per call, and authorisation reads the chain on
every request (no stale cache). libcurl (pycurl) does the same round trip in ~0.05 ms and
releases the GIL while it waits. Writes still go through web3 (signing, nonce management,
receipts); they are rarer and happen in the outbox worker.
"""

from __future__ import annotations

import itertools
import json
import threading
from io import BytesIO
from typing import Any
from urllib.parse import urlsplit

import pycurl

from ledger_api.chain.endpoints import Endpoints
from ledger_api.errors import ChainUnavailable

#: What a kept-alive connection the node closed meanwhile looks like: worth one retry (a timeout is not).
_STALE_CONNECTION = frozenset({pycurl.E_GOT_NOTHING, pycurl.E_SEND_ERROR, pycurl.E_RECV_ERROR})
#: How a node behind the others answers a question about a block it has not got (or whose state it no
#: longer holds): not the question's fault, so the next endpoint is asked (geth, Besu, GoQuorum wording)
_BEHIND = ("header not found", "unknown block", "missing trie node", "historical state", "block not found")


def behind(decoded: Any) -> bool:
    """Whether a decoded JSON-RPC answer (or batch) says the node lacks the block or state asked about."""
    answers = decoded if isinstance(decoded, list) else [decoded]
    for answer in answers:
        error = answer.get("error") if isinstance(answer, dict) else None
        message = str(error.get("message", "")).lower() if isinstance(error, dict) else ""
        if any(words in message for words in _BEHIND):
            return True
    return False


class JsonRpcReader:
    """POSTs JSON-RPC requests over kept-alive connections (one curl handle per call in flight; handles
    are pooled, never shared between threads) to the first of its endpoints that answers (see
    ``chain.endpoints``: the member's own validator, then its fallbacks)."""

    def __init__(
        self, url: str | Endpoints, *, timeout: float = 10.0, headers: dict[str, str] | None = None, max_idle: int = 32
    ) -> None:
        self.endpoints = url if isinstance(url, Endpoints) else Endpoints([url])
        for each in self.endpoints.urls:
            parts = urlsplit(each)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"not an HTTP(S) JSON-RPC URL: {parts.scheme}://{parts.hostname}")
        self.url = self.endpoints.primary
        self.timeout_ms = max(1, int(timeout * 1000))
        # "Expect:" stops libcurl from waiting for 100-continue on larger bodies
        self.headers = [f"{k}: {v}" for k, v in {"Content-Type": "application/json", **(headers or {})}.items()]
        self.headers.append("Expect:")
        self.max_idle = max_idle
        self._idle: list[pycurl.Curl] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def _handle(self) -> pycurl.Curl:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        handle = pycurl.Curl()
        handle.setopt(pycurl.HTTPHEADER, self.headers)
        handle.setopt(pycurl.NOSIGNAL, 1)  # timeouts without signals: safe in worker threads
        handle.setopt(pycurl.PROXY, "")  # the chain node is reached directly, whatever the environment says
        handle.setopt(pycurl.TIMEOUT_MS, self.timeout_ms)
        handle.setopt(pycurl.CONNECTTIMEOUT_MS, min(self.timeout_ms, 5000))
        handle.setopt(pycurl.TCP_NODELAY, 1)
        handle.setopt(pycurl.FOLLOWLOCATION, 0)
        return handle

    def _release(self, handle: pycurl.Curl) -> None:
        with self._lock:
            if len(self._idle) < self.max_idle:
                self._idle.append(handle)
                return
        handle.close()

    def _post(self, body: bytes) -> Any:
        """One POST to the first endpoint that answers, decoded; an endpoint that is unreachable or
        behind (see ``_BEHIND``) is left for the next. ``ChainUnavailable`` when none will do."""

        def attempt(url: str) -> Any:
            decoded = self._decode(self._post_to(url, body))
            if behind(decoded) and len(self.endpoints.urls) > 1:
                raise ChainUnavailable("chain node is behind the chain's head")
            return decoded

        return self.endpoints.first(attempt, (ChainUnavailable,))

    def _post_to(self, url: str, body: bytes) -> bytes:
        """One POST to one endpoint; a failure on a kept-alive connection the node closed meanwhile is
        retried once (reads are idempotent). Outages → ``ChainUnavailable``."""
        for attempt in (1, 2):
            handle, buffer = self._handle(), BytesIO()
            try:
                handle.setopt(pycurl.URL, url)
                handle.setopt(pycurl.POSTFIELDS, body)
                handle.setopt(pycurl.WRITEDATA, buffer)
                handle.perform()
                status = handle.getinfo(pycurl.RESPONSE_CODE)
            except pycurl.error as exc:
                handle.close()
                code = exc.args[0] if exc.args else None
                if attempt == 2 or code not in _STALE_CONNECTION:
                    raise ChainUnavailable(f"chain node unreachable (curl error {code})") from None
                continue
            self._release(handle)
            if status != 200:
                raise ChainUnavailable(f"chain node answered HTTP {status}")
            return buffer.getvalue()
        raise AssertionError("unreachable")  # pragma: no cover

    def request(self, method: str, params: list[Any]) -> dict[str, Any]:
        """The decoded JSON-RPC response object (with ``result`` or ``error``); outages → ``ChainUnavailable``."""
        body = json.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params})
        decoded = self._post(body.encode())
        if not isinstance(decoded, dict) or ("result" not in decoded and "error" not in decoded):
            raise ChainUnavailable("chain node sent a malformed JSON-RPC response")
        return decoded

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
        """Several requests in one round trip (a JSON-RPC batch); the responses in the calls' order."""
        ids = [next(self._ids) for _ in calls]
        requests = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in zip(ids, calls, strict=True)]
        body = json.dumps(requests)
        decoded = self._post(body.encode())
        by_id = {r.get("id"): r for r in decoded if isinstance(r, dict)} if isinstance(decoded, list) else {}
        responses = [by_id.get(i) for i in ids]
        if any(r is None or ("result" not in r and "error" not in r) for r in responses):
            raise ChainUnavailable("chain node sent a malformed JSON-RPC batch response")
        return responses  # type: ignore[return-value]

    @staticmethod
    def _decode(raw: bytes) -> Any:
        try:
            return json.loads(raw)
        except ValueError:
            raise ChainUnavailable("chain node sent a response that is not JSON") from None

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for handle in idle:
            handle.close()
