"""Loads the committed contract artifacts (ABI + bytecode) shipped inside the package."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

ARTIFACTS_DIR = Path(__file__).resolve().parent / "artifacts"


@dataclass(frozen=True)
class Artifact:
    """One compiled contract as committed under ``ledger_api/chain/artifacts``."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str
    bytecode_hash: str


@cache
def load_artifact(name: str) -> Artifact:
    """Returns the artifact of contract ``name``; raises ``FileNotFoundError`` if it was never compiled."""
    data = json.loads((ARTIFACTS_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return Artifact(
        name=data["contractName"],
        abi=data["abi"],
        bytecode=data["bytecode"],
        deployed_bytecode=data["deployedBytecode"],
        bytecode_hash=data["bytecodeHash"],
    )
