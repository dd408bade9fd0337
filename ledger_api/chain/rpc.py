"""A lean JSON-RPC client for the read hot path (``eth_call``), beside web3's provider.

Why not ``HTTPProvider.make_request``: every request through web3 + requests re-reads the proxy
environment, runs web3's formatter chain and builds a new request object; profiling a member node
under load showed that costing more CPU than everything else in a consent-checked fetch
together. Authorisation reads the chain on every request (no stale cache), so reads go through
one kept-alive, thread-safe urllib3 pool instead. Writes still go through web3 (signing, nonce
management, receipts); they are rarer and happen in the outbox worker.
"""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

from ledger_api.errors import ChainUnavailable


class JsonRpcReader:
    """POSTs JSON-RPC requests to one endpoint over a pool of persistent connections."""

    def __init__(self, url: str, *, timeout: float = 10.0, headers: dict[str, str] | None = None,
                 max_connections: int = 32) -> None:  # fmt: skip
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an HTTP(S) JSON-RPC URL: {parts.scheme}://{parts.hostname}")
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.headers = {"Content-Type": "application/json", **(headers or {})}
        # eth_call is idempotent: one retry covers a kept-alive connection the node closed meanwhile
        self.pool = urllib3.connection_from_url(
            url, maxsize=max_connections, block=False, timeout=urllib3.Timeout(total=timeout),
            retries=urllib3.Retry(total=1, connect=1, read=1, status=0, allowed_methods=None, raise_on_status=False),
        )  # fmt: skip
        self._ids = itertools.count(1)
        self._ids_lock = threading.Lock()

    def request(self, method: str, params: list[Any]) -> dict[str, Any]:
        """The decoded JSON-RPC response object (with ``result`` or ``error``); outages → ``ChainUnavailable``."""
        with self._ids_lock:
            request_id = next(self._ids)
        body = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        try:
            response = self.pool.urlopen("POST", self.path, body=body, headers=self.headers, preload_content=True)
        except (Urllib3Error, OSError) as exc:
            raise ChainUnavailable(f"chain node unreachable: {type(exc).__name__}") from None
        if response.status != 200:
            raise ChainUnavailable(f"chain node answered HTTP {response.status}")
        try:
            decoded = json.loads(response.data)
        except ValueError:
            raise ChainUnavailable("chain node sent a response that is not JSON") from None
        if not isinstance(decoded, dict) or ("result" not in decoded and "error" not in decoded):
            raise ChainUnavailable("chain node sent a malformed JSON-RPC response")
        return decoded

    def close(self) -> None:
        self.pool.close()
