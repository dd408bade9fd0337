"""Member = validator: each member node votes the validator set of the consortium's network to match the
registry: the validators that active members and auditors declared are in, those of suspended or
removed ones are out.

Why votes driven by the member nodes (and not a validator-selection contract): the network's own
voting is what Clique (the test network here), GoQuorum (``istanbul_propose``) and Besu QBFT
(``qbft_proposeValidatorVote``) all have, and a vote needs a majority of the current validators, so no
single member can change the set: the same rule as the registry's governance, applied by the
validators themselves. Besu's contract-based selection would read the registry directly, but it is a
different genesis mode, not available on Clique or GoQuorum's block-header voting.

Each tick (every ``INTERVAL_S``): the node declares its own validator on chain if the registry does not
name it yet (``declareValidator``; its validator is whatever its own RPC endpoint seals with), then
compares the registry with the validator set its own validator reports and casts the missing votes on
it. Votes already in the set (or already out) are discarded, so nothing is voted twice. Bounded: one
registry read per member (the registry is small), one vote per difference.
"""

from __future__ import annotations

from typing import Any

from ledger_api.chain.calldata import checksum_address
from ledger_api.chain.rpc import JsonRpcReader
from ledger_api.chain.types import MemberStatus
from ledger_api.core.background import BackgroundLoop
from ledger_api.errors import ChainUnavailable
from ledger_api.node import Node

INTERVAL_S = 5.0
#: per network: (its validator set, its vote, its pending votes, how to discard one)
METHODS = {
    "clique": ("clique_getSigners", "clique_propose", "clique_proposals", "clique_discard"),
    "istanbul": ("istanbul_getValidators", "istanbul_propose", "istanbul_candidates", "istanbul_discard"),
    "qbft": (
        "qbft_getValidatorsByBlockNumber",
        "qbft_proposeValidatorVote",
        "qbft_getPendingVotes",
        "qbft_discardValidatorVote",
    ),
}


class ValidatorVotes(BackgroundLoop):
    """Keeps the network's validator set in step with the registry, through this member's own validator."""

    job = "validator-votes"

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node
        self.network = node.settings.chain.validator_votes
        self.rpc = JsonRpcReader(node.settings.chain.rpc_url, timeout=node.settings.chain.rpc_timeout_s)

    def idle_interval_s(self) -> float:
        return INTERVAL_S

    def _ask(self, method: str, params: list[Any]) -> Any:
        answer = self.rpc.request(method, params)
        if "error" in answer:
            raise ChainUnavailable(f"{method}: {answer['error']}")
        return answer["result"]

    def tick(self) -> int:
        if self.network is None:
            return 0
        registry = self.node.chain.registry
        own = checksum_address(self._ask("eth_coinbase", []))
        if registry.validator_of(self.node.address) != own and registry.is_active(self.node.address):
            registry.declare_validator(own)
        wanted: set[str] = set()
        retired: set[str] = set()
        for member in registry.members():
            validator = registry.validator_of(member.account)
            if validator is None:
                continue
            (wanted if member.status == MemberStatus.ACTIVE else retired).add(validator)
        current_method, propose, pending_method, discard = METHODS[self.network]
        current = {checksum_address(a) for a in self._ask(current_method, ["latest"] if self.network == "qbft" else [])}
        votes = 0
        for validator in sorted(wanted - current):
            self._ask(propose, [validator, True])
            votes += 1
        for validator in sorted((retired & current) - wanted):
            self._ask(propose, [validator, False])
            votes += 1
        for validator, authorize in dict(self._ask(pending_method, [])).items():
            settled = (checksum_address(validator) in current) == bool(authorize)
            if settled:  # the set already agrees: the vote has done its work
                self._ask(discard, [validator])
        if votes:
            self._log.info("validator_votes", cast=votes, wanted=len(wanted), current=len(current))
        return 0  # every few seconds, whatever it did: votes land when this validator seals
