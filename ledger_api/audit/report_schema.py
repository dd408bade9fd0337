"""The audit report's schema (``medledger.audit-report/1``) and what an audit takes as input: stable
shapes that the CLI, the API, the HTML report and outside tools read."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from ledger_api.audit.findings import Finding

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
