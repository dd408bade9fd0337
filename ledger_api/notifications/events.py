"""What happened to whom, read from the chain: the events patients and auditors can subscribe to.

Every member's node sees the same chain, so any node can deliver grants, revocations, break-glass
declarations and review decisions for any patient. Accesses are on chain only as hashes (one entry,
or a Merkle root over a member's log) that name no patient, so each node turns its *own* anchored
entries into access events from its log: a patient hears of a release from the member that released
it, once the release is anchored (subscribe at each member that holds your records). Event ids
are global (``access:<member>:<sequence>`` for an access, ``<type>:<tx>:<log index>`` otherwise):
a receiver subscribed at several nodes can drop the duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import col, select

from ledger_api.access.models import AccessEntry
from ledger_api.chain.block_clock import BlockClock
from ledger_api.chain.calldata import checksum_address
from ledger_api.chain.days import day_iso
from ledger_api.chain.events import decode_log
from ledger_api.chain.transactions import chain_call
from ledger_api.chain.types import Review
from ledger_api.core.db import session_scope
from ledger_api.node import Node
from ledger_api.vocabulary import Category, Purpose, from_bitset

EVENT_TYPES = ("access", "grant", "revocation", "break_glass", "review", "consent_request", "key")
#: what an auditor may subscribe to (every patient's break-glass and its review)
AUDITOR_EVENT_TYPES = ("break_glass", "review")
#: what a member's own system may subscribe to at its node: grants and revocations naming it as grantee,
#: and the outcomes of its own consent requests (the last are off chain: ``consent_requests`` writes them)
MEMBER_EVENT_TYPES = ("grant", "revocation", "consent_request")


@dataclass(frozen=True)
class AccountEvent:
    """One event about one patient's account, as delivered in a webhook's ``data``."""

    event_id: str
    type: str
    patient: str
    block: int
    tx_hash: str
    data: dict[str, Any]


def _names(enum: type[Category] | type[Purpose], value: int) -> list[str]:
    return [member.name.lower() for member in from_bitset(enum, value)]


def _access(
    member: str,
    patient: str,
    sequence: int,
    block: int,
    tx: str,
    *,
    entry_hash: str,
    requester: str,
    record_id: str,
    purpose: int,
    basis: str,
) -> AccountEvent:
    return AccountEvent(
        f"access:{member}:{sequence}",
        "access",
        patient,
        block,
        tx,
        {
            "member": member,
            "sequence": sequence,
            "entry_hash": entry_hash,
            "requester": requester,
            "record_id": record_id,
            "purpose": Purpose(purpose).name.lower(),
            "basis": basis,
            "break_glass": basis == "break_glass",
        },
    )


#: the chain's events about an account's key, as a ``key`` event's stage (the old key hears of a recovery
#: while it can still cancel it)
_KEY_STAGES = {"RecoveryStarted": "recovery", "RecoveryCancelled": "cancelled", "KeyRotated": "changed"}


def read_events(node: Node, low: int, high: int) -> list[AccountEvent]:
    """Every subscribable event in blocks ``low..high`` in chain order (one ``eth_getLogs``)."""
    manifest = node.manifest
    logs = chain_call(
        node.w3.eth.get_logs,
        {
            "address": [manifest.address("ConsentRegistry"), manifest.address("AccessTrail")],
            "fromBlock": low,
            "toBlock": high,
        },
    )
    events: list[AccountEvent] = []
    for log in logs:
        decoded = decode_log(node.w3, log)
        if decoded is None:
            continue
        args, block = decoded.args, int(log["blockNumber"])
        tx = "0x" + bytes(log["transactionHash"]).hex().removeprefix("0x")
        key = f"{tx}:{decoded.log_index}"
        if decoded.name == "ConsentGranted":
            terms = node.chain.consents.granted_terms(args)
            events.append(
                AccountEvent(
                    f"grant:{key}",
                    "grant",
                    checksum_address(args["patient"]),
                    block,
                    tx,
                    {
                        "consent_id": str(args["consentId"]),
                        "grantees": list(terms.grantees),
                        "categories": _names(Category, terms.categories),
                        "purposes": _names(Purpose, terms.purposes),
                        "valid_from": terms.valid_from,
                        "valid_until": terms.valid_until,
                        "care_from": day_iso(terms.care_from),
                        "care_to": day_iso(terms.care_to),
                        "notice_version": terms.notice_version,
                        "signer": checksum_address(args["signer"]),
                    },
                )
            )
        elif decoded.name == "ConsentRevoked":
            events.append(
                AccountEvent(
                    f"revocation:{key}",
                    "revocation",
                    checksum_address(args["patient"]),
                    block,
                    tx,
                    {
                        "consent_id": str(args["consentId"]),
                        "grantees": list(node.chain.consents.consent(int(args["consentId"])).grantees),
                        "signer": checksum_address(args["signer"]),
                    },
                )
            )
        elif decoded.name == "BreakGlassDeclared":
            events.append(
                AccountEvent(
                    f"break_glass:{key}",
                    "break_glass",
                    checksum_address(args["patient"]),
                    block,
                    tx,
                    {
                        "break_glass_id": str(args["breakGlassId"]),
                        "member": checksum_address(args["member"]),
                        "expires_at": int(args["expiresAt"]),
                    },
                )
            )
        elif decoded.name == "BreakGlassReviewed":
            declared = node.chain.consents.break_glass(int(args["breakGlassId"]))
            events.append(
                AccountEvent(
                    f"review:{key}",
                    "review",
                    checksum_address(declared.patient),
                    block,
                    tx,
                    {
                        "break_glass_id": str(args["breakGlassId"]),
                        "member": checksum_address(declared.member),
                        "decision": Review(int(args["review"])).label,
                        "auditor": checksum_address(args["auditor"]),
                    },
                )
            )
        elif decoded.name in _KEY_STAGES:  # the account's key: a recovery started or cancelled, a new key
            data: dict[str, Any] = {"stage": _KEY_STAGES[decoded.name], "new_key": checksum_address(args["newKey"])}
            if "readyAt" in args:
                data["ready_at"] = int(args["readyAt"])
            events.append(AccountEvent(f"key:{key}", "key", checksum_address(args["account"]), block, tx, data))
        elif decoded.name == "AccessRecorded" and checksum_address(args["member"]) == node.address:
            events += _own_batch(node, int(args["sequence"]), int(args["sequence"]), block, tx)
        elif decoded.name == "AccessBatchAnchored" and checksum_address(args["member"]) == node.address:
            events += _own_batch(node, int(args["fromSequence"]), int(args["toSequence"]), block, tx)
    return events


def _own_batch(node: Node, first: int, last: int, block: int, tx: str) -> list[AccountEvent]:
    with session_scope(node.engine) as session:
        rows = session.exec(
            select(AccessEntry)
            .where(col(AccessEntry.sequence) >= first, col(AccessEntry.sequence) <= last)
            .order_by(col(AccessEntry.sequence))
        ).all()
    return [
        _access(
            row.member,
            row.patient,
            row.sequence,
            block,
            tx,
            entry_hash=row.entry_hash,
            requester=row.requester,
            record_id=row.record_id,
            purpose=row.purpose,
            basis=row.basis,
        )
        for row in rows
    ]


def payload(event: AccountEvent, node: Node, clock: BlockClock) -> dict[str, Any]:
    """The webhook body: the event, where it is on chain, and which node delivered it."""
    return {
        "id": event.event_id,
        "type": event.type,
        "patient": event.patient,
        "chain_id": node.chain_id,
        "block": event.block,
        "tx_hash": event.tx_hash,
        "occurred_at": datetime.fromtimestamp(clock(event.block), UTC).isoformat(),
        "delivered_by": node.address,
        "data": event.data,
    }
