"""The demo story (consent, denial, grant, read, revocation, denial on the next request, break-glass,
history, audit verification, FHIR export) on the 4-validator network that `make run NETWORK=clique`
starts: the real ``consortium up --network clique``, the real CLI, every step checked by the demo; then
the network's chain read back for leaks, as on anvil (``tests/cli/test_demo.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from web3 import HTTPProvider, Web3
from web3.middleware import ExtraDataToPOAMiddleware

from ledger_api.chain.backends import free_port
from ledger_api.chain.deployment import DeploymentManifest
from tests.utils.chain_leaks import categories_recovered, patient_accounts_found, read_chain_copy
from tests.utils.story import story_on_consortium

pytestmark = [pytest.mark.network, pytest.mark.slow, pytest.mark.xdist_group("network-demo")]


def test_the_demo_story_passes_on_the_four_validator_network_and_leaves_no_patient_on_chain(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with story_on_consortium(
        data, rpc_port=free_port(), base_port=free_port(3), network="clique", imaging_mb=4
    ) as story:
        output = story.output
        assert story.returncode == 0, output[-6000:]
        for step in (
            "without consent",
            "denied on the very next request",
            "break-glass flagged",
            "verification passed",
        ):
            assert step in output, output[-6000:]
        plan = json.loads((data / "chain" / "network" / "network.json").read_text())
        assert [v["name"] for v in plan["validators"]] == ["dapeng", "kuichong", "nanao", "auditor"]
        genesis = json.loads((data / "chain" / "network" / "dapeng" / "genesis.json").read_text())
        assert "londonBlock" not in genesis["config"] and genesis["config"]["berlinBlock"] == 0
        assert "clique" in genesis["config"]  # the story ran on sealed proof-of-authority blocks, not anvil
        assert not (data / "chain" / "anvil-state.json").exists()

        w3 = Web3(HTTPProvider(story.rpc_url))
        w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
        found = read_chain_copy(w3, DeploymentManifest.load(data / "chain" / "deployment.json"))
        assert story.patients and found.record_ids and found.slots >= 4
        assert patient_accounts_found(found, story.patients) == []
        assert categories_recovered(found, story.patients) == []
