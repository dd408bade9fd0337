"""Genesis files: the founding members of a consortium, as JSON.

Format: a list of objects ``{"account", "role" ("member"|"auditor"), "name", "endpoint",
"hpke_public_key" (hex)}``. Names and endpoints are institutional, never personal data.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator
from web3 import Web3

from ledger_api.chain.types import GenesisMember, Role


class GenesisEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account: str
    role: str
    name: str
    endpoint: str
    hpke_public_key: str

    @field_validator("account")
    @classmethod
    def _checksum(cls, value: str) -> str:
        if not Web3.is_address(value):
            raise ValueError(f"not an Ethereum address: {value!r}")
        return Web3.to_checksum_address(value)

    @field_validator("role")
    @classmethod
    def _role(cls, value: str) -> str:
        if value not in ("member", "auditor"):
            raise ValueError("role must be 'member' or 'auditor'")
        return value

    def to_member(self) -> GenesisMember:
        return GenesisMember(
            account=self.account,
            role=Role.MEMBER if self.role == "member" else Role.AUDITOR,
            name=self.name,
            endpoint=self.endpoint,
            hpke_public_key=bytes.fromhex(self.hpke_public_key.removeprefix("0x")),
        )


def load_genesis(path: Path) -> list[GenesisMember]:
    """Reads and validates a genesis file; raises ``ValueError`` naming the problem."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{path}: expected a non-empty list of members")
    return [GenesisEntry.model_validate(item).to_member() for item in raw]


def dump_genesis(members: list[GenesisMember], path: Path) -> None:
    entries = [
        {
            "account": m.account,
            "role": "member" if m.role == Role.MEMBER else "auditor",
            "name": m.name,
            "endpoint": m.endpoint,
            "hpke_public_key": m.hpke_public_key.hex(),
        }
        for m in members
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(entries, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
