"""Compiles the Solidity contracts with the pinned solc-js through py-solc-x.

Why solc-js: ``solcx.install_solc()`` downloads a native binary from outside the package
registries, which fails on closed hospital networks and on CI. The npm ``solc`` package (pinned
in package.json) is the official compiler built to WebAssembly; ``scripts/solc-js`` exposes it
as the ``--version`` / ``--standard-json`` executable py-solc-x expects.

Only developers compile: the artifacts are committed, so running a node never needs a compiler.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS_DIR = REPO_ROOT / "contracts"
ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"
SOLC_JS = REPO_ROOT / "scripts" / "solc-js"

SOLC_VERSION = "0.8.37"
# berlin: the newest fork GoQuorum v24.4.1 runs (it is geth 1.10 without London: no EIP-1559, no
# BASEFEE), so it runs on GoQuorum and on Besu alike; the BFT test network (chain.clique) runs berlin too
# and the network tier executes these very artifacts on it. Nothing later: london adds BASEFEE,
# shanghai PUSH0, cancun MCOPY and transient storage.
EVM_VERSION = "berlin"
#: the one warning accepted: solc 0.8.37 says targets before london will go in a later release. That is
#: why the compiler is pinned; the day GoQuorum support is dropped the target can move to london
BERLIN_DEPRECATION = "Support for EVM versions older than london is deprecated"
OPTIMIZER = {"enabled": True, "runs": 10_000}

#: The contracts deployed by the consortium; each gets one artifact file.
DEPLOYABLE = ("ConsortiumRegistry", "ConsentRegistry", "RecordRegistry", "AccessTrail")


def standard_json_input() -> dict[str, Any]:
    """Builds the solc standard-JSON input from every .sol file under contracts/."""
    sources = {
        path.relative_to(REPO_ROOT).as_posix(): {"content": path.read_text(encoding="utf-8")}
        for path in sorted(CONTRACTS_DIR.rglob("*.sol"))
    }
    return {
        "language": "Solidity",
        "sources": sources,
        "settings": {
            "evmVersion": EVM_VERSION,
            "optimizer": OPTIMIZER,
            "viaIR": True,
            "metadata": {"bytecodeHash": "none"},
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
        },
    }


def compile_contracts() -> dict[str, dict[str, Any]]:
    """Compiles all contracts and returns one artifact per deployable contract.

    Raises ``RuntimeError`` naming every compiler error; warnings are errors too, so the
    contracts stay warning-free.
    """
    import solcx  # imported here: only developers compile

    try:
        output = solcx.compile_standard(standard_json_input(), solc_binary=SOLC_JS, allow_empty=True)
    except solcx.exceptions.SolcError as exc:  # solc reported errors: show them, not its whole output
        raise RuntimeError(f"solc failed:\n{exc.message}") from None
    problems = [
        e["formattedMessage"]
        for e in output.get("errors", [])
        if e["severity"] != "info" and not e["formattedMessage"].startswith(BERLIN_DEPRECATION)
    ]
    if problems:
        raise RuntimeError("solc reported:\n" + "\n".join(problems))
    artifacts: dict[str, dict[str, Any]] = {}
    for source, contracts in output["contracts"].items():
        for name, compiled in contracts.items():
            if name not in DEPLOYABLE:
                continue
            bytecode = "0x" + compiled["evm"]["bytecode"]["object"]
            artifacts[name] = {
                "contractName": name,
                "sourceName": source,
                "compiler": {"version": SOLC_VERSION, "evmVersion": EVM_VERSION, "optimizer": OPTIMIZER},
                "abi": compiled["abi"],
                "bytecode": bytecode,
                "deployedBytecode": "0x" + compiled["evm"]["deployedBytecode"]["object"],
                "bytecodeHash": "0x" + hashlib.sha256(bytes.fromhex(bytecode[2:])).hexdigest(),
            }
    missing = set(DEPLOYABLE) - set(artifacts)
    if missing:
        raise RuntimeError(f"contracts not produced by solc: {sorted(missing)}")
    return artifacts


def render(artifact: dict[str, Any]) -> str:
    """The exact text written to an artifact file (stable, so staleness is a text comparison)."""
    return json.dumps(artifact, indent=2, sort_keys=True) + "\n"


def write_artifacts(artifacts: dict[str, dict[str, Any]], directory: Path = ARTIFACTS_DIR) -> list[Path]:
    """Writes one JSON file per contract; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, artifact in sorted(artifacts.items()):
        path = directory / f"{name}.json"
        path.write_text(render(artifact), encoding="utf-8")
        written.append(path)
    return written
