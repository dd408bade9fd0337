"""Running real member nodes in tests: real HTTP (uvicorn on a free port), real SQL, real chain."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import uvicorn
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from medledger_crypto import MemberIdentity

from ledger_api.auth import siwe
from ledger_api.auth.signing import MemberAuth, sign_headers
from ledger_api.chain.backends import ChainBackend, free_port
from ledger_api.chain.deployment import DeploymentManifest, deploy_consortium
from ledger_api.chain.transactions import TransactionSender
from ledger_api.chain.types import GenesisMember
from ledger_api.core.config import ChainSettings, OutboxSettings, Settings
from ledger_api.main import create_app
from ledger_api.node import Node, build_node
from tests.utils import cast
from tests.utils.cast import MEMBER_NAMES
from tests.utils.postgres import admin_url


class Identities:
    """The consortium's members with real keys (Ethereum + HPKE), plus the auditor."""

    def __init__(self, endpoints: dict[str, str] | None = None) -> None:
        self.members = {slug: MemberIdentity.generate() for slug in MEMBER_NAMES}
        self.auditor = MemberIdentity.generate()
        self.endpoints = endpoints or {slug: f"http://{slug}.invalid" for slug in MEMBER_NAMES}

    def genesis(self) -> list[GenesisMember]:
        members = {
            slug: (i.address, i.hpke_public_key.to_bytes(), self.endpoints[slug]) for slug, i in self.members.items()
        }
        return cast.genesis(members, (self.auditor.address, self.auditor.hpke_public_key.to_bytes(), ""))


def deploy(
    backend: ChainBackend, identities: Identities, deployer: LocalAccount, **parameters: int
) -> DeploymentManifest:
    for address in (deployer.address, identities.auditor.address, *(i.address for i in identities.members.values())):
        backend.fund(address, 10**21)
    return deploy_consortium(TransactionSender(backend.w3, deployer), identities.genesis(), **parameters)


@contextmanager
def database(kind: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of the given kind; dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'node.db'}"
        return
    name = f"mltest_{uuid.uuid4().hex[:12]}"
    server = admin_url()
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{server.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def node_settings(tmp_path: Path, database_url: str, manifest: DeploymentManifest, **overrides: object) -> Settings:
    manifest_path = tmp_path / "deployment.json"
    manifest.save(manifest_path)
    defaults: dict[str, object] = {
        "run_outbox_worker": False,
        "chain": ChainSettings(manifest_path=manifest_path, receipt_timeout_s=10),
        "outbox": OutboxSettings(poll_interval_s=0.05, backoff_base_s=0.05),
    }
    return Settings(mode="dev", data_dir=tmp_path / "node", database_url=database_url, **{**defaults, **overrides})  # type: ignore[arg-type]


def loopback_listener() -> socket.socket:
    """A listening loopback socket, held from the moment its port is chosen until uvicorn serves on it.

    Why: a node's URL goes on chain at deployment, before the node starts. A port merely found free
    then can be taken by another test in between (uvicorn: "address already in use", the node never
    starts); a socket already bound cannot. Connections made before the node serves wait in the backlog.
    """
    for _ in range(20):
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", free_port()))
        except OSError:  # taken between free_port's check and this bind
            sock.close()
            continue
        sock.listen(128)
        return sock
    raise RuntimeError("no free loopback port")


class RunningNode:
    """A node served by uvicorn on a loopback port of its own, in a thread of the test process."""

    def __init__(self, node: Node, listener: socket.socket | None = None) -> None:
        self.node = node
        self.app = create_app(node)
        self.listener = listener or loopback_listener()
        self.port = int(self.listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="on",
                timeout_keep_alive=node.settings.limits.keep_alive_s,
            )
        )
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.listener]}, daemon=True)

    def __enter__(self) -> RunningNode:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("node did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.listener.close()
        self.node.close()

    @property
    def worker(self):
        return self.app.state.worker

    def drain(self, rounds: int = 10) -> None:
        """Runs the outbox worker until nothing is due (tests run it by hand for determinism)."""
        for _ in range(rounds):
            if not self.worker.run_once():
                return

    def member_client(self, account: LocalAccount) -> httpx.Client:
        auth = MemberAuth(account=account, chain_id=self.node.chain_id, audience=self.node.address)
        return httpx.Client(base_url=self.url, auth=auth, timeout=30)

    def anonymous(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def signed_headers(
        self, account: LocalAccount, method: str, path: str, *, body: bytes | None = None, **options: Any
    ) -> dict[str, str]:
        """A member's signature headers for one request to this node (what ``member_client`` sends), for
        tests that send them by hand: replayed, altered, or on a raw connection."""
        digest = hashlib.sha256(body).hexdigest() if body is not None else None
        return sign_headers(
            account,
            chain_id=self.node.chain_id,
            audience=self.node.address,
            method=method,
            url=self.url + path,
            **({"digest": digest} if digest else {}),
            **options,
        )

    def patient_client(self, account: LocalAccount, resources: tuple[str, ...] = ()) -> httpx.Client:
        """Signs in with Ethereum (EIP-4361) and returns a client carrying the session token."""
        with self.anonymous() as client:
            challenge = client.post("/v1/auth/challenge").json()
            message = siwe.answer_to(
                challenge, address=account.address, lasts=timedelta(minutes=10), resources=resources
            )
            signature = account.sign_message(encode_defunct(text=message)).signature.hex()
            response = client.post("/v1/auth/session", json={"message": message, "signature": signature})
            response.raise_for_status()
        return httpx.Client(
            base_url=self.url, timeout=30, headers={"Authorization": f"Bearer {response.json()['token']}"}
        )


def start_node(
    backend: ChainBackend,
    manifest: DeploymentManifest,
    identity: MemberIdentity,
    tmp_path: Path,
    database_url: str,
    *,
    listener: socket.socket | None = None,
    **overrides: object,
) -> RunningNode:
    if listener is not None:  # the URL the node is registered under is the one patients sign in at
        overrides.setdefault("public_url", f"http://127.0.0.1:{listener.getsockname()[1]}")
    settings = node_settings(tmp_path, database_url, manifest, **overrides)
    return RunningNode(build_node(settings, w3=backend.w3, identity=identity), listener=listener)
