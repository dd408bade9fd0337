"""Independent verification of the access trail against the chain.

Input: what the chain says (``ChainView``) and, per member, its exported access log (JSON lines in
sequence order, each the canonical entry document plus its hash) and its record manifest (the
BLAKE3 of every stored ciphertext, recomputed at export). Nothing a member says is trusted: every
hash is recomputed and compared with the chain.

Checks (each problem becomes a ``Finding``):

* integrity — every exported entry hashes to its recorded hash, and to the hash anchored for its
  sequence (single entries), or the RFC 6962 root over the member's log ``1..to`` equals each
  anchored batch root (batches); one entry per member is also proved by an inclusion proof;
* completeness — sequences run 1, 2, 3 ... without gaps, duplicates or reordering; every
  sequence anchored on chain has its entry; an anchored root that no longer matches the log while a
  later one does fails an RFC 6962 consistency proof between the two anchored roots (the member
  rewrote history it had already anchored);
* authorisation — each access was covered, at its time, by the consent or break-glass it names
  (grantee, patient, category, purpose, window, not yet revoked), or was the custodian's own;
* records — stored ciphertexts hash to their anchored content hashes; every anchored version exists;
* timeliness — entries anchored later than the policy's maximum delay; break-glass reviews overdue.

Memory is bounded: entries are streamed; per member only 32 bytes per entry (leaf hashes, for
proofs) and per-minute counts for the timeline are kept.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from medledger_crypto import merkle
from pydantic import BaseModel, Field

from ledger_api.access.service import document_hash
from ledger_api.audit.chain_view import ZERO_ADDRESS, BatchAnchor, ChainView
from ledger_api.audit.findings import Check, Finding, Findings, Severity
from ledger_api.chain.calldata import checksum_address
from ledger_api.vocabulary import Purpose

REPORT_SCHEMA = "medledger.audit-report/1"


class AuditPolicy(BaseModel):
    """What counts as late or overdue; ``clock_skew_s`` absorbs node clock vs block time."""

    max_anchor_delay_s: int = Field(600, ge=0)
    review_deadline_s: int = Field(7 * 86_400, ge=0)
    clock_skew_s: int = Field(5, ge=0)
    now: int | None = None  # unix seconds; None = wall clock (fixed in tests)


@dataclass
class MemberExport:
    """One member's exported log and record manifest (each an iterable of parsed JSON lines)."""

    member: str
    entries: Iterable[dict[str, Any]]
    records: Iterable[dict[str, Any]] | None = None


class MemberSummary(BaseModel):
    member: str
    entries: int = 0
    anchored_through: int = 0
    single_anchors: int = 0
    batch_anchors: int = 0
    break_glass_accesses: int = 0
    unauthorised_accesses: int = 0
    records_checked: int = 0
    inclusion_proof: dict[str, Any] | None = None


class TimelineBucket(BaseModel):
    member: str
    minute: int  # unix minute
    accesses: int = 0
    break_glass: int = 0
    violations: int = 0


class AuditReport(BaseModel):
    """The machine-readable result (stable schema ``REPORT_SCHEMA``); ``passed``: no critical or high finding."""

    schema_id: str = Field(REPORT_SCHEMA, alias="schema")
    generated_at: str
    chain_id: int
    head_block: int
    policy: AuditPolicy
    passed: bool
    counts: dict[str, int]
    members: list[MemberSummary]
    findings: list[Finding]
    timeline: list[TimelineBucket]

    model_config = {"populate_by_name": True}


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Parsed lines of a JSON-lines file, one at a time (a malformed line is yielded as an error marker)."""
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    value = json.loads(line)
                except ValueError:
                    value = None
                yield value if isinstance(value, dict) else {"__malformed__": number}


@dataclass
class _Timeline:
    """Per member and minute: [accesses, break-glass, violations] (plain lists: this runs per entry)."""

    counts: dict[tuple[str, int], list[int]] = field(default_factory=dict)

    def count(self, member: str, at: int, *, break_glass: bool = False, violation: bool = False) -> None:
        key = (member, at // 60)
        slot = self.counts.get(key)
        if slot is None:
            slot = self.counts[key] = [0, 0, 0]
        slot[0] += 1
        slot[1] += break_glass
        slot[2] += violation

    def buckets(self) -> list[TimelineBucket]:
        return [
            TimelineBucket(member=member, minute=minute, accesses=a, break_glass=b, violations=v)
            for (member, minute), (a, b, v) in sorted(self.counts.items(), key=lambda kv: (kv[0][1], kv[0][0]))
        ]


class AuditRun:
    """One verification over the chain view and the members' exports."""

    def __init__(self, chain: ChainView, chain_id: int, policy: AuditPolicy | None = None) -> None:
        self.chain, self.chain_id = chain, chain_id
        self.policy = policy or AuditPolicy()
        self.now = self.policy.now if self.policy.now is not None else int(datetime.now(UTC).timestamp())
        self.findings = Findings()
        self.timeline = _Timeline()
        self.summaries: list[MemberSummary] = []

    # ------------------------------------------------------------------------------ the run
    def run(self, exports: Iterable[MemberExport]) -> AuditReport:
        for export in exports:
            member = checksum_address(export.member)
            summary = MemberSummary(member=member)
            self._verify_log(member, export.entries, summary)
            if export.records is not None:
                self._verify_records(member, export.records, summary)
            self.summaries.append(summary)
        self._verify_break_glass_reviews()
        findings = sorted(self.findings.items, key=lambda f: (-f.severity.rank, f.member or "", f.first_sequence or 0))
        counts = {s.value: sum(1 for f in findings if f.severity == s) for s in Severity}
        return AuditReport(
            generated_at=datetime.fromtimestamp(self.now, UTC).isoformat(),
            chain_id=self.chain_id,
            head_block=self.chain.head,
            policy=self.policy,
            passed=counts["critical"] == counts["high"] == 0,
            counts=counts,
            members=self.summaries,
            findings=findings,
            timeline=self.timeline.buckets(),
        )

    # ------------------------------------------------------------------------------ the log
    def _verify_log(self, member: str, entries: Iterable[dict[str, Any]], summary: MemberSummary) -> None:
        add, chain = self.findings.add, self.chain
        trail = chain.trail(member)
        batches = {b.to_sequence: b for b in trail.batches}
        anchored_through = max([*trail.singles, *batches, 0])
        summary.anchored_through, summary.single_anchors = anchored_through, len(trail.singles)
        summary.batch_anchors = len(trail.batches)
        builder, leaves = merkle.RootBuilder(), bytearray()
        previous, unanchored_since = 0, None
        matched: list[BatchAnchor] = []
        mismatched: list[BatchAnchor] = []
        for doc in entries:
            if "__malformed__" in doc:
                add(
                    Check.INTEGRITY,
                    "export-line-malformed",
                    Severity.CRITICAL,
                    "an exported line is not a JSON entry",
                    member=member,
                    evidence={"line": doc["__malformed__"]},
                )
                continue
            sequence = doc.get("sequence")
            if not isinstance(sequence, int):
                add(
                    Check.INTEGRITY,
                    "entry-malformed",
                    Severity.CRITICAL,
                    "an exported entry has no sequence number",
                    member=member,
                )
                continue
            claimed = doc.get("entry_hash")
            recomputed = document_hash({k: v for k, v in doc.items() if k != "entry_hash"})
            if sequence <= previous:
                code = "sequence-duplicate" if sequence == previous else "sequence-out-of-order"
                add(
                    Check.COMPLETENESS,
                    code,
                    Severity.CRITICAL,
                    "the log repeats a sequence number" if sequence == previous else "the log's sequences go backwards",
                    member=member,
                    sequence=sequence,
                    evidence={"after": previous, "entry_hash": claimed},
                )
                continue
            if sequence > previous + 1:
                self.findings.add_range(
                    Check.COMPLETENESS,
                    "sequence-gap",
                    Severity.CRITICAL,
                    "entries are missing from the log (deleted rows)",
                    member=member,
                    first=previous + 1,
                    last=sequence - 1,
                )
            summary.entries += 1
            if claimed != recomputed:
                add(
                    Check.INTEGRITY,
                    "entry-edited",
                    Severity.CRITICAL,
                    "the entry no longer hashes to its recorded hash: it was edited after logging",
                    member=member,
                    sequence=sequence,
                    evidence={"recorded": claimed, "recomputed": recomputed},
                )
            if doc.get("member") != member:
                add(
                    Check.INTEGRITY,
                    "entry-other-member",
                    Severity.CRITICAL,
                    "the entry names another member",
                    member=member,
                    sequence=sequence,
                    evidence={"member": doc.get("member")},
                )
            leaf = merkle.leaf_hash(bytes.fromhex(recomputed))
            builder.append(leaf)
            leaves += leaf
            checked_block = doc.get("chain_block")
            if isinstance(checked_block, int) and checked_block > chain.head:
                add(
                    Check.INTEGRITY,
                    "authorisation-block-future",
                    Severity.CRITICAL,
                    "the entry claims an authorisation block the chain has not reached",
                    member=member,
                    sequence=sequence,
                    evidence={"chain_block": checked_block, "head": chain.head},
                )
                checked_block = None
            # chain time of the access where the entry names its block (format 2), else the node's clock
            at = chain.block_time(checked_block) if isinstance(checked_block, int) else _unix(doc.get("created_at"))
            if unanchored_since is None:
                unanchored_since = at
            single = trail.singles.get(sequence)
            anchored_block = None
            if single is not None:
                anchored_block = single.block
                if single.entry_hash != recomputed:
                    add(
                        Check.INTEGRITY,
                        "entry-not-as-anchored",
                        Severity.CRITICAL,
                        "the entry differs from the hash anchored on chain for its sequence",
                        member=member,
                        sequence=sequence,
                        evidence={"anchored": single.entry_hash, "recomputed": recomputed, "block": single.block},
                    )
            batch = batches.get(sequence)
            if batch is not None:
                anchored_block = batch.block
                (matched if builder.root() == batch.root else mismatched).append(batch)
            if anchored_block is not None and unanchored_since is not None:
                delay = self.chain.block_time(anchored_block) - unanchored_since
                if delay > self.policy.max_anchor_delay_s:
                    add(
                        Check.TIMELINESS,
                        "anchored-late",
                        Severity.MEDIUM,
                        f"entries were anchored more than {self.policy.max_anchor_delay_s}s after they were logged",
                        member=member,
                        sequence=sequence,
                        evidence={"delay_s": delay, "block": anchored_block},
                    )
                unanchored_since = None
            violation = self._check_authorisation(member, sequence, doc, at, checked_block)
            summary.unauthorised_accesses += violation
            summary.break_glass_accesses += doc.get("basis") == "break_glass"
            self.timeline.count(member, at, break_glass=doc.get("basis") == "break_glass", violation=violation)
            previous = sequence
        if anchored_through > previous:
            self.findings.add_range(
                Check.COMPLETENESS,
                "anchored-entries-missing",
                Severity.CRITICAL,
                "the chain has entries for these sequences; the exported log does not",
                member=member,
                first=previous + 1,
                last=anchored_through,
            )
        elif previous > anchored_through and unanchored_since is not None:
            late = self.now - unanchored_since > self.policy.max_anchor_delay_s
            self.findings.add_range(
                Check.TIMELINESS,
                "anchoring-overdue" if late else "anchoring-pending",
                Severity.MEDIUM if late else Severity.INFO,
                "entries not yet anchored on chain" + (" beyond the maximum delay" if late else ""),
                member=member,
                first=anchored_through + 1,
                last=previous,
            )
        self._judge_roots(member, matched, mismatched, leaves)
        if matched:
            summary.inclusion_proof = _prove_last(matched[-1], leaves)

    def _judge_roots(
        self, member: str, matched: list[BatchAnchor], mismatched: list[BatchAnchor], leaves: bytearray
    ) -> None:
        """Mismatching anchored roots: rewritten history (a later root still matches) or an altered log."""
        for bad in mismatched:
            later = next((m for m in matched if m.to_sequence > bad.to_sequence), None)
            evidence: dict[str, Any] = {
                "anchored_root": bad.root.hex(),
                "block": bad.block,
                "from": bad.from_sequence,
                "to": bad.to_sequence,
            }
            if later is not None:
                hashes = [bytes(leaves[i * 32 : (i + 1) * 32]) for i in range(later.to_sequence)]
                proof = merkle.consistency_proof(hashes, bad.to_sequence)
                try:
                    merkle.verify_consistency(bad.to_sequence, later.to_sequence, bad.root, later.root, proof)
                    continue  # consistent after all (cannot happen with a matching later root; kept for safety)
                except merkle.ConsistencyMismatch:
                    pass
                evidence.update(
                    later_root=later.root.hex(), later_to=later.to_sequence, consistency_proof=[h.hex() for h in proof]
                )
                self.findings.add_range(
                    Check.COMPLETENESS,
                    "anchored-history-rewritten",
                    Severity.CRITICAL,
                    "an anchored root is not consistent with a later anchored root: history "
                    "anchored on chain was rewritten",
                    member=member,
                    first=bad.from_sequence,
                    last=bad.to_sequence,
                    evidence=evidence,
                )
            else:
                self.findings.add_range(
                    Check.INTEGRITY,
                    "batch-root-mismatch",
                    Severity.CRITICAL,
                    "the log does not hash to the Merkle root anchored for this batch",
                    member=member,
                    first=bad.from_sequence,
                    last=bad.to_sequence,
                    evidence=evidence,
                )

    # ------------------------------------------------------------------------------ consent
    def _check_authorisation(self, member: str, sequence: int, doc: dict[str, Any], at: int, block: int | None) -> bool:
        """Adds a finding and returns True if the access was not covered at its block (or time)."""
        problem = self._authorisation_problem(member, doc, at, block)
        if problem is None:
            return False
        code, message = problem
        self.findings.add(
            Check.AUTHORISATION,
            code,
            Severity.CRITICAL,
            message,
            member=member,
            sequence=sequence,
            evidence={
                k: doc.get(k)
                for k in ("requester", "patient", "record_id", "purpose", "basis", "authorization", "created_at")
            },
        )
        return True

    def _authorisation_problem(
        self, member: str, doc: dict[str, Any], at: int, block: int | None
    ) -> tuple[str, str] | None:
        """Why the access was not covered, or None. With the entry's authorisation ``block``, consent and
        break-glass are judged exactly as the contract saw them at that block (``at`` is its timestamp);
        without it, at the node's clock with ``clock_skew_s`` tolerance."""
        basis, requester, patient = doc.get("basis"), doc.get("requester"), doc.get("patient")
        chain = self.chain
        skew = 0 if block is not None else self.policy.clock_skew_s

        def before(event_block: int) -> bool:  # the event had happened when the access was authorised
            return event_block <= block if block is not None else chain.block_time(event_block) <= at + skew

        if basis == "custodian" and doc.get("action") == "handover":
            record = chain.records.get(str(doc.get("record_id")))
            return (
                None
                if record is not None and record.transferred(member, str(requester))
                else (
                    "handover-unconfirmed",
                    "a record handed to another member whose custody transfer is not on chain",
                )
            )
        if basis == "custodian":
            allowed = {member, patient} if doc.get("action") == "erase" else {member}
            return (
                None
                if requester in allowed
                else ("custodian-basis-misused", "a custodian-basis access by someone other than the custodian")
            )
        try:
            reference = int(str(doc.get("authorization") or ""), 16)
        except ValueError:
            return "authorisation-missing", f"a {basis} access names no consent or break-glass"
        if basis == "break_glass":
            declared = chain.break_glass.get(reference)
            if declared is None:
                return "break-glass-unknown", "the break-glass the access names was never declared on chain"
            if declared.member != requester or declared.patient != patient:
                return "break-glass-other-party", "the break-glass was declared by another member or patient"
            if not before(declared.declared_block):
                return "break-glass-not-yet-declared", "the access predates the break-glass declaration"
            if at >= declared.expires_at + skew:
                return "break-glass-expired", "the access falls after the break-glass period"
            return None
        if basis != "consent":
            return "basis-unknown", f"unknown basis {basis!r}"
        consent = chain.consents.get(reference)
        if consent is None:
            return "consent-unknown", "the consent the access names does not exist on chain"
        if consent.patient != patient:
            return "consent-other-patient", "the consent is another patient's"
        if consent.grantee not in (requester, ZERO_ADDRESS):
            return "consent-other-grantee", "the consent was granted to another member"
        record = chain.records.get(str(doc.get("record_id")))
        if record is None:
            return "record-unknown", "the record read is not anchored on chain, so its category is unknown"
        if not (consent.categories >> record.category) & 1:
            return "consent-category", "the consent does not cover the record's category"
        purpose = doc.get("purpose")
        if not isinstance(purpose, int) or not (consent.purposes >> purpose) & 1:
            name = Purpose(purpose).name.lower() if purpose in Purpose._value2member_map_ else purpose
            return "consent-purpose", f"the consent does not cover the purpose {name}"
        if not consent.valid_from - skew <= at < consent.valid_until + skew:
            return "consent-window", "the access falls outside the consent's validity window"
        if not before(consent.granted_block):
            return "consent-not-yet-granted", "the access predates the consent's grant on chain"
        if consent.revoked_block is not None and (
            consent.revoked_block <= block
            if block is not None
            else at - skew >= chain.block_time(consent.revoked_block)
        ):
            return "consent-revoked", "the access came after the consent was revoked on chain"
        return None

    # ------------------------------------------------------------------------------ records
    def _verify_records(self, member: str, manifest: Iterable[dict[str, Any]], summary: MemberSummary) -> None:
        add = self.findings.add
        seen: set[tuple[str, int]] = set()
        for line in manifest:
            record_id, version = str(line.get("record_id")), line.get("version")
            if not isinstance(version, int):
                add(
                    Check.RECORDS,
                    "manifest-malformed",
                    Severity.CRITICAL,
                    "a record manifest line is malformed",
                    member=member,
                    evidence={"line": line},
                )
                continue
            seen.add((record_id, version))
            summary.records_checked += 1
            fact = self.chain.records.get(record_id)
            anchored = fact.versions.get(version) if fact is not None else None
            evidence = {"record_id": record_id, "version": version}
            if line.get("transferred_to") and fact is not None and fact.transferred(member, line["transferred_to"]):
                continue  # handed over: the successor holds it now, and is checked for it
            if anchored is None:
                add(
                    Check.RECORDS,
                    "record-unanchored",
                    Severity.MEDIUM,
                    "a stored record version is not anchored",
                    member=member,
                    evidence=evidence,
                )
            elif fact is not None and fact.custodian != member:
                add(
                    Check.RECORDS,
                    "record-other-custodian",
                    Severity.HIGH,
                    "the member holds a record the chain assigns to another custodian",
                    member=member,
                    evidence=evidence,
                )
            elif line.get("erased"):
                continue  # crypto-shredded: the erasure is in the trail; nothing left to hash
            elif line.get("stored_hash") is None:
                add(
                    Check.RECORDS,
                    "ciphertext-missing",
                    Severity.CRITICAL,
                    "an anchored ciphertext is missing",
                    member=member,
                    evidence=evidence,
                )
            elif line["stored_hash"] != anchored:
                add(
                    Check.RECORDS,
                    "ciphertext-altered",
                    Severity.CRITICAL,
                    "the stored ciphertext does not match its anchored content hash",
                    member=member,
                    evidence={**evidence, "anchored": anchored, "stored": line["stored_hash"]},
                )
        for fact in self.chain.records.values():
            if fact.custodian != member:
                continue
            for version in fact.versions:
                if (fact.record_id, version) not in seen:
                    add(
                        Check.RECORDS,
                        "record-version-missing",
                        Severity.CRITICAL,
                        "an anchored record version is absent from the member's store",
                        member=member,
                        evidence={"record_id": fact.record_id, "version": version},
                    )

    # ------------------------------------------------------------------------------ break-glass
    def _verify_break_glass_reviews(self) -> None:
        for fact in self.chain.break_glass.values():
            declared_at = self.chain.block_time(fact.declared_block)
            evidence = {
                "break_glass_id": str(fact.break_glass_id),
                "patient": fact.patient,
                "reason_code": fact.reason_code,
                "declared_at": declared_at,
            }
            if fact.review == 2:
                self.findings.add(
                    Check.BREAK_GLASS,
                    "break-glass-not-justified",
                    Severity.HIGH,
                    "an auditor judged this break-glass access not justified",
                    member=fact.member,
                    evidence={**evidence, "reviewer": fact.reviewer},
                )
            elif fact.review == 0 and self.now - declared_at > self.policy.review_deadline_s:
                self.findings.add(
                    Check.BREAK_GLASS,
                    "break-glass-review-overdue",
                    Severity.HIGH,
                    "a break-glass access has waited longer than the review deadline",
                    member=fact.member,
                    evidence=evidence,
                )
            else:
                state = {0: "pending review", 1: "reviewed: justified"}[fact.review]
                self.findings.add(
                    Check.BREAK_GLASS,
                    "break-glass-declared",
                    Severity.INFO,
                    f"break-glass declared ({state})",
                    member=fact.member,
                    evidence=evidence,
                )


def _unix(value: Any) -> int:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return 0
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def _prove_last(batch: BatchAnchor, leaves: bytearray) -> dict[str, Any]:
    """An inclusion proof of the batch's last entry against its anchored root, verified here."""
    hashes = [bytes(leaves[i * 32 : (i + 1) * 32]) for i in range(batch.to_sequence)]
    proof = merkle.inclusion_proof(hashes, batch.to_sequence - 1)
    merkle.verify_inclusion(hashes[-1], batch.to_sequence - 1, batch.to_sequence, proof.hashes, batch.root)
    return {
        "sequence": batch.to_sequence,
        "tree_size": batch.to_sequence,
        "root": batch.root.hex(),
        "block": batch.block,
        "path": [h.hex() for h in proof.hashes],
        "verified": True,
    }


def verify(
    chain: ChainView, chain_id: int, exports: Iterable[MemberExport], policy: AuditPolicy | None = None
) -> AuditReport:
    """Runs every check; see the module docstring."""
    return AuditRun(chain, chain_id, policy).run(exports)


__all__ = ["AuditPolicy", "AuditReport", "MemberExport", "REPORT_SCHEMA", "read_jsonl", "verify"]
