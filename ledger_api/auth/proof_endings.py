"""At sign-out, the node a patient signed in at tells every other member that the patient's
consortium-view proof has ended (see ``auth.patient_proof``).

Best effort by design, and bounded: one short request per active member, in one background thread,
so sign-out never waits on a slow member. A member that misses it still stops honouring the proof
when ``patient_proof.MAX_LIFETIME`` runs out.
"""

from __future__ import annotations

import threading

import httpx
import structlog

from ledger_api.auth.signing import MemberAuth
from ledger_api.chain.types import MemberStatus, Role
from ledger_api.errors import LedgerError
from ledger_api.node import Node

log = structlog.get_logger("medledger.auth")
PATH = "/v1/auth/proofs/ended"
TIMEOUT_S = 3.0


def announce_ended(node: Node, proof: str) -> threading.Thread:
    """Starts telling the other members; returns the thread (tests join it)."""
    thread = threading.Thread(target=_announce, args=(node, proof), name="proof-ended", daemon=True)
    thread.start()
    return thread


def _announce(node: Node, proof: str) -> None:
    try:
        peers = [
            m
            for m in node.chain.registry.members()
            if m.status == MemberStatus.ACTIVE and m.role == Role.MEMBER and m.endpoint and m.account != node.address
        ]
    except LedgerError as exc:
        log.warning("proof_end_not_announced", reason=exc.code)
        return
    for peer in peers:
        auth = MemberAuth(account=node.identity.account, chain_id=node.chain_id, audience=peer.account)
        try:
            response = httpx.post(peer.endpoint.rstrip("/") + PATH, json={"proof": proof}, auth=auth, timeout=TIMEOUT_S)
            if response.status_code >= 300:
                log.warning("proof_end_refused", member=peer.account, status=response.status_code)
        except httpx.HTTPError as exc:
            log.warning("proof_end_unreachable", member=peer.account, error=type(exc).__name__)
