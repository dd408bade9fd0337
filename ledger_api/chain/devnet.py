"""The embedded development chain: managed anvil + dev identities + one deployment, reused.

This is what ``medledger chain up`` (and for now ``make run``) starts. Everything lives in one
data directory, so a second start continues with the same chain, keys and contracts:

* ``anvil-state.json``: the chain state (dumped periodically and on stop);
* ``keys/<name>.json``: Ethereum V3 keystores (scrypt) of the deployer and the dev members,
  encrypted under the dev passphrase — development only, never production keys;
* ``genesis.json`` and ``deployment.json``: the founding members and the manifest.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger_api.chain.backends import AnvilBackend
from ledger_api.chain.clients import GenesisMember, Role
from ledger_api.chain.deployment import DeploymentManifest, deploy_consortium, verify_deployment
from ledger_api.chain.genesis import dump_genesis
from ledger_api.chain.transactions import TransactionSender
from ledger_api.errors import DeploymentMismatch

DEV_PASSPHRASE_ENV = "MEDLEDGER_DEV_PASSPHRASE"
_DEV_PASSPHRASE_DEFAULT = "medledger-local-development-only"

DEFAULT_MEMBERS = (
    ("dapeng", "Dapeng New District People's Hospital"),
    ("kuichong", "Kuichong Community Health Center"),
    ("nanao", "Nan'ao Community Health Center"),
)
AUDITOR = ("auditor", "Consortium Audit Office")


@dataclass
class Devnet:
    backend: AnvilBackend
    manifest: DeploymentManifest
    accounts: dict[str, LocalAccount]
    reused: bool


def _passphrase() -> str:
    return os.environ.get(DEV_PASSPHRASE_ENV, _DEV_PASSPHRASE_DEFAULT)


def load_or_create_key(path: Path) -> LocalAccount:
    """Loads a V3 keystore, or creates one (scrypt, 0600) if absent."""
    if path.exists():
        return Account.from_key(Account.decrypt(json.loads(path.read_text()), _passphrase()))
    account = Account.create()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(Account.encrypt(account.key, _passphrase(), kdf="scrypt"), handle)
    return account


def start_devnet(data_dir: Path, *, port: int = 8545, base_port: int = 8601) -> Devnet:
    """Starts (or resumes) the local chain and makes sure the consortium is deployed on it."""
    backend = AnvilBackend(data_dir, port=port)
    try:
        names = ["deployer", *(slug for slug, _ in DEFAULT_MEMBERS), AUDITOR[0]]
        accounts = {name: load_or_create_key(data_dir / "keys" / f"{name}.json") for name in names}
        manifest_path = data_dir / "deployment.json"
        if manifest_path.exists():
            manifest = DeploymentManifest.load(manifest_path)
            try:
                verify_deployment(backend.w3, manifest)
                return Devnet(backend, manifest, accounts, reused=True)
            except DeploymentMismatch:
                pass  # chain state was lost (e.g. deleted): deploy afresh below
        for account in accounts.values():
            backend.fund(account.address, 1000 * 10**18)
        genesis = [
            GenesisMember(
                account=accounts[slug].address,
                role=Role.MEMBER,
                name=name,
                endpoint=f"http://127.0.0.1:{base_port + i}",
                hpke_public_key=_x25519_public_key(),
            )
            for i, (slug, name) in enumerate(DEFAULT_MEMBERS)
        ]
        genesis.append(
            GenesisMember(account=accounts[AUDITOR[0]].address, role=Role.AUDITOR, name=AUDITOR[1],
                          endpoint="", hpke_public_key=_x25519_public_key())  # fmt: skip
        )
        dump_genesis(genesis, data_dir / "genesis.json")
        manifest = deploy_consortium(TransactionSender(backend.w3, accounts["deployer"]), genesis)
        manifest.save(manifest_path)
        return Devnet(backend, manifest, accounts, reused=False)
    except BaseException:
        backend.close()
        raise


def _x25519_public_key() -> bytes:
    return X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
