"""What the chain says, read once for an audit: anchors, consents, break-glass, records.

The auditor trusts only this (read-only RPC against any validator) and recomputes everything
else from the members' exports. Reads are event logs, fetched in block ranges, plus block
timestamps (cached), so a full audit costs a few thousand RPC calls however long the logs are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from web3 import Web3

from ledger_api.chain.block_clock import BlockClock
from ledger_api.chain.calldata import checksum_address
from ledger_api.chain.deployment import DeploymentManifest
from ledger_api.chain.events import decode_log, event_topic
from ledger_api.chain.reader import reader_for
from ledger_api.chain.transactions import chain_call
from ledger_api.chain.types import Delegation, GrantTerms, member_indices

LOG_CHUNK_BLOCKS = 10_000


@dataclass
class SingleAnchor:
    """One entry's hash anchored at its sequence (all the chain holds of an access)."""

    sequence: int
    entry_hash: str
    block: int


@dataclass
class BatchAnchor:
    from_sequence: int
    to_sequence: int
    root: bytes
    block: int


@dataclass
class ConsentFact:
    consent_id: int
    patient: str
    grantees: tuple[str, ...]
    categories: int
    purposes: int
    valid_from: int
    valid_until: int
    granted_block: int
    revoked_block: int | None = None
    care_from: int = 0
    care_to: int = 0
    notice_version: int = 0
    notice_hash: str = ""

    def covers_day(self, day: int) -> bool:
        """Whether a record about care on ``day`` (``chain.days``) lies in the consent's range of days."""
        return day >= self.care_from and (self.care_to == 0 or day <= self.care_to)


@dataclass
class BreakGlassFact:
    break_glass_id: int
    patient: str
    member: str
    expires_at: int
    declared_block: int
    review: int = 0  # 0 pending, 1 justified, 2 not justified
    reviewed_block: int | None = None
    reviewer: str | None = None


@dataclass
class RecordFact:
    """A record as anchored: custodian, subject commitment (hex; opened with a member's manifest), versions."""

    record_id: str
    custodian: str
    subject: str
    versions: dict[int, str] = field(default_factory=dict)  # version -> content hash (hex)
    blocks: dict[int, int] = field(default_factory=dict)  # version -> anchoring block
    #: custody handovers in chain order: (from, to, block); ``custodian`` is the latest holder
    transfers: list[tuple[str, str, int]] = field(default_factory=list)
    #: the custodian's restrictions of the record at its patient's request, in chain order: (restricted, block)
    restrictions: list[tuple[bool, int]] = field(default_factory=list)
    #: the custodian's hiding of the record from every consent, in chain order: (hidden, block)
    hidings: list[tuple[bool, int]] = field(default_factory=list)

    def transferred(self, source: str, successor: str) -> bool:
        return any(f == source and t == successor for f, t, _ in self.transfers)


@dataclass
class MemberTrail:
    singles: dict[int, SingleAnchor] = field(default_factory=dict)
    batches: list[BatchAnchor] = field(default_factory=list)


@dataclass
class ChainView:
    """Everything the audit needs from the chain, up to ``head`` (the block it was read at)."""

    head: int
    trails: dict[str, MemberTrail]
    consents: dict[int, ConsentFact]
    break_glass: dict[int, BreakGlassFact]
    records: dict[str, RecordFact]
    block_time: Any  # callable(block) -> unix seconds
    #: per patient, in chain order: delegate changes (the delegation as it then stood, block) and
    #: restrictions of all their records (restricted, block)
    delegate_changes: dict[str, list[tuple[Delegation, int]]] = field(default_factory=dict)
    sharing_restrictions: dict[str, list[tuple[bool, int]]] = field(default_factory=dict)
    #: member accounts by consortium index (``MemberAdded``): whom a grant's recipient set names
    member_at: dict[int, str] = field(default_factory=dict)
    #: the ConsentRegistry's address: the EIP-712 domain of what patients sign
    consent_registry: str = ""

    def trail(self, member: str) -> MemberTrail:
        return self.trails.get(checksum_address(member), MemberTrail())


def read_chain(w3: Web3, manifest: DeploymentManifest, *, head: int | None = None) -> ChainView:
    """Reads every event of the consortium's contracts from their deployment block to ``head``."""
    head = int(chain_call(lambda: w3.eth.block_number)) if head is None else head
    start = min(c.block_number for c in manifest.contracts.values())
    # the registry for its MemberAdded events: the members a grant's recipient set names, by index
    addresses = [
        manifest.address(n) for n in ("ConsortiumRegistry", "ConsentRegistry", "RecordRegistry", "AccessTrail")
    ]
    view = ChainView(
        head=head,
        trails={},
        consents={},
        break_glass={},
        records={},
        block_time=BlockClock(reader_for(w3)),
        consent_registry=manifest.address("ConsentRegistry"),
    )
    for low in range(start, head + 1, LOG_CHUNK_BLOCKS):
        high = min(head, low + LOG_CHUNK_BLOCKS - 1)
        logs = chain_call(w3.eth.get_logs, {"address": addresses, "fromBlock": low, "toBlock": high})
        for log in logs:
            event = decode_log(w3, log)
            if event is not None:
                _apply(view, event.name, event.args, int(log["blockNumber"]))
    return view


def _hex(value: bytes) -> str:
    return bytes(value).hex()


def _apply(view: ChainView, name: str, args: dict[str, Any], block: int) -> None:
    if name == "AccessRecorded":
        member = checksum_address(args["member"])
        view.trails.setdefault(member, MemberTrail()).singles[int(args["sequence"])] = SingleAnchor(
            sequence=int(args["sequence"]), entry_hash=_hex(args["entryHash"]), block=block
        )
    elif name == "AccessBatchAnchored":
        member = checksum_address(args["member"])
        view.trails.setdefault(member, MemberTrail()).batches.append(
            BatchAnchor(int(args["fromSequence"]), int(args["toSequence"]), bytes(args["root"]), block)
        )
    elif name == "MemberAdded":
        view.member_at[int(args["index"])] = checksum_address(args["account"])
    elif name == "ConsentGranted":
        consent_id = int(args["consentId"])
        recipients = int(args["recipients"])
        terms = GrantTerms.unpacked(
            tuple(view.member_at[i] for i in member_indices(recipients)), int(args["terms"]), bytes(args["noticeHash"])
        )
        view.consents[consent_id] = ConsentFact(
            consent_id=consent_id,
            patient=checksum_address(args["patient"]),
            grantees=terms.grantees,
            categories=terms.categories,
            purposes=terms.purposes,
            valid_from=terms.valid_from,
            valid_until=terms.valid_until,
            granted_block=block,
            care_from=terms.care_from,
            care_to=terms.care_to,
            notice_version=terms.notice_version,
            notice_hash=terms.notice_hash.hex(),
        )
    elif name == "ConsentRevoked":
        fact = view.consents.get(int(args["consentId"]))
        if fact is not None:
            fact.revoked_block = block
    elif name == "BreakGlassDeclared":
        bg_id = int(args["breakGlassId"])
        view.break_glass[bg_id] = BreakGlassFact(
            break_glass_id=bg_id,
            patient=checksum_address(args["patient"]),
            member=checksum_address(args["member"]),
            expires_at=int(args["expiresAt"]),
            declared_block=block,
        )
    elif name == "BreakGlassReviewed":
        fact_bg = view.break_glass.get(int(args["breakGlassId"]))
        if fact_bg is not None:
            fact_bg.review, fact_bg.reviewed_block = int(args["review"]), block
            fact_bg.reviewer = checksum_address(args["auditor"])
    elif name == "RecordAnchored":
        record_id = _hex(args["recordId"])
        record = view.records.get(record_id)
        if record is None:
            record = view.records[record_id] = RecordFact(
                record_id=record_id, custodian=checksum_address(args["custodian"]), subject=_hex(args["subject"])
            )
        record.versions[int(args["version"])] = _hex(args["contentHash"])
        record.blocks[int(args["version"])] = block
    elif name == "RecordRestrictionChanged":
        restricted_record = view.records.get(_hex(args["recordId"]))
        if restricted_record is not None:
            restricted_record.restrictions.append((bool(args["restricted"]), block))
    elif name == "RecordHiddenChanged":
        hidden_record = view.records.get(_hex(args["recordId"]))
        if hidden_record is not None:
            hidden_record.hidings.append((bool(args["hidden"]), block))
    elif name == "SharingRestrictionChanged":
        view.sharing_restrictions.setdefault(checksum_address(args["patient"]), []).append(
            (bool(args["restricted"]), block)
        )
    elif name == "DelegateChanged":
        view.delegate_changes.setdefault(checksum_address(args["patient"]), []).append(
            (Delegation.of_event(args), block)
        )
    elif name == "CustodyTransferred":
        moved = view.records.get(_hex(args["recordId"]))
        if moved is not None:
            moved.custodian = checksum_address(args["to"])
            moved.transfers.append((checksum_address(args["from"]), moved.custodian, block))


def consent_times(w3: Web3, manifest: DeploymentManifest, patient: str) -> dict[int, tuple[int, int | None]]:
    """One patient's consents: consent id -> (granted at, revoked at or None), as block times.

    Reads only that patient's ConsentGranted and ConsentRevoked logs (the patient is their second indexed
    topic), so a per-patient export does not scan the whole chain."""
    topics = [event_topic("ConsentRegistry", name) for name in ("ConsentGranted", "ConsentRevoked")]
    patient_topic = "0x" + bytes.fromhex(checksum_address(patient)[2:]).rjust(32, b"\0").hex()
    deployed = manifest.contracts["ConsentRegistry"].block_number
    head = int(chain_call(lambda: w3.eth.block_number))
    clock = BlockClock(reader_for(w3))
    granted: dict[int, int] = {}
    revoked: dict[int, int] = {}
    for low in range(deployed, head + 1, LOG_CHUNK_BLOCKS):
        high = min(head, low + LOG_CHUNK_BLOCKS - 1)
        logs = chain_call(
            w3.eth.get_logs,
            {
                "address": manifest.address("ConsentRegistry"),
                "fromBlock": low,
                "toBlock": high,
                "topics": [topics, None, patient_topic],
            },
        )
        for log in logs:
            event = decode_log(w3, log)
            if event is None:
                continue
            target = granted if event.name == "ConsentGranted" else revoked
            target[int(event.args["consentId"])] = clock(int(log["blockNumber"]))
    return {consent_id: (at, revoked.get(consent_id)) for consent_id, at in granted.items()}
