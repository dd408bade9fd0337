"""Genesis and node configuration for a real consortium network: Besu QBFT (the production target) or
GoQuorum QBFT, one validator per hospital, from one consortium definition.

What is written (``write_network``), per client:

* ``genesis.json``: Berlin from block 0 and nothing later (the contracts' ``evmVersion``; GoQuorum
  v24.4.1 runs no London), QBFT with the validators in ``extraData``, free gas;
* the node allowlist (Besu: ``permissions_config.toml``; GoQuorum: ``permissioned-nodes.json``) and the
  static peers (``static-nodes.json``): only the consortium's validators may connect;
* per validator, the client's configuration (Besu: ``<member>.toml``; GoQuorum: ``<member>.args``, the
  command-line flags) with its RPC on the member's own network and its node key left to the operator.

Why the node key is only named by its public key: it is the validator's signing key (the validator
address is derived from it, as on Besu and GoQuorum), and it never leaves the hospital.

Membership changes after genesis: a hospital admitted by the registry's governance gets its validator
voted in by the others (``qbft_proposeValidatorVote`` on Besu, ``istanbul_propose`` on GoQuorum) and
its enode added to every allowlist (Besu: ``perm_addNodesToAllowlist``, which also rewrites the local
allowlist file; Besu 25 removed on-chain node permissioning, so the allowlist is local to each node).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import rlp
from eth_keys.datatypes import PublicKey
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ledger_api.chain.clique import BERLIN_FORKS, BLOCK_GAS_LIMIT

Client = Literal["besu", "goquorum"]
QBFT_EPOCH = 30_000
#: a QBFT round waits this long for a proposal before a new round (Besu's default is 1 s for 2 s blocks)
REQUEST_TIMEOUT_S = 4


class ValidatorDefinition(BaseModel):
    """One hospital's validator: where it runs and its node key's public half."""

    model_config = ConfigDict(extra="forbid")
    member: str = Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")
    #: the node key's public key: 64 bytes (uncompressed, without the 0x04 prefix), hex
    node_public_key: str
    host: str = Field(min_length=1, max_length=253)
    p2p_port: int = Field(30303, ge=1, le=65535)
    rpc_port: int = Field(8545, ge=1, le=65535)
    #: keep every block's state (the audit office's validator)
    archive: bool = False

    @field_validator("node_public_key")
    @classmethod
    def _public_key(cls, value: str) -> str:
        raw = value.removeprefix("0x")
        if raw.startswith("04") and len(raw) == 130:
            raw = raw[2:]
        try:
            PublicKey(bytes.fromhex(raw))
        except (ValueError, Exception) as exc:
            raise ValueError(f"not a secp256k1 public key (64 bytes, hex): {exc}") from None
        return raw.lower()

    @property
    def address(self) -> str:
        """The validator address: the last 20 bytes of the public key's Keccak hash."""
        address: str = PublicKey(bytes.fromhex(self.node_public_key)).to_checksum_address()
        return address

    @property
    def enode(self) -> str:
        return f"enode://{self.node_public_key}@{self.host}:{self.p2p_port}"


class NetworkDefinition(BaseModel):
    """The consortium's network: its chain id, block period and one validator per member."""

    model_config = ConfigDict(extra="forbid")
    chain_id: int = Field(ge=1, le=2**53)
    block_period_s: int = Field(2, ge=1, le=60)
    validators: list[ValidatorDefinition] = Field(min_length=1, max_length=100)

    @field_validator("validators")
    @classmethod
    def _distinct(cls, value: list[ValidatorDefinition]) -> list[ValidatorDefinition]:
        if len({v.member for v in value}) != len(value) or len({v.node_public_key for v in value}) != len(value):
            raise ValueError("each member has one validator, each validator its own node key")
        return value


def qbft_extra_data(validators: list[str]) -> str:
    """QBFT's genesis ``extraData``: RLP([32-byte vanity, [validators], no vote, round 0, no seals]), as
    Besu's ``rlp encode --type=QBFT_EXTRA_DATA`` and GoQuorum write it."""
    encoded: bytes = rlp.encode([b"\x00" * 32, [bytes.fromhex(a[2:]) for a in validators], [], 0, []])
    return "0x" + encoded.hex()


def genesis(definition: NetworkDefinition, client: Client) -> dict[str, Any]:
    config: dict[str, Any] = {"chainId": definition.chain_id, **dict.fromkeys(BERLIN_FORKS, 0)}
    qbft = {
        "blockperiodseconds": definition.block_period_s,
        "epochlength": QBFT_EPOCH,
        "requesttimeoutseconds": REQUEST_TIMEOUT_S,
    }
    if client == "besu":
        config["qbft"] = qbft
    else:
        config["isQuorum"] = True
        config["qbft"] = {**qbft, "ceil2Nby3Block": 0, "policy": 0}
    return {
        "config": config,
        "nonce": "0x0",
        "timestamp": "0x0",
        "gasLimit": hex(BLOCK_GAS_LIMIT),
        "difficulty": "0x1",
        "mixHash": "0x63746963616c2062797a616e74696e65206661756c7420746f6c6572616e6365",  # QBFT's marker
        "coinbase": "0x0000000000000000000000000000000000000000",
        "extraData": qbft_extra_data([v.address for v in definition.validators]),
        "alloc": {},
    }


def _besu_config(validator: ValidatorDefinition) -> str:
    lines = {
        "data-path": f'"/var/lib/besu/{validator.member}"',
        "genesis-file": '"genesis.json"',
        "node-private-key-file": f'"/etc/besu/{validator.member}/key"',
        "p2p-port": str(validator.p2p_port),
        "discovery-enabled": "false",
        "static-nodes-file": '"static-nodes.json"',
        "permissions-nodes-config-file-enabled": "true",
        "permissions-nodes-config-file": '"permissions_config.toml"',
        "rpc-http-enabled": "true",
        "rpc-http-host": '"0.0.0.0"',
        "rpc-http-port": str(validator.rpc_port),
        "rpc-http-api": '["ETH","NET","WEB3","QBFT","PERM","TXPOOL"]',
        "host-allowlist": '["localhost","127.0.0.1"]',
        "min-gas-price": "0",
        "sync-mode": '"FULL"',
        "data-storage-format": '"FOREST"' if validator.archive else '"BONSAI"',
    }
    header = f"# Besu QBFT validator of {validator.member} (medledger chain genesis --client besu)\n"
    return header + "".join(f"{key}={value}\n" for key, value in lines.items())


def _goquorum_args(validator: ValidatorDefinition, chain_id: int) -> str:
    flags = [
        f"--datadir /var/lib/goquorum/{validator.member}",
        f"--nodekey /etc/goquorum/{validator.member}/nodekey",
        f"--networkid {chain_id}",
        f"--port {validator.p2p_port}",
        "--nodiscover --permissioned",
        "--syncmode full",
        f"--gcmode {'archive' if validator.archive else 'full'}",
        "--mine --miner.threads 1 --miner.gasprice 0",
        f"--http --http.addr 0.0.0.0 --http.port {validator.rpc_port} --http.api eth,net,web3,istanbul,txpool",
        "--http.vhosts localhost,127.0.0.1",
    ]
    return f"# GoQuorum QBFT validator of {validator.member}: geth init genesis.json first\n" + "\n".join(flags) + "\n"


def write_network(definition: NetworkDefinition, client: Client, out: Path) -> list[Path]:
    """Writes the genesis, the allowlist, the static peers and each validator's configuration."""
    out.mkdir(parents=True, exist_ok=True)
    enodes = [v.enode for v in definition.validators]
    files = {"genesis.json": json.dumps(genesis(definition, client), indent=2) + "\n"}
    files["static-nodes.json"] = json.dumps(enodes, indent=2) + "\n"
    if client == "besu":
        files["permissions_config.toml"] = "nodes-allowlist=[\n" + ",\n".join(f'  "{e}"' for e in enodes) + "\n]\n"
        for validator in definition.validators:
            files[f"{validator.member}.toml"] = _besu_config(validator)
    else:
        files["permissioned-nodes.json"] = files["static-nodes.json"]
        for validator in definition.validators:
            files[f"{validator.member}.args"] = _goquorum_args(validator, definition.chain_id)
    files["validators.json"] = (
        json.dumps({v.member: {"address": v.address, "enode": v.enode} for v in definition.validators}, indent=2) + "\n"
    )
    written = []
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
        written.append(out / name)
    return written
