"""How the CLI talks to a member node: signed as a member (identity keystore) or signed in as a patient.

The crypto and HTTP stacks are imported inside the functions that use them: importing this module
must stay cheap, so that ``medledger ... --help`` starts at once (see ``ledger_api.cli``).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from ledger_api.errors import LedgerError, Unauthenticated

if TYPE_CHECKING:
    import httpx
    from medledger_crypto import MemberIdentity, PatientIdentity

NODE_ENV = "MEDLEDGER_NODE_URL"
DEFAULT_NODE = "http://127.0.0.1:8601"


MEMBER_PASSPHRASE_ENV = "MEDLEDGER_KEYSTORE_PASSPHRASE"
PATIENT_PASSPHRASE_ENV = "MEDLEDGER_PATIENT_PASSPHRASE"


class NodeUnreachable(LedgerError):
    """No MedLedger node answers at the URL: nothing was sent."""

    status = 503
    code = "node-unreachable"
    title = "Node unreachable"


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
    """The response, or ``NodeRefused`` carrying the node's problem code and detail."""
    if response.status_code >= 300:
        raise NodeRefused(response)
    return response


def node_url(url: str | None) -> str:
    return (url or os.environ.get(NODE_ENV) or DEFAULT_NODE).rstrip("/")


def _unreachable(url: str) -> NodeUnreachable:
    return NodeUnreachable(
        f"no MedLedger node answers at {url}: start one (make run, or medledger serve) or pass "
        "--node / set MEDLEDGER_NODE_URL"
    )


def member_client(url: str, identity: MemberIdentity, timeout: float = 60) -> httpx.Client:
    """A client signing every request as ``identity``, for the node at ``url`` (its account from /readyz)."""
    import httpx

    from ledger_api.auth.signing import MemberAuth

    try:
        ready = httpx.get(f"{url}/readyz", timeout=10).json()
        audience, chain_id = ready["member"], _chain_id(url)
    except (httpx.HTTPError, ValueError, KeyError):
        raise _unreachable(url) from None
    return httpx.Client(
        base_url=url, timeout=timeout, auth=MemberAuth(account=identity.account, chain_id=chain_id, audience=audience)
    )


def _chain_id(url: str) -> int:
    import httpx

    return int(httpx.post(f"{url}/v1/auth/challenge", timeout=10).json()["chain_id"])


def patient_client(
    url: str, patient: PatientIdentity, timeout: float = 60, resources: tuple[str, ...] = ()
) -> httpx.Client:
    """Signs in with Ethereum (the key stays here) and returns a client carrying the session; ``resources``:
    what the sign-in allows besides (``urn:medledger:consortium-view``: answers from every member)."""
    import httpx
    from eth_account.messages import encode_defunct

    from ledger_api.auth.siwe import answer_to

    try:
        challenge = check(httpx.post(f"{url}/v1/auth/challenge", timeout=10)).json()
    except httpx.HTTPError:
        raise _unreachable(url) from None
    message = answer_to(challenge, address=patient.address, lasts=timedelta(minutes=15), resources=resources)
    signature = patient.account.sign_message(encode_defunct(text=message)).signature.hex()
    session = check(
        httpx.post(f"{url}/v1/auth/session", json={"message": message, "signature": signature}, timeout=10)
    ).json()
    client = httpx.Client(base_url=url, timeout=timeout, headers={"Authorization": f"Bearer {session['token']}"})
    # the account this key signs for: its own address, or (after a key rotation or recovery) the account it was
    # given, which every path and message names
    setattr(client, _ACCOUNT, str(session["patient"]))
    return client


_ACCOUNT = "medledger_account"


def account_of(client: httpx.Client) -> str:
    """The account a patient session signs for (see ``patient_client``)."""
    return str(getattr(client, _ACCOUNT))


def load_member(path: Path) -> MemberIdentity:
    from medledger_crypto import KeystoreError, MemberIdentity, load_passphrase

    passphrase = load_passphrase(env=MEMBER_PASSPHRASE_ENV)
    if not passphrase:
        raise Unauthenticated(
            f"no passphrase for member keystore {path}: set {MEMBER_PASSPHRASE_ENV} (the local "
            "consortium's development keys use MEDLEDGER_DEV_PASSPHRASE, default "
            "'medledger-local-development-only')",
            code="passphrase-missing",
        )
    try:
        return MemberIdentity.load(path, passphrase)
    except KeystoreError as exc:
        raise Unauthenticated(
            f"cannot open member keystore {path}: {exc} (passphrase from {MEMBER_PASSPHRASE_ENV})",
            code="keystore-unreadable",
        ) from None


def patient_passphrase() -> str:
    return os.environ.get(PATIENT_PASSPHRASE_ENV, "")


def load_patient(path: Path) -> PatientIdentity:
    from medledger_crypto import KeystoreError, PatientIdentity

    if not patient_passphrase():
        raise Unauthenticated(
            f"no passphrase for patient key {path}: set {PATIENT_PASSPHRASE_ENV}", code="passphrase-missing"
        )
    try:
        return PatientIdentity.restore(path, patient_passphrase())
    except KeystoreError as exc:
        raise Unauthenticated(
            f"cannot open patient key {path}: {exc} (passphrase from {PATIENT_PASSPHRASE_ENV})",
            code="keystore-unreadable",
        ) from None
