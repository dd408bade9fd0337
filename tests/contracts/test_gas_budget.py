"""Gas is deterministic, so the foundation issue's gas budgets are held by a test, not only a benchmark."""

from __future__ import annotations

import pytest

from ledger_api.chain.backends import EthTesterBackend
from ledger_api.chain.gas import GAS_BUDGETS, measure_gas

#: one worker measures once for every budget here
pytestmark = pytest.mark.xdist_group("gas")


@pytest.fixture(scope="module")
def figures() -> dict[str, float]:
    with EthTesterBackend() as backend:
        return measure_gas(backend)


@pytest.mark.parametrize("figure", sorted(GAS_BUDGETS))
def test_gas_stays_within_budget(figures: dict[str, float], figure: str) -> None:
    assert figures[figure] <= GAS_BUDGETS[figure], f"{figure} = {figures[figure]} > {GAS_BUDGETS[figure]}"


def test_steady_state_is_cheaper_than_first_use(figures: dict[str, float]) -> None:
    assert figures["gas.consent_grant_relayed"] < figures["gas.consent_grant_relayed_first"]
    assert figures["gas.record_anchor_version"] < figures["gas.record_anchor"]
