"""Decodes event logs of any of our contracts by their topic, with the committed ABIs."""

from __future__ import annotations

from functools import cache
from typing import Any, cast

from eth_utils import event_abi_to_log_topic
from web3 import Web3
from web3._utils.events import get_event_data

from ledger_api.chain.artifacts import load_artifact
from ledger_api.chain.compiler import DEPLOYABLE
from ledger_api.chain.types import DecodedEvent


@cache
def _events_by_topic() -> dict[bytes, dict[str, Any]]:
    index: dict[bytes, dict[str, Any]] = {}
    for name in DEPLOYABLE:
        for item in load_artifact(name).abi:
            if item["type"] == "event":
                index[bytes(event_abi_to_log_topic(cast(Any, item)))] = item
    return index


def event_topic(contract: str, event: str) -> str:
    """The first log topic of one of our contracts' events (0x hex), for log filters."""
    for item in load_artifact(contract).abi:
        if item["type"] == "event" and item["name"] == event:
            return "0x" + bytes(event_abi_to_log_topic(cast(Any, item))).hex()
    raise KeyError(f"{contract} has no event {event}")


def decode_log(w3: Web3, log: Any) -> DecodedEvent | None:
    """Decodes one log if its first topic is one of our events; ``None`` otherwise."""
    topics = log["topics"]
    if not topics:
        return None
    abi = _events_by_topic().get(bytes(topics[0]))
    if abi is None:
        return None
    data = get_event_data(w3.codec, abi, log)
    return DecodedEvent(
        name=data["event"], address=data["address"], args=dict(data["args"]), log_index=data["logIndex"]
    )
