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
  (grantee, patient, category, purpose, window, not yet revoked), or was the custodian's own; the
  record's patient and category are those that open its anchor's subject commitment (the chain holds
  no patient or category in clear: the members' record manifests give patient, category and salt,
  and the commitment is recomputed, so a member cannot relabel a record); each restriction or hiding
  change is backed by the patient's signed request the member kept, and each such change on chain is
  in a trail (``patient_requests``);
* records — stored ciphertexts hash to their anchored content hashes; every anchored version exists;
  the manifest's patient, category and salt open the anchored subject commitment;
* timeliness — entries anchored later than the policy's maximum delay; break-glass reviews overdue.

Memory is bounded: entries are streamed; per member only 32 bytes per entry (leaf hashes, for
proofs) and per-minute counts for the timeline are kept; per record, its opened patient and category.
Record manifests are read before the logs, so each entry is judged against its record's opening.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, cast

from medledger_crypto import merkle

from ledger_api.access.service import document_hash
from ledger_api.audit.chain_view import BatchAnchor, ChainView, RecordFact, SingleAnchor
from ledger_api.audit.findings import Check, Findings, Severity
from ledger_api.audit.patient_requests import SignedRequests
from ledger_api.audit.report_schema import AuditPolicy, AuditReport, MemberExport, MemberSummary, TimelineBucket
from ledger_api.chain.calldata import checksum_address
from ledger_api.chain.commitments import opens
from ledger_api.chain.days import day_number
from ledger_api.chain.types import DelegateScope, Delegation
from ledger_api.vocabulary import Purpose


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


@dataclass
class _LogWalk:
    """Where a walk through one member's log stands: the Merkle frontier and leaves so far, the last
    sequence seen, since when entries wait for an anchor, and the anchored batch roots met."""

    singles: dict[int, SingleAnchor]
    batches: dict[int, BatchAnchor]
    builder: merkle.RootBuilder = field(default_factory=merkle.RootBuilder)
    leaves: bytearray = field(default_factory=bytearray)
    previous: int = 0
    unanchored_since: int | None = None
    matched: list[BatchAnchor] = field(default_factory=list)
    mismatched: list[BatchAnchor] = field(default_factory=list)


#: what a patient-basis entry may record: the patient's own copy, and their restriction changes
PATIENT_ACTIONS = frozenset({"self_access", "restrict", "unrestrict", "hide", "unhide"})


class AuditRun:
    """One verification over the chain view and the members' exports."""

    def __init__(self, chain: ChainView, chain_id: int, policy: AuditPolicy | None = None) -> None:
        self.chain, self.chain_id = chain, chain_id
        self.policy = policy or AuditPolicy()
        self.now = self.policy.now if self.policy.now is not None else int(datetime.now(UTC).timestamp())
        self.findings = Findings()
        self.timeline = _Timeline()
        self.summaries: list[MemberSummary] = []
        #: record id -> (patient, category) that opened its anchor; (member, record id) already tried
        #: record id -> (patient, category, day of care) that opened its anchor
        self.openings: dict[str, tuple[str, int, int]] = {}
        self._tried: set[tuple[str, str]] = set()
        self.requests = SignedRequests(chain_id, chain.consent_registry)

    # ------------------------------------------------------------------------------ the run
    def run(self, exports: Iterable[MemberExport]) -> AuditReport:
        exports = list(exports)
        summaries = {}
        for export in exports:  # records first: they open the anchors the entries are judged by
            member = checksum_address(export.member)
            summaries[member] = summary = MemberSummary(member=member)
            if export.records is not None:
                self._verify_records(member, export.records, summary)
        for export in exports:
            member = checksum_address(export.member)
            self._verify_log(member, export.entries, summaries[member])
            self.summaries.append(summaries[member])
        self._verify_patient_changes(set(summaries))
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
        """Walks one member's exported log once, entry by entry, against what the chain anchored."""
        trail = self.chain.trail(member)
        walk = _LogWalk(singles=trail.singles, batches={b.to_sequence: b for b in trail.batches})
        anchored_through = max([*trail.singles, *walk.batches, 0])
        summary.anchored_through, summary.single_anchors = anchored_through, len(trail.singles)
        summary.batch_anchors = len(trail.batches)
        for doc in entries:
            sequence = self._next_sequence(member, doc, walk)
            if sequence is None:
                continue
            summary.entries += 1
            recomputed = self._check_entry(member, sequence, doc)
            leaf = merkle.leaf_hash(bytes.fromhex(recomputed))
            walk.builder.append(leaf)
            walk.leaves += leaf
            at, checked_block = self._access_time(member, sequence, doc)
            if walk.unanchored_since is None:
                walk.unanchored_since = at
            self._check_anchor(member, sequence, recomputed, walk)
            violation = self._check_authorisation(member, sequence, doc, at, checked_block)
            summary.unauthorised_accesses += violation
            summary.break_glass_accesses += doc.get("basis") == "break_glass"
            self.timeline.count(member, at, break_glass=doc.get("basis") == "break_glass", violation=violation)
            walk.previous = sequence
        self._check_log_end(member, anchored_through, walk)
        self._judge_roots(member, walk.matched, walk.mismatched, walk.leaves)
        if walk.matched:
            summary.inclusion_proof = _prove_last(walk.matched[-1], walk.leaves)

    def _next_sequence(self, member: str, doc: dict[str, Any], walk: _LogWalk) -> int | None:
        """The entry's sequence if it continues the log (a gap before it is reported); None for a line
        that is not an entry, or a sequence that repeats or goes backwards (reported, then skipped)."""
        add = self.findings.add
        if "__malformed__" in doc:
            add(
                Check.INTEGRITY,
                "export-line-malformed",
                Severity.CRITICAL,
                "an exported line is not a JSON entry",
                member=member,
                evidence={"line": doc["__malformed__"]},
            )
            return None
        sequence = doc.get("sequence")
        if not isinstance(sequence, int):
            add(
                Check.INTEGRITY,
                "entry-malformed",
                Severity.CRITICAL,
                "an exported entry has no sequence number",
                member=member,
            )
            return None
        previous = walk.previous
        if sequence <= previous:
            code = "sequence-duplicate" if sequence == previous else "sequence-out-of-order"
            add(
                Check.COMPLETENESS,
                code,
                Severity.CRITICAL,
                "the log repeats a sequence number" if sequence == previous else "the log's sequences go backwards",
                member=member,
                sequence=sequence,
                evidence={"after": previous, "entry_hash": doc.get("entry_hash")},
            )
            return None
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
        return sequence

    def _check_entry(self, member: str, sequence: int, doc: dict[str, Any]) -> str:
        """The entry's hash, recomputed; reports an entry edited after logging or naming another member."""
        claimed = doc.get("entry_hash")
        recomputed = document_hash({k: v for k, v in doc.items() if k != "entry_hash"})
        if claimed != recomputed:
            self.findings.add(
                Check.INTEGRITY,
                "entry-edited",
                Severity.CRITICAL,
                "the entry no longer hashes to its recorded hash: it was edited after logging",
                member=member,
                sequence=sequence,
                evidence={"recorded": claimed, "recomputed": recomputed},
            )
        if doc.get("member") != member:
            self.findings.add(
                Check.INTEGRITY,
                "entry-other-member",
                Severity.CRITICAL,
                "the entry names another member",
                member=member,
                sequence=sequence,
                evidence={"member": doc.get("member")},
            )
        return recomputed

    def _access_time(self, member: str, sequence: int, doc: dict[str, Any]) -> tuple[int, int | None]:
        """When the access happened, and the block its authorisation was read at (None if it names none,
        or one the chain has not reached: reported). Chain time where the entry names its block (format 2),
        else the node's clock."""
        checked_block = doc.get("chain_block")
        if isinstance(checked_block, int) and checked_block > self.chain.head:
            self.findings.add(
                Check.INTEGRITY,
                "authorisation-block-future",
                Severity.CRITICAL,
                "the entry claims an authorisation block the chain has not reached",
                member=member,
                sequence=sequence,
                evidence={"chain_block": checked_block, "head": self.chain.head},
            )
            checked_block = None
        if isinstance(checked_block, int):
            return self.chain.block_time(checked_block), checked_block
        return _unix(doc.get("created_at")), None

    def _check_anchor(self, member: str, sequence: int, recomputed: str, walk: _LogWalk) -> None:
        """The entry against its single anchor, or the log so far against the batch root anchored at it;
        and how long the entries since the last anchor waited for it."""
        single = walk.singles.get(sequence)
        anchored_block = None
        if single is not None:
            anchored_block = single.block
            if single.entry_hash != recomputed:
                self.findings.add(
                    Check.INTEGRITY,
                    "entry-not-as-anchored",
                    Severity.CRITICAL,
                    "the entry differs from the hash anchored on chain for its sequence",
                    member=member,
                    sequence=sequence,
                    evidence={"anchored": single.entry_hash, "recomputed": recomputed, "block": single.block},
                )
        batch = walk.batches.get(sequence)
        if batch is not None:
            anchored_block = batch.block
            (walk.matched if walk.builder.root() == batch.root else walk.mismatched).append(batch)
        if anchored_block is None or walk.unanchored_since is None:
            return
        delay = self.chain.block_time(anchored_block) - walk.unanchored_since
        if delay > self.policy.max_anchor_delay_s:
            self.findings.add(
                Check.TIMELINESS,
                "anchored-late",
                Severity.MEDIUM,
                f"entries were anchored more than {self.policy.max_anchor_delay_s}s after they were logged",
                member=member,
                sequence=sequence,
                evidence={"delay_s": delay, "block": anchored_block},
            )
        walk.unanchored_since = None

    def _check_log_end(self, member: str, anchored_through: int, walk: _LogWalk) -> None:
        """After the last entry: anchored sequences the export lacks, or entries still waiting for an anchor."""
        previous = walk.previous
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
        elif previous > anchored_through and walk.unanchored_since is not None:
            late = self.now - walk.unanchored_since > self.policy.max_anchor_delay_s
            self.findings.add_range(
                Check.TIMELINESS,
                "anchoring-overdue" if late else "anchoring-pending",
                Severity.MEDIUM if late else Severity.INFO,
                "entries not yet anchored on chain" + (" beyond the maximum delay" if late else ""),
                member=member,
                first=anchored_through + 1,
                last=previous,
            )

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
                # The proof is built from the exported log, whose prefix root is not ``bad.root`` (that is
                # why it mismatched) while its longer root is ``later.root``: it proves the two anchored
                # roots inconsistent, for anyone to check with ``merkle.verify_consistency``.
                hashes = [bytes(leaves[i * 32 : (i + 1) * 32]) for i in range(later.to_sequence)]
                proof = merkle.consistency_proof(hashes, bad.to_sequence)
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

    def _delegate_could(self, doc: dict[str, Any], at: int, before: Callable[[int], bool]) -> bool:
        """Whether the entry's requester stood as the patient's delegate when it was authorised, before the
        delegation's end, with the scope its action needs (a copy: any; a restriction or hiding: manage)."""
        then: Delegation | None = None
        for delegation, changed in self.chain.delegate_changes.get(str(doc.get("patient")), []):
            if before(changed) and delegation.delegate == doc.get("requester"):
                then = delegation
        if then is None or not then.live(at):
            return False
        return doc.get("action") == "self_access" or then.scope == DelegateScope.MANAGE

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
        if basis == "patient":  # the patient's own copy or restriction change, by them or a delegate then
            action = doc.get("action")
            request_problem = self.requests.problem(member, doc)  # counts a restriction change as logged
            if action in PATIENT_ACTIONS and (requester == patient or self._delegate_could(doc, at, before)):
                return request_problem
            return (
                "patient-basis-misused",
                "a patient-basis entry by someone other than the patient or a delegate whose scope allowed it then",
            )
        if basis == "custodian":
            allowed = {member, patient} if doc.get("action") == "erase" else {member}
            if requester not in allowed:
                return "custodian-basis-misused", "a custodian-basis access by someone other than the custodian"
            if (
                doc.get("action") == "read"
                and doc.get("purpose") != int(Purpose.LEGAL)
                and self._restricted(doc, before)
            ):
                return (
                    "release-while-restricted",
                    "the custodian read a restricted record for a purpose other than legal",
                )
            return None
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
            return self._record_problem(doc)
        if basis != "consent":
            return "basis-unknown", f"unknown basis {basis!r}"
        consent = chain.consents.get(reference)
        if consent is None:
            return "consent-unknown", "the consent the access names does not exist on chain"
        if consent.patient != patient:
            return "consent-other-patient", "the consent is another patient's"
        if requester not in consent.grantees:
            return "consent-other-grantee", "the consent does not name this member"
        problem = self._record_problem(doc)
        if problem is not None:
            return problem
        _, category, day = self.openings[str(doc.get("record_id"))]
        if not (consent.categories >> category) & 1:
            return "consent-category", "the consent does not cover the record's category"
        if not consent.covers_day(day):
            return "consent-care-range", "the record's day of care lies outside the days the consent covers"
        purpose = doc.get("purpose")
        if not isinstance(purpose, int) or not (consent.purposes >> purpose) & 1:
            name = Purpose(cast(int, purpose)).name.lower() if purpose in Purpose._value2member_map_ else purpose
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
        if self._restricted(doc, before):
            return "release-while-restricted", "the record (or all the patient's records) was restricted on chain"
        record = self.chain.records.get(str(doc.get("record_id")))
        if record is not None and _standing(record.hidings, before):
            return "release-while-hidden", "the patient had hidden the record from every consent"
        return None

    def _restricted(self, doc: dict[str, Any], before: Any) -> bool:
        """Whether the entry's record, or all its patient's records, stood restricted when it was authorised."""

        record = self.chain.records.get(str(doc.get("record_id")))
        return _standing(record.restrictions if record is not None else [], before) or _standing(
            self.chain.sharing_restrictions.get(str(doc.get("patient")), []), before
        )

    def _record_problem(self, doc: dict[str, Any]) -> tuple[str, str] | None:
        """Why the record an entry names cannot be judged, or is not the one the entry says, or None: its
        patient and category are those that opened its anchor (``openings``), not the entry's word."""
        record_id = str(doc.get("record_id"))
        if record_id not in self.chain.records:
            return "record-unknown", "the record read is not anchored on chain, so its patient and category are unknown"
        opening = self.openings.get(record_id)
        if opening is None:
            return (
                "record-unopened",
                "no member's record manifest opens the record's anchor, so its patient and category are unproven",
            )
        patient, category, _ = opening
        if doc.get("patient") != patient:
            return "entry-other-patient", "the entry names another patient than the record's anchor commits to"
        if "category" in doc and doc["category"] != category:
            return "entry-other-category", "the entry names another category than the record's anchor commits to"
        return None

    # ------------------------------------------------------------------------------ records
    def _open_record(self, member: str, line: dict[str, Any], fact: RecordFact) -> None:
        """Opens the record's anchored subject with this member's patient, category and salt (once per member
        and record: a handed-over record is in the manifests of both custodians, and each must open it)."""
        record_id = fact.record_id
        if (member, record_id) in self._tried:
            return
        self._tried.add((member, record_id))
        patient, category, salt = line.get("patient"), line.get("category"), line.get("subject_salt")
        try:
            encounter = line.get("encounter_date")
            day = day_number(date.fromisoformat(str(encounter))) if encounter else 0
            opened = opens(
                bytes.fromhex(fact.subject),
                bytes.fromhex(record_id),
                str(patient),
                cast(int, category),
                bytes.fromhex(str(salt)),
                day,
            )
        except (ValueError, TypeError):
            opened, day = False, 0
        if opened:
            self.openings[record_id] = (checksum_address(str(patient)), cast(int, category), day)
            return
        self.findings.add(
            Check.RECORDS,
            "record-subject-mismatch",
            Severity.CRITICAL,
            "the member's patient, category, day of care and salt for this record do not open its anchored "
            "commitment: "
            "the record was relabelled (or its salt lost)",
            member=member,
            evidence={"record_id": record_id, "anchored_subject": fact.subject},
        )

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
            self.requests.keep(member, line)
            summary.records_checked += 1
            fact = self.chain.records.get(record_id)
            anchored = fact.versions.get(version) if fact is not None else None
            evidence = {"record_id": record_id, "version": version}
            if fact is not None:
                self._open_record(member, line, fact)
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

    # ------------------------------------------------------------------------------ the patient's changes
    def _verify_patient_changes(self, audited: set[str]) -> None:
        """Every restriction or hiding change the chain shows is in a trail (see ``patient_requests``)."""
        for record_id, kind, value, count in self.requests.unlogged(self.chain.records.values(), audited):
            change = {True: "set", False: "lifted"}[value]
            self.findings.add(
                Check.AUTHORISATION,
                "patient-change-unlogged",
                Severity.MEDIUM if value else Severity.CRITICAL,
                f"the chain shows a record's {kind} {change} that no trail entry records as the patient's request",
                member=self.chain.records[record_id].custodian,
                evidence={"record_id": record_id, "change": f"{kind} {change}", "count": count},
            )

    # ------------------------------------------------------------------------------ break-glass
    def _verify_break_glass_reviews(self) -> None:
        for fact in self.chain.break_glass.values():
            declared_at = self.chain.block_time(fact.declared_block)
            evidence = {"break_glass_id": str(fact.break_glass_id), "patient": fact.patient, "declared_at": declared_at}
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


__all__ = ["verify"]


def _standing(changes: list[tuple[bool, int]], before: Any) -> bool:
    """Whether the last of these flag changes (flag, block) made before the moment judged set the flag."""
    passed = [flag for flag, block in changes if before(block)]
    return bool(passed and passed[-1])
