"""Deployment manifests: written, reloaded, and verified against the chain before use."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger_api.chain.backends import AnvilBackend, EthTesterBackend
from ledger_api.chain.deployment import Consortium, DeploymentManifest, verify_deployment
from ledger_api.errors import DeploymentMismatch
from tests.utils.actors import Actors, Chain, deploy_test_consortium


def test_manifest_round_trips_and_names_every_contract(chain: Chain, tmp_path: Path) -> None:
    path = tmp_path / "deployment.json"
    chain.manifest.save(path)
    loaded = DeploymentManifest.load(path)
    assert loaded == chain.manifest
    assert set(loaded.contracts) == {"ConsortiumRegistry", "ConsentRegistry", "RecordRegistry", "AccessTrail"}
    assert loaded.chain_id == chain.backend.chain_id
    for deployed in loaded.contracts.values():
        assert deployed.bytecode_hash.startswith("0x") and deployed.block_number > 0


def test_verify_accepts_the_real_deployment(chain: Chain) -> None:
    verify_deployment(chain.w3, chain.manifest)


def test_verify_rejects_another_chain_id(chain: Chain) -> None:
    wrong = chain.manifest.model_copy(update={"chain_id": chain.manifest.chain_id + 1})
    with pytest.raises(DeploymentMismatch, match="chain id"):
        verify_deployment(chain.w3, wrong)


def test_verify_rejects_addresses_without_code_or_wiring(chain: Chain) -> None:
    contracts = dict(chain.manifest.contracts)
    contracts["AccessTrail"] = contracts["AccessTrail"].model_copy(update={"address": chain.actors.stranger.address})
    with pytest.raises(DeploymentMismatch, match="no code for AccessTrail"):
        verify_deployment(chain.w3, chain.manifest.model_copy(update={"contracts": contracts}))
    swapped = dict(chain.manifest.contracts)
    swapped["RecordRegistry"], swapped["AccessTrail"] = swapped["AccessTrail"], swapped["RecordRegistry"]
    with pytest.raises(DeploymentMismatch, match="consumers"):
        verify_deployment(chain.w3, chain.manifest.model_copy(update={"contracts": swapped}))


def test_a_manifest_from_another_chain_is_rejected(actors: Actors) -> None:
    with EthTesterBackend() as one, EthTesterBackend() as other:
        manifest = deploy_test_consortium(one, actors)
        with pytest.raises(DeploymentMismatch, match="no code"):
            verify_deployment(other.w3, manifest)


@pytest.mark.anvil
def test_managed_anvil_keeps_the_deployment_across_restarts(tmp_path: Path, actors: Actors) -> None:
    with AnvilBackend(tmp_path) as first:
        manifest = deploy_test_consortium(first, actors)
        block = first.w3.eth.block_number
    assert (tmp_path / "anvil-state.json").stat().st_size > 0
    with AnvilBackend(tmp_path) as second:
        assert second.w3.eth.block_number >= block
        verify_deployment(second.w3, manifest)
        assert Consortium(second.w3, manifest).registry.member_count() == 4
