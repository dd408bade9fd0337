"""The local consortium's chain: dev identities + one deployment, reused, on one of two chains.

* ``start_devnet``: the embedded development chain (managed anvil), what ``medledger chain up`` and
  ``make run`` start;
* ``start_network``: the BFT test network (``chain.clique``: one geth validator per member and one for
  the audit office), what ``make run NETWORK=clique`` starts. Contracts are deployed through the
  first validator.

Everything lives in one data directory, so a second start continues with the same chain, keys and
contracts:

* ``anvil-state.json``: the chain state (dumped periodically and on stop), or ``network/``: the
  validators' data directories;
* ``keys/deployer.json``: the deployer's Ethereum V3 keystore; ``keys/<member>.json``: each dev
  member's identity keystore (Ethereum key + hybrid HPKE key), all under the development
  passphrase (``MEDLEDGER_DEV_PASSPHRASE``) — development only, never production keys;
* ``genesis.json`` and ``deployment.json``: the founding members and the manifest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from eth_account import Account
from eth_account.signers.local import LocalAccount
from medledger_crypto import DEV_SCRYPT, MemberIdentity

from ledger_api.chain.backends import AnvilBackend, RpcBackend
from ledger_api.chain.clique import DEFAULT_BLOCK_PERIOD_S, CliqueNetwork
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
    backend: RpcBackend
    manifest: DeploymentManifest
    deployer: LocalAccount
    identities: dict[str, MemberIdentity]
    reused: bool
    #: the validators, on the BFT test network (None on anvil)
    network: CliqueNetwork | None = None

    def close(self) -> None:
        """Stops the chain this devnet started (anvil saves its state; validators stop cleanly)."""
        self.backend.close()
        if self.network is not None:
            self.network.close()

    @property
    def member_slugs(self) -> list[str]:
        return [slug for slug, _ in DEFAULT_MEMBERS]


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
        return _ensure_consortium(
            backend,
            data_dir,
            fund=backend.fund,
            endpoints={**_default_endpoints(base_port), **(endpoints or {})},
            break_glass_limit=break_glass_limit,
            break_glass_window=break_glass_window,
        )
    except BaseException:
        backend.close()
        raise


def start_network(
    data_dir: Path,
    *,
    base_port: int = 8601,
    endpoints: dict[str, str] | None = None,
    block_period_s: int = DEFAULT_BLOCK_PERIOD_S,
    break_glass_limit: int = DEFAULT_BREAK_GLASS_LIMIT,
    break_glass_window: int = DEFAULT_BREAK_GLASS_WINDOW,
    startup_timeout: float = 60.0,
    full_nodes: tuple[str, ...] = (),
) -> Devnet:
    """Starts (or resumes) the BFT test network, one validator per member plus the audit office's, waits
    until they agree, and makes sure the consortium is deployed (through the first validator).

    Why four validators and these four: a BFT network of N survives f failures with N >= 3f + 1, so
    four is the smallest that keeps sealing with one down. The three hospitals and the audit office
    each run one: the audit office is the party with the least interest in rewriting who read what,
    and it reads the chain for its audits from a validator it controls.

    Validators keep every block's state (archive mode) unless named in ``full_nodes``. Why: a geth full
    node keeps recent state in memory only, and one killed mid-flight restarts with no state at its head
    (it rewinds towards genesis and resyncs, serving empty answers meanwhile); an archive node comes back
    at its last block. The audit itself needs no old state (it reads logs, receipts and timestamps,
    which full nodes keep); ``make bench`` measures what archive mode costs on disk
    (``network.validator_disk_mb_archive`` against ``..._full``).
    """
    deployer = load_or_create_key(data_dir / "keys" / "deployer.json")
    identities = _identities(data_dir)
    slugs = [*(slug for slug, _ in DEFAULT_MEMBERS), AUDITOR[0]]
    every_endpoint = {**_default_endpoints(base_port), **(endpoints or {})}
    network = CliqueNetwork(
        data_dir / "network",
        slugs,
        passphrase=dev_passphrase(),
        archive=tuple(s for s in slugs if s not in full_nodes),
        block_period_s=block_period_s,
        funded_accounts=[deployer.address, *(identity.address for identity in identities.values())],
        reserved_ports=[urlsplit(url).port or 0 for url in every_endpoint.values()],
    )
    backend: RpcBackend | None = None
    try:
        network.start()
        network.wait_until_agreeing(startup_timeout)
        urls = network.rpc_urls
        first = slugs[0]
        backend = RpcBackend(urls[first], fallbacks=[u for s, u in urls.items() if s != first])
        devnet = _ensure_consortium(
            backend,
            data_dir,
            fund=None,  # the genesis gave the consortium's accounts their balances (see chain.clique)
            endpoints=every_endpoint,
            break_glass_limit=break_glass_limit,
            break_glass_window=break_glass_window,
        )
        devnet.network = network
        _declare_validators(devnet, network)
        return devnet
    except BaseException:
        if backend is not None:
            backend.close()
        network.close()
        raise


def _declare_validators(devnet: Devnet, network: CliqueNetwork) -> None:
    """Member = validator: every founding member and the audit office name their validator in the
    registry (the member nodes then keep the network's validator set in step with it). Sent together,
    then awaited: one block for all instead of one each."""
    from ledger_api.chain.deployment import Consortium

    registry = Consortium(devnet.backend.w3, devnet.manifest).prepare_only().registry
    sent = []
    for slug, identity in devnet.identities.items():
        sender = TransactionSender(devnet.backend.w3, identity.account)
        validator = network.validator(slug).address
        if registry.validator_of(identity.address) != validator:
            prepared = sender.prepare(registry.declare_validator(validator).function, contract="ConsortiumRegistry")
            sender.broadcast(prepared)
            sent.append((sender, prepared))
    for sender, prepared in sent:
        sender.wait(prepared.tx_hash)


def _default_endpoints(base_port: int) -> dict[str, str]:
    return {slug: f"http://127.0.0.1:{base_port + i}" for i, (slug, _) in enumerate(DEFAULT_MEMBERS)}


def _identities(data_dir: Path) -> dict[str, MemberIdentity]:
    slugs = [*(slug for slug, _ in DEFAULT_MEMBERS), AUDITOR[0]]
    return {slug: load_or_create_identity(data_dir / "keys" / f"{slug}.json") for slug in slugs}


def _ensure_consortium(
    backend: RpcBackend,
    data_dir: Path,
    *,
    fund: Callable[[str, int], None] | None,
    gas_price: int | None = None,
    endpoints: dict[str, str],
    break_glass_limit: int,
    break_glass_window: int,
) -> Devnet:
    """The deployment recorded in ``data_dir`` if the chain still has it, else a fresh one."""
    deployer = load_or_create_key(data_dir / "keys" / "deployer.json")
    identities = _identities(data_dir)
    manifest_path = data_dir / "deployment.json"
    if manifest_path.exists():
        manifest = DeploymentManifest.load(manifest_path)
        try:
            verify_deployment(backend.w3, manifest)
            return Devnet(backend, manifest, deployer, identities, reused=True)
        except DeploymentMismatch:
            pass  # chain state was lost (e.g. deleted): deploy afresh below
    if fund is not None:
        for address in (deployer.address, *(i.address for i in identities.values())):
            fund(address, 1000 * 10**18)
    genesis = [
        GenesisMember(
            account=identities[slug].address,
            role=Role.MEMBER,
            name=name,
            endpoint=endpoints[slug],
            hpke_public_key=identities[slug].hpke_public_key.to_bytes(),
        )
        for slug, name in DEFAULT_MEMBERS
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
        TransactionSender(backend.w3, deployer, gas_price=gas_price),
        genesis,
        break_glass_limit=break_glass_limit,
        break_glass_window=break_glass_window,
    )
    manifest.save(manifest_path)
    return Devnet(backend, manifest, deployer, identities, reused=False)
