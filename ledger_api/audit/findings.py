"""What an audit reports: findings with severity, member, sequence range and evidence.

Findings of one kind for one member on consecutive sequences are merged into one finding with a
range (a systematic fault over a million entries is one finding, not a million), and evidence is
kept for the first few occurrences only, so a report's size is bounded whatever the log's size.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

#: Evidence samples kept per merged finding.
EVIDENCE_SAMPLES = 5


class Severity(StrEnum):
    CRITICAL = "critical"  # the trail cannot be trusted here (rewritten, missing, unauthorised access)
    HIGH = "high"  # a rule was broken (record hash mismatch, late review of break-glass)
    MEDIUM = "medium"  # timeliness and pending anchoring beyond policy
    INFO = "info"  # noted for the reader (break-glass used, records erased)

    @property
    def rank(self) -> int:
        return {"critical": 3, "high": 2, "medium": 1, "info": 0}[self.value]


class Check(StrEnum):
    INTEGRITY = "integrity"
    COMPLETENESS = "completeness"
    AUTHORISATION = "authorisation"
    RECORDS = "records"
    TIMELINESS = "timeliness"
    BREAK_GLASS = "break_glass"


class Finding(BaseModel):
    """One problem (or notable fact), possibly over a range of sequences."""

    check: Check
    code: str
    severity: Severity
    member: str | None = None
    first_sequence: int | None = None
    last_sequence: int | None = None
    count: int = 1
    message: str
    evidence: list[dict[str, Any]] = Field(default_factory=list)


class Findings:
    """Collects findings, merging consecutive ones of the same code and member."""

    def __init__(self) -> None:
        self.items: list[Finding] = []
        self._open: dict[tuple[str, str | None], Finding] = {}

    def add(
        self,
        check: Check,
        code: str,
        severity: Severity,
        message: str,
        *,
        member: str | None = None,
        sequence: int | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> None:
        key = (code, member)
        current = self._open.get(key)
        if (
            current is not None
            and sequence is not None
            and current.last_sequence is not None
            and sequence == current.last_sequence + 1
        ):
            current.last_sequence = sequence
            current.count += 1
            if evidence is not None and len(current.evidence) < EVIDENCE_SAMPLES:
                current.evidence.append(evidence)
            return
        finding = Finding(
            check=check,
            code=code,
            severity=severity,
            member=member,
            first_sequence=sequence,
            last_sequence=sequence,
            message=message,
            evidence=[evidence] if evidence else [],
        )
        self.items.append(finding)
        if sequence is not None:
            self._open[key] = finding

    def add_range(
        self,
        check: Check,
        code: str,
        severity: Severity,
        message: str,
        *,
        member: str | None,
        first: int,
        last: int,
        evidence: dict[str, Any] | None = None,
    ) -> None:
        self.items.append(
            Finding(
                check=check,
                code=code,
                severity=severity,
                member=member,
                first_sequence=first,
                last_sequence=last,
                count=last - first + 1,
                message=message,
                evidence=[evidence] if evidence else [],
            )
        )

    def of(self, code: str) -> list[Finding]:
        return [f for f in self.items if f.code == code]
