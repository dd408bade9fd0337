"""The embedded development chain: managed anvil + dev identities + one deployment, reused.

This is what ``medledger chain up`` (and for now ``make run``) starts. Everything lives in one
data directory, so a second start continues with the same chain, keys and contracts:

* ``anvil-state.json``: the chain state (dumped periodically and on stop);
* ``keys/deployer.json``: the deployer's Ethereum V3 keystore; ``keys/<member>.json``: each dev
  member's identity keystore (Ethereum key + hybrid HPKE key), all under the development
  passphrase (``MEDLEDGER_DEV_PASSPHRASE``) — development only, never production keys;
* ``genesis.json`` and ``deployment.json``: the founding members and the manifest.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from medledger_crypto import DEV_SCRYPT, MemberIdentity

from ledger_api.chain.backends import AnvilBackend
from ledger_api.chain.defaults import (
    AUDITOR,
    DEFAULT_BREAK_GLASS_LIMIT,
    DEFAULT_BREAK_GLASS_WINDOW,
    DEFAULT_MEMBERS,
    DEV_PASSPHRASE_ENV,
)
from ledger_api.chain.defaults import DEV_PASSPHRASE_DEFAULT as _DEV_PASSPHRASE_DEFAULT
from ledger_api.chain.deployment import DeploymentManifest, deploy_consortium, verify_deployment
from ledger_api.chain.genesis import dump_genesis
from ledger_api.chain.transactions import TransactionSender
from ledger_api.chain.types import GenesisMember, Role
from ledger_api.errors import DeploymentMismatch


@dataclass
class Devnet:
    backend: AnvilBackend
    manifest: DeploymentManifest
    deployer: LocalAccount
    identities: dict[str, MemberIdentity]
    reused: bool


def dev_passphrase() -> str:
    """The local consortium's keystore passphrase (the dev default unless the environment names one)."""
    return os.environ.get(DEV_PASSPHRASE_ENV, _DEV_PASSPHRASE_DEFAULT)


def load_or_create_identity(path: Path) -> MemberIdentity:
    """Loads a member identity keystore, or creates one (hybrid HPKE key) if absent."""
    if path.exists():
        return MemberIdentity.load(path, dev_passphrase())
    identity = MemberIdentity.generate()
    identity.save(path, dev_passphrase(), dev_mode=True, params=DEV_SCRYPT)
    return identity


def load_or_create_key(path: Path) -> LocalAccount:
    """Loads a V3 keystore, or creates one (scrypt, 0600) if absent."""
    if path.exists():
        loaded: LocalAccount = Account.from_key(Account.decrypt(json.loads(path.read_text()), dev_passphrase()))
        return loaded
    account: LocalAccount = Account.create()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(Account.encrypt(account.key, dev_passphrase(), kdf="scrypt"), handle)
    return account


def start_devnet(
    data_dir: Path,
    *,
    port: int | None = 8545,
    base_port: int = 8601,
    endpoints: dict[str, str] | None = None,
    break_glass_limit: int = DEFAULT_BREAK_GLASS_LIMIT,
    break_glass_window: int = DEFAULT_BREAK_GLASS_WINDOW,
) -> Devnet:
    """Starts (or resumes) the local chain and makes sure the consortium is deployed on it (port None: any free)."""
    backend = AnvilBackend(data_dir, port=port)
    try:
        deployer = load_or_create_key(data_dir / "keys" / "deployer.json")
        slugs = [*(slug for slug, _ in DEFAULT_MEMBERS), AUDITOR[0]]
        identities = {slug: load_or_create_identity(data_dir / "keys" / f"{slug}.json") for slug in slugs}
        manifest_path = data_dir / "deployment.json"
        if manifest_path.exists():
            manifest = DeploymentManifest.load(manifest_path)
            try:
                verify_deployment(backend.w3, manifest)
                return Devnet(backend, manifest, deployer, identities, reused=True)
            except DeploymentMismatch:
                pass  # chain state was lost (e.g. deleted): deploy afresh below
        for address in (deployer.address, *(i.address for i in identities.values())):
            backend.fund(address, 1000 * 10**18)
        genesis = [
            GenesisMember(
                account=identities[slug].address,
                role=Role.MEMBER,
                name=name,
                endpoint=(endpoints or {}).get(slug, f"http://127.0.0.1:{base_port + i}"),
                hpke_public_key=identities[slug].hpke_public_key.to_bytes(),
            )
            for i, (slug, name) in enumerate(DEFAULT_MEMBERS)
        ]
        auditor = identities[AUDITOR[0]]
        genesis.append(
            GenesisMember(
                account=auditor.address,
                role=Role.AUDITOR,
                name=AUDITOR[1],
                endpoint="",
                hpke_public_key=auditor.hpke_public_key.to_bytes(),
            )
        )
        dump_genesis(genesis, data_dir / "genesis.json")
        manifest = deploy_consortium(
            TransactionSender(backend.w3, deployer),
            genesis,
            break_glass_limit=break_glass_limit,
            break_glass_window=break_glass_window,
        )
        manifest.save(manifest_path)
        return Devnet(backend, manifest, deployer, identities, reused=False)
    except BaseException:
        backend.close()
        raise
