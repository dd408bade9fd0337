"""Deploys the consortium's contracts and records where they are in a manifest.

The manifest (chain id, addresses, block numbers, artifact hashes) is what every member node
loads at start-up; nodes then check that the chain really holds those contracts, wired to each
other, before serving (``verify_deployment``), so a node never talks to the wrong chain.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Generic

from pydantic import BaseModel, ConfigDict
from web3 import Web3

from ledger_api.chain.access_trail import AccessTrailClient
from ledger_api.chain.artifacts import load_artifact
from ledger_api.chain.consent_registry import ConsentRegistryClient
from ledger_api.chain.consortium_registry import ConsortiumRegistryClient
from ledger_api.chain.contract import PREPARE_ONLY, ContractClient, UnsignedTransaction, W, Writer
from ledger_api.chain.defaults import (  # re-exported: the constants live in a light module
    DEFAULT_BREAK_GLASS_DURATION,
    DEFAULT_BREAK_GLASS_LIMIT,
    DEFAULT_BREAK_GLASS_WINDOW,
    DEFAULT_RECOVERY_DELAY,
    DEFAULT_RECOVERY_THRESHOLD,
    DEFAULT_VOTING_PERIOD,
)
from ledger_api.chain.reader import ChainReader, reader_for
from ledger_api.chain.record_registry import RecordRegistryClient
from ledger_api.chain.transactions import TransactionSender, chain_call
from ledger_api.chain.types import GenesisMember, Receipt
from ledger_api.errors import DeploymentMismatch

MANIFEST_VERSION = 1


class ContractDeployment(BaseModel):
    model_config = ConfigDict(frozen=True)
    address: str
    tx_hash: str
    block_number: int
    bytecode_hash: str


class DeploymentManifest(BaseModel):
    """Where the consortium's contracts live, and with which parameters they were deployed."""

    model_config = ConfigDict(frozen=True)
    version: int = MANIFEST_VERSION
    chain_id: int
    deployer: str
    deployed_at: str
    voting_period: int
    break_glass_duration: int
    break_glass_limit: int = DEFAULT_BREAK_GLASS_LIMIT
    break_glass_window: int = DEFAULT_BREAK_GLASS_WINDOW
    recovery_threshold: int = DEFAULT_RECOVERY_THRESHOLD
    recovery_delay: int = DEFAULT_RECOVERY_DELAY
    contracts: dict[str, ContractDeployment]

    def address(self, name: str) -> str:
        return self.contracts[name].address

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.model_dump_json(indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> DeploymentManifest:
        return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))


def deploy_contract(sender: TransactionSender, name: str, *args: object) -> ContractDeployment:
    """Deploys one contract from its committed artifact."""
    artifact = load_artifact(name)
    factory = sender.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = sender.send(factory.constructor(*args), contract=name)
    assert receipt.contract_address is not None
    return ContractDeployment(
        address=receipt.contract_address,
        tx_hash=receipt.tx_hash,
        block_number=receipt.block_number,
        bytecode_hash=artifact.bytecode_hash,
    )


def deploy_consortium(
    sender: TransactionSender,
    genesis: list[GenesisMember],
    *,
    voting_period: int = DEFAULT_VOTING_PERIOD,
    break_glass_duration: int = DEFAULT_BREAK_GLASS_DURATION,
    break_glass_limit: int = DEFAULT_BREAK_GLASS_LIMIT,
    break_glass_window: int = DEFAULT_BREAK_GLASS_WINDOW,
    recovery_threshold: int = DEFAULT_RECOVERY_THRESHOLD,
    recovery_delay: int = DEFAULT_RECOVERY_DELAY,
) -> DeploymentManifest:
    """Deploys registry, consent registry, record registry and access trail, then wires them."""
    genesis_args = [(m.account, int(m.role), m.name, m.endpoint, m.hpke_public_key) for m in genesis]
    registry = deploy_contract(sender, "ConsortiumRegistry", genesis_args, voting_period)
    consents = deploy_contract(
        sender,
        "ConsentRegistry",
        registry.address,
        break_glass_duration,
        break_glass_limit,
        break_glass_window,
        recovery_threshold,
        recovery_delay,
    )
    records = deploy_contract(sender, "RecordRegistry", registry.address)
    trail = deploy_contract(sender, "AccessTrail", registry.address)
    ConsortiumRegistryClient(sender.w3, registry.address, sender).bind_consumers(
        [consents.address, records.address, trail.address]
    )
    return DeploymentManifest(
        chain_id=sender.chain_id,
        deployer=sender.address,
        deployed_at=datetime.now(UTC).isoformat(timespec="seconds"),
        voting_period=voting_period,
        break_glass_duration=break_glass_duration,
        break_glass_limit=break_glass_limit,
        break_glass_window=break_glass_window,
        recovery_threshold=recovery_threshold,
        recovery_delay=recovery_delay,
        contracts={
            "ConsortiumRegistry": registry,
            "ConsentRegistry": consents,
            "RecordRegistry": records,
            "AccessTrail": trail,
        },
    )


def verify_deployment(w3: Web3, manifest: DeploymentManifest) -> None:
    """Checks the chain holds the manifest's contracts, wired together; raises ``DeploymentMismatch``.

    Checks: chain id; code present at every address; the registry's consumers are exactly the
    three others; each consumer mirrors this registry.
    """
    chain_id = chain_call(lambda: int(w3.eth.chain_id))
    if chain_id != manifest.chain_id:
        raise DeploymentMismatch(f"chain id is {chain_id}, manifest says {manifest.chain_id}")
    for name, deployed in manifest.contracts.items():
        if len(chain_call(w3.eth.get_code, Web3.to_checksum_address(deployed.address))) == 0:
            raise DeploymentMismatch(f"no code for {name} at {deployed.address}")
    registry: ConsortiumRegistryClient[Receipt] = ConsortiumRegistryClient(w3, manifest.address("ConsortiumRegistry"))
    expected = [manifest.address(n) for n in ("ConsentRegistry", "RecordRegistry", "AccessTrail")]
    if [Web3.to_checksum_address(a) for a in registry.consumers()] != [Web3.to_checksum_address(a) for a in expected]:
        raise DeploymentMismatch("registry consumers differ from the manifest")
    for client_type in (ConsentRegistryClient, RecordRegistryClient, AccessTrailClient):
        client: ContractClient[Receipt] = client_type(w3, manifest.address(client_type.contract_name))
        if Web3.to_checksum_address(client._read("registry")) != registry.address:
            raise DeploymentMismatch(f"{client_type.contract_name} mirrors another registry")


class Consortium(Generic[W]):
    """The four contract clients of one deployment over one ``ChainReader``, writing through one
    writer: a ``TransactionSender`` (writes return receipts), ``PREPARE_ONLY`` (writes return unsigned
    transactions, for the outbox), or none (read-only)."""

    def __init__(
        self,
        w3: Web3,
        manifest: DeploymentManifest,
        sender: Writer[W] | None = None,
        *,
        reader: ChainReader | None = None,
    ) -> None:
        self.w3 = w3
        self.manifest = manifest
        self.reader = reader if reader is not None else reader_for(w3)
        self.registry = ConsortiumRegistryClient(w3, manifest.address("ConsortiumRegistry"), sender, reader=self.reader)
        self.consents = ConsentRegistryClient(w3, manifest.address("ConsentRegistry"), sender, reader=self.reader)
        self.records = RecordRegistryClient(w3, manifest.address("RecordRegistry"), sender, reader=self.reader)
        self.trail = AccessTrailClient(w3, manifest.address("AccessTrail"), sender, reader=self.reader)

    def as_sender(self, sender: TransactionSender) -> Consortium[Receipt]:
        return Consortium(self.w3, self.manifest, sender, reader=self.reader)

    def prepare_only(self) -> Consortium[UnsignedTransaction]:
        """The same clients in prepare-only mode: their write methods return the unsigned transaction."""
        return Consortium(self.w3, self.manifest, PREPARE_ONLY, reader=self.reader)
