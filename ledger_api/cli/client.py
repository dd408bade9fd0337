"""How the CLI talks to a member node: signed as a member (identity keystore) or signed in as a patient."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from eth_account.messages import encode_defunct
from medledger_crypto import KeystoreError, MemberIdentity, PatientIdentity, load_passphrase

from ledger_api.auth.signing import MemberAuth
from ledger_api.auth.siwe import build_message
from ledger_api.errors import LedgerError, Unauthenticated

NODE_ENV = "MEDLEDGER_NODE_URL"
DEFAULT_NODE = "http://127.0.0.1:8601"


class NodeRefused(LedgerError):
    """The node answered with a problem; its code and detail are passed on."""

    def __init__(self, response: httpx.Response) -> None:
        try:
            problem = response.json()
        except ValueError:
            problem = {"detail": response.text[:200], "code": "http-error"}
        super().__init__(problem.get("detail", str(response.status_code)))
        self.status = response.status_code
        self.code = problem.get("code", "http-error")


def check(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 300:
        raise NodeRefused(response)
    return response


def node_url(url: str | None) -> str:
    return (url or os.environ.get(NODE_ENV) or DEFAULT_NODE).rstrip("/")


def member_client(url: str, identity: MemberIdentity, timeout: float = 60) -> httpx.Client:
    """A client signing every request as ``identity``, for the node at ``url`` (its account from /readyz)."""
    try:
        ready = httpx.get(f"{url}/readyz", timeout=10).json()
        audience, chain_id = ready["member"], _chain_id(url)
    except (httpx.HTTPError, ValueError, KeyError):
        raise LedgerError(f"no MedLedger node answers at {url}") from None
    return httpx.Client(base_url=url, timeout=timeout,
                        auth=MemberAuth(account=identity.account, chain_id=chain_id, audience=audience))  # fmt: skip


def _chain_id(url: str) -> int:
    return int(httpx.post(f"{url}/v1/auth/challenge", timeout=10).json()["chain_id"])


def patient_client(url: str, patient: PatientIdentity, timeout: float = 60) -> httpx.Client:
    """Signs in with Ethereum (the key stays here) and returns a client carrying the session."""
    try:
        challenge = check(httpx.post(f"{url}/v1/auth/challenge", timeout=10)).json()
    except httpx.HTTPError:
        raise LedgerError(f"no MedLedger node answers at {url}") from None
    moment = datetime.now(UTC)
    message = build_message(domain=challenge["domain"], address=patient.address, uri=challenge["uri"],
                            chain_id=challenge["chain_id"], nonce=challenge["nonce"], issued_at=moment,
                            expiration=moment + timedelta(minutes=15))  # fmt: skip
    signature = patient.account.sign_message(encode_defunct(text=message)).signature.hex()
    session = check(httpx.post(f"{url}/v1/auth/session", json={"message": message, "signature": signature},
                               timeout=10)).json()  # fmt: skip
    return httpx.Client(base_url=url, timeout=timeout, headers={"Authorization": f"Bearer {session['token']}"})


def load_member(path: Path) -> MemberIdentity:
    try:
        return MemberIdentity.load(path, load_passphrase())
    except KeystoreError as exc:
        raise Unauthenticated(f"cannot open member keystore {path}: {exc}") from None


def patient_passphrase() -> str:
    return os.environ.get("MEDLEDGER_PATIENT_PASSPHRASE", "")


def load_patient(path: Path) -> PatientIdentity:
    try:
        return PatientIdentity.restore(path, patient_passphrase())
    except KeystoreError as exc:
        raise Unauthenticated(f"cannot open patient key {path}: {exc}") from None
