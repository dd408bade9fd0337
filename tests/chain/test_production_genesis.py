"""`medledger chain genesis`: a real consortium's QBFT genesis and node configuration, from one definition."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import rlp
from eth_account import Account
from eth_keys import keys

from ledger_api.chain.production import NetworkDefinition, qbft_extra_data


def _definition(path: Path, count: int = 4) -> tuple[Path, list[str]]:
    accounts = [Account.create() for _ in range(count)]
    members = ["dapeng", "kuichong", "nanao", "auditor"][:count]
    validators = [
        {
            "member": member,
            "node_public_key": keys.PrivateKey(bytes(a.key)).public_key.to_bytes().hex(),
            "host": f"10.20.0.{i + 1}",
            "archive": member == "auditor",
        }
        for i, (member, a) in enumerate(zip(members, accounts, strict=True))
    ]
    path.write_text(json.dumps({"chain_id": 20261129, "block_period_s": 2, "validators": validators}))
    return path, [a.address for a in accounts]


def _genesis(tmp_path: Path, client: str) -> tuple[Path, list[str]]:
    definition, addresses = _definition(tmp_path / "network.json")
    out = tmp_path / client
    done = subprocess.run(
        [sys.executable, "-m", "ledger_api.cli", "chain", "genesis", "--client", client, "--network", str(definition)]
        + ["--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return out, addresses


def test_besu_gets_a_berlin_qbft_genesis_with_every_hospital_a_validator_and_an_allowlist(tmp_path: Path) -> None:
    out, addresses = _genesis(tmp_path, "besu")
    genesis = json.loads((out / "genesis.json").read_text())
    assert genesis["config"]["berlinBlock"] == 0 and "londonBlock" not in genesis["config"]
    assert genesis["config"]["qbft"]["blockperiodseconds"] == 2 and genesis["config"]["chainId"] == 20261129
    vanity, validators, vote, round_, seals = rlp.decode(bytes.fromhex(genesis["extraData"][2:]))
    assert vanity == b"\x00" * 32 and vote == [] and round_ == b"" and seals == []
    assert ["0x" + v.hex() for v in validators] == [a.lower() for a in addresses]  # derived from the node keys
    allowlist = tomllib.loads((out / "permissions_config.toml").read_text())["nodes-allowlist"]
    assert allowlist == json.loads((out / "static-nodes.json").read_text()) and len(allowlist) == 4
    assert all(e.startswith("enode://") and e.endswith(":30303") for e in allowlist)
    auditor = tomllib.loads((out / "auditor.toml").read_text())
    assert auditor["data-storage-format"] == "FOREST" and auditor["min-gas-price"] == 0
    assert auditor["permissions-nodes-config-file-enabled"] is True and auditor["discovery-enabled"] is False


def test_goquorum_gets_the_same_validators_in_its_own_genesis_shape(tmp_path: Path) -> None:
    out, addresses = _genesis(tmp_path, "goquorum")
    genesis = json.loads((out / "genesis.json").read_text())
    assert genesis["config"]["isQuorum"] is True and genesis["config"]["qbft"]["ceil2Nby3Block"] == 0
    assert genesis["extraData"] == qbft_extra_data(addresses)
    assert json.loads((out / "permissioned-nodes.json").read_text()) == json.loads(
        (out / "static-nodes.json").read_text()
    )
    assert (
        "--permissioned" in (out / "dapeng.args").read_text()
        and "--gcmode archive" in (out / "auditor.args").read_text()
    )


def test_a_definition_with_a_bad_key_or_a_member_twice_is_refused_by_name(tmp_path: Path) -> None:
    definition, _ = _definition(tmp_path / "network.json", 2)
    raw = json.loads(definition.read_text())
    raw["validators"][1]["node_public_key"] = "ab" * 10
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(raw))
    done = subprocess.run(
        [sys.executable, "-m", "ledger_api.cli", "chain", "genesis", "--client", "besu", "--network", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "secp256k1 public key" in done.stdout + done.stderr
    raw = json.loads(definition.read_text())
    raw["validators"][1]["member"] = raw["validators"][0]["member"]
    try:
        NetworkDefinition.model_validate(raw)
        raise AssertionError("a member with two validators was accepted")
    except ValueError as exc:
        assert "one validator" in str(exc)
