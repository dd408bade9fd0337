"""Reads everything the record and access contracts ever wrote, as a member or outsider holding a copy of
the chain would, and looks for what must not be there: a patient's account, or a record's category that
trying all 16 codes against the values found would recover.

What is read, from the deployment block to the head: every event log of the RecordRegistry and the
AccessTrail (topics and data), the calldata of every transaction sent to them, and every storage slot
those transactions wrote (keys and values, from the ``prestateTracer`` in diff mode, which anvil and
geth both serve). Consents and break-glass (ConsentRegistry) are left out on purpose: they are the
patient's own acts and name the patient by design (see the README's threat model).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import keccak
from web3 import Web3

from ledger_api.chain.commitments import SUBJECT_BYTES, record_subject
from ledger_api.chain.days import day_number
from ledger_api.chain.deployment import DeploymentManifest
from ledger_api.chain.events import decode_log

WATCHED = ("RecordRegistry", "AccessTrail")


@dataclass
class ChainCopy:
    """Everything found: raw byte strings (log data, calldata, storage values), 32-byte words, record ids."""

    blobs: list[bytes] = field(default_factory=list)
    words: set[bytes] = field(default_factory=set)
    #: storage slot keys: where the EVM put a value (hashes of mapping keys and slot numbers), tried as
    #: values but not matched against, since they are positions, not data written
    slot_keys: set[bytes] = field(default_factory=set)
    record_ids: set[bytes] = field(default_factory=set)
    subjects: set[bytes] = field(default_factory=set)
    transactions: int = 0
    slots: int = 0
    logs: int = 0

    def add(self, blob: bytes) -> None:
        self.blobs.append(blob)
        for offset in range(0, len(blob) - 31, 32):
            self.words.add(blob[offset : offset + 32])
        if len(blob) % 32 == 4:  # calldata: the selector, then words
            for offset in range(4, len(blob) - 31, 32):
                self.words.add(blob[offset : offset + 32])


def _hex(value: Any) -> bytes:
    return bytes(value) if not isinstance(value, str) else bytes.fromhex(value.removeprefix("0x").rjust(2, "0"))


def read_chain_copy(w3: Web3, manifest: DeploymentManifest) -> ChainCopy:
    watched = {Web3.to_checksum_address(manifest.address(name)) for name in WATCHED}
    start = min(manifest.contracts[name].block_number for name in WATCHED)
    head = int(w3.eth.block_number)
    found = ChainCopy()
    for log in w3.eth.get_logs({"address": sorted(watched), "fromBlock": start, "toBlock": head}):
        found.logs += 1
        for topic in log["topics"]:
            found.add(bytes(topic))
        found.add(bytes(log["data"]))
        decoded = decode_log(w3, log)
        if decoded is not None and decoded.name == "RecordAnchored":
            found.record_ids.add(bytes(decoded.args["recordId"]))
            found.subjects.add(bytes(decoded.args["subject"]))
    for number in range(start, head + 1):
        block = w3.eth.get_block(number, full_transactions=True)
        for tx in block["transactions"]:
            if tx["to"] is None or Web3.to_checksum_address(tx["to"]) not in watched:
                continue
            found.transactions += 1
            found.add(bytes(tx["input"]))
            trace = w3.provider.make_request(  # type: ignore[attr-defined]
                "debug_traceTransaction",
                [tx["hash"].to_0x_hex(), {"tracer": "prestateTracer", "tracerConfig": {"diffMode": True}}],
            )
            for address, state in trace["result"]["post"].items():
                if Web3.to_checksum_address(address) not in watched:
                    continue
                for slot, value in state.get("storage", {}).items():
                    found.slots += 1
                    found.blobs.append(_hex(slot).rjust(32, b"\0"))
                    found.slot_keys.add(_hex(slot).rjust(32, b"\0"))
                    found.add(_hex(value).rjust(32, b"\0"))
    return found


def patient_accounts_found(found: ChainCopy, patients: list[str]) -> list[str]:
    """Patients whose 20-byte account appears anywhere in what was read (any alignment)."""
    return [p for p in patients if any(bytes.fromhex(p[2:]) in blob for blob in found.blobs)]


def _candidates(value: bytes, category: int) -> list[bytes]:
    """Ways one might have hashed a category with a value found on chain (a patient, a record id, a word)."""
    as_word = value.rjust(32, b"\0")[-32:]
    code_word = category.to_bytes(32, "big")
    forms = [
        as_word + code_word,
        code_word + as_word,
        value + bytes([category]),
        bytes([category]) + value,
        value + category.to_bytes(2, "big"),
    ]
    hashes = []
    for form in forms:
        hashes += [keccak(form), hashlib.sha256(form).digest()]
    return hashes


#: the days of care an attacker tries first in a record's commitment: none stated, and the days around today
#: (records are mostly anchored soon after the care they describe; the tests' records are dated today)
_LIKELY_DAYS = (0, *(day_number(date.today() + timedelta(days=d)) for d in (-1, 0, 1)))


def categories_recovered(found: ChainCopy, patients: list[str]) -> list[tuple[str, int]]:
    """Every (what matched, category) that trying all 16 codes with values found on chain recovers.

    Tried: plain hashes of each code alone, of each code with each value found (every 32-byte word, every
    record id, every patient), and the anchors' own scheme with every value found taken as the salt, every
    patient as the patient and the likely days of care (``_LIKELY_DAYS``); a hit is any result (or its first
    24 bytes) that is also on chain as data (event topics and data, calldata, storage values)."""
    on_chain = found.words | found.subjects | {w[:SUBJECT_BYTES] for w in found.words}
    hits: list[tuple[str, int]] = []
    values = found.words | found.slot_keys | found.record_ids | {bytes.fromhex(p[2:]) for p in patients}
    for category in range(16):
        plain = [keccak(category.to_bytes(32, "big")), hashlib.sha256(bytes([category])).digest()]
        plain += [keccak(abi_encode(["uint16"], [category])), keccak(bytes([category]))]
        hits += [("the code alone", category) for h in plain if h in on_chain or h[:SUBJECT_BYTES] in on_chain]
        for value in values:
            for digest in _candidates(value, category):
                if digest in on_chain or digest[:SUBJECT_BYTES] in on_chain:
                    hits.append((value.hex(), category))
        for record_id in found.record_ids:
            for patient in patients:
                for salt in found.words:
                    for day in _LIKELY_DAYS:
                        if record_subject(record_id, patient, category, salt, day) in found.subjects:
                            hits.append((f"record {record_id.hex()} with an on-chain salt", category))
    return hits
