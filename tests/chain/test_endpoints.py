"""A member's chain endpoints: its own validator first; a failed one goes to the back, and comes back
first only after its cooldown and once it has caught up (its probe passes)."""

from __future__ import annotations

import time

import pytest

from ledger_api.chain.backends import free_port
from ledger_api.chain.endpoints import Endpoints
from ledger_api.chain.rpc import JsonRpcReader
from ledger_api.errors import ChainUnavailable

OWN, PARTNER, OTHER = "http://127.0.0.1:1/own", "http://127.0.0.1:1/partner", "http://127.0.0.1:1/other"


def test_the_own_validator_comes_first_and_a_failed_one_goes_to_the_back() -> None:
    endpoints = Endpoints([OWN, PARTNER, OTHER, OWN], cooldown_s=60)
    assert endpoints.order() == [OWN, PARTNER, OTHER]  # duplicates collapse, preference kept
    endpoints.failed(OWN)
    assert endpoints.order() == [PARTNER, OTHER, OWN]
    endpoints.failed(PARTNER)
    assert endpoints.order() == [OTHER, OWN, PARTNER]  # the oldest failure is tried first among failed ones


def test_after_its_cooldown_an_endpoint_serves_again_only_once_it_has_caught_up() -> None:
    caught_up = {"now": False}
    endpoints = Endpoints([OWN, PARTNER], cooldown_s=0.05, probe=lambda url: caught_up["now"])
    endpoints.failed(OWN)
    time.sleep(0.06)
    assert endpoints.order() == [PARTNER, OWN]  # cooled down, but still behind: a new cooldown starts
    caught_up["now"] = True
    assert endpoints.order() == [PARTNER, OWN]  # within that new cooldown
    time.sleep(0.06)
    assert endpoints.order() == [OWN, PARTNER]


def test_a_reader_whose_own_validator_is_down_asks_the_next_and_with_none_left_answers_unavailable() -> None:
    dead = [f"http://127.0.0.1:{free_port()}" for _ in range(2)]
    reader = JsonRpcReader(Endpoints(dead, cooldown_s=60), timeout=1)
    with pytest.raises(ChainUnavailable, match="unreachable"):
        reader.request("eth_blockNumber", [])
    assert reader.endpoints.order() == dead  # both failed, in the order they failed
    reader.close()
