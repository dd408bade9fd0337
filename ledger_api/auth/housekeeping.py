"""Drops what can no longer be used for signing in or signing requests: nonces past their window,
expired patient sessions, sign-in challenges and ended proofs. Once a minute, in a thread of its own."""

from __future__ import annotations

from ledger_api.auth.service import purge_expired
from ledger_api.core.background import BackgroundLoop
from ledger_api.core.db import session_scope
from ledger_api.node import Node

PURGE_INTERVAL_S = 60.0


class SignInHousekeeping(BackgroundLoop):
    job = "sign-in-housekeeping"

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node

    def tick(self) -> int:
        with session_scope(self.node.engine) as session:
            purge_expired(self.node, session)
        return 0

    def idle_interval_s(self) -> float:
        return PURGE_INTERVAL_S
