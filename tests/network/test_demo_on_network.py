"""The demo story (consent, denial, grant, read, revocation, denial on the next request, break-glass,
history, audit verification, FHIR export) on the 4-validator network that `make run NETWORK=clique`
starts: the real ``consortium up --network clique``, the real CLI, every step checked by the demo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ledger_api.chain.backends import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.network, pytest.mark.slow, pytest.mark.xdist_group("network-demo")]


def test_the_demo_story_passes_on_the_four_validator_network(tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "demo.py"),
            "--data-dir",
            str(data),
            "--imaging-mb",
            "4",
            "--base-port",
            str(free_port(3)),
            "--network",
            "clique",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    for step in ("without consent", "denied on the very next request", "break-glass flagged", "verification passed"):
        assert step in output, output[-6000:]
    plan = json.loads((data / "chain" / "network" / "network.json").read_text())
    assert [v["name"] for v in plan["validators"]] == ["dapeng", "kuichong", "nanao", "auditor"]
    genesis = json.loads((data / "chain" / "network" / "dapeng" / "genesis.json").read_text())
    assert "londonBlock" not in genesis["config"] and genesis["config"]["berlinBlock"] == 0
    assert "clique" in genesis["config"]  # the story ran on sealed proof-of-authority blocks, not anvil
    assert not (data / "chain" / "anvil-state.json").exists()
