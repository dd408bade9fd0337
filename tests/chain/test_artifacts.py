"""The committed artifacts are exactly what the pinned compiler makes of contracts/ today."""

from __future__ import annotations

import json

import pytest

from ledger_api.chain import compiler
from ledger_api.chain.artifacts import ARTIFACTS_DIR, load_artifact

#: one worker compiles once for every test here (~20 s a compile)
pytestmark = pytest.mark.xdist_group("artifacts")


@pytest.fixture(scope="module")
def fresh() -> dict:
    return compiler.compile_contracts()


def test_committed_artifacts_are_not_stale(fresh: dict) -> None:
    for name, artifact in fresh.items():
        committed = (ARTIFACTS_DIR / f"{name}.json").read_text(encoding="utf-8")
        assert committed == compiler.render(artifact), f"{name}.json is stale: run `make contracts`"


def test_artifacts_record_pinned_compiler_settings(fresh: dict) -> None:
    package = json.loads((compiler.REPO_ROOT / "package.json").read_text())
    assert package["dependencies"]["solc"] == compiler.SOLC_VERSION
    for name in compiler.DEPLOYABLE:
        artifact = load_artifact(name)
        raw = json.loads((ARTIFACTS_DIR / f"{name}.json").read_text())
        assert raw["compiler"] == {"version": "0.8.37", "evmVersion": "berlin", "optimizer": compiler.OPTIMIZER}
        assert len(artifact.bytecode) > 1000 and bytes.fromhex(artifact.bytecode[2:]) and len(artifact.abi) > 0


def test_berlin_bytecode_has_no_push0(fresh: dict) -> None:
    """Nothing later than berlin, which GoQuorum runs: no PUSH0 (0x5f, shanghai), no BASEFEE (0x48,
    london); walk opcodes, skipping push data."""
    for name, artifact in fresh.items():
        code = bytes.fromhex(artifact["deployedBytecode"][2:])
        i = 0
        while i < len(code):
            op = code[i]
            assert op not in (0x5F, 0x48), f"opcode {op:#x} (after berlin) in {name} at {i}"
            i += 1 + (op - 0x5F if 0x60 <= op <= 0x7F else 0)


def test_compile_errors_are_reported_by_name(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "contracts"
    broken.mkdir()
    (broken / "Broken.sol").write_text("pragma solidity 0.8.37; contract Broken { function f( }")
    monkeypatch.setattr(compiler, "CONTRACTS_DIR", broken)
    monkeypatch.setattr(compiler, "REPO_ROOT", tmp_path)
    with pytest.raises(RuntimeError, match="ParserError"):
        compiler.compile_contracts()
