"""The audit report for humans: one self-contained HTML page (no scripts, no external assets).

Summary, per-member table, findings table, and a timeline of accesses per member (inline SVG)
with break-glass accesses and violations marked. Every value is HTML-escaped.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from html import escape

from ledger_api.audit.report_schema import AuditReport

_COLOURS = ["#1f6feb", "#2da44e", "#8250df", "#bf8700", "#0a7b83", "#6e7781"]
_SEVERITY_COLOURS = {"critical": "#b42318", "high": "#c4320a", "medium": "#8a6d00", "info": "#475467"}
_BARS = 60


def _short(address: str | None) -> str:
    return f"{address[:8]}…{address[-4:]}" if address else "—"


def _timeline_svg(report: AuditReport) -> str:
    if not report.timeline:
        return "<p>No accesses in the exported logs.</p>"
    members = sorted({b.member for b in report.timeline})
    first, last = min(b.minute for b in report.timeline), max(b.minute for b in report.timeline)
    width_minutes = max(1, (last - first + 1 + _BARS - 1) // _BARS)
    bars: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for bucket in report.timeline:
        counts = bars[(bucket.member, (bucket.minute - first) // width_minutes)]
        counts[0] += bucket.accesses
        counts[1] += bucket.break_glass
        counts[2] += bucket.violations
    peak = max(v[0] for v in bars.values()) or 1
    row_h, chart_w, left = 70, 720, 130
    bar_w = chart_w / _BARS
    parts = [
        f'<svg role="img" aria-label="Accesses per member over time" width="{left + chart_w + 10}" '
        f'height="{row_h * len(members) + 30}" xmlns="http://www.w3.org/2000/svg" font-size="11">'
    ]
    for row, member in enumerate(members):
        y0 = row * row_h + 10
        parts.append(f'<text x="0" y="{y0 + row_h / 2}">{escape(_short(member))}</text>')
        parts.append(
            f'<line x1="{left}" y1="{y0 + row_h - 8}" x2="{left + chart_w}" y2="{y0 + row_h - 8}" stroke="#d0d7de"/>'
        )
        for slot in range(_BARS):
            accesses, break_glass, violations = bars.get((member, slot), [0, 0, 0])
            if not accesses:
                continue
            height = max(2.0, (row_h - 20) * accesses / peak)
            x, y = left + slot * bar_w, y0 + row_h - 8 - height
            start = datetime.fromtimestamp((first + slot * width_minutes) * 60, UTC).strftime("%Y-%m-%d %H:%M")
            title = f"{start} UTC: {accesses} accesses, {break_glass} break-glass, {violations} violations"
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 1:.1f}" height="{height:.1f}" '
                f'fill="{_COLOURS[row % len(_COLOURS)]}"><title>{escape(title)}</title></rect>'
            )
            if break_glass:
                parts.append(
                    f'<circle cx="{x + bar_w / 2:.1f}" cy="{y - 5:.1f}" r="3.5" fill="#bf8700">'
                    f"<title>{break_glass} break-glass</title></circle>"
                )
            if violations:
                parts.append(
                    f'<text x="{x:.1f}" y="{y - 10:.1f}" fill="#b42318" font-weight="bold">✕'
                    f"<title>{violations} violations</title></text>"
                )
    span = (
        f"{datetime.fromtimestamp(first * 60, UTC):%Y-%m-%d %H:%M} – "
        f"{datetime.fromtimestamp((last + 1) * 60, UTC):%Y-%m-%d %H:%M} UTC"
    )
    parts.append(
        f'<text x="{left}" y="{row_h * len(members) + 25}">{escape(span)}; ● break-glass, ✕ violation</text></svg>'
    )
    return "".join(parts)


def render_html(report: AuditReport) -> str:
    verdict = "PASSED" if report.passed else "FAILED"
    colour = "#2da44e" if report.passed else "#b42318"
    member_rows = "".join(
        f"<tr><td><code>{escape(m.member)}</code></td><td>{m.entries}</td><td>{m.anchored_through}</td>"
        f"<td>{m.single_anchors}</td><td>{m.batch_anchors}</td><td>{m.break_glass_accesses}</td>"
        f"<td>{m.unauthorised_accesses}</td><td>{m.records_checked}</td>"
        f"<td>{'yes' if m.inclusion_proof else '—'}</td></tr>"
        for m in report.members
    )
    finding_rows = (
        "".join(
            f'<tr><td style="color:{_SEVERITY_COLOURS[f.severity.value]};font-weight:bold">{f.severity.value}</td>'
            f"<td>{escape(f.check.value)}</td><td><code>{escape(f.code)}</code></td><td>{escape(_short(f.member))}</td>"
            f"<td>{'' if f.first_sequence is None else f'{f.first_sequence}–{f.last_sequence}'}</td><td>{f.count}</td>"
            f"<td>{escape(f.message)}</td><td><details><summary>{len(f.evidence)}</summary><pre>"
            f"{escape(repr(f.evidence))}</pre></details></td></tr>"
            for f in report.findings
        )
        or '<tr><td colspan="8">No findings.</td></tr>'
    )
    counts = ", ".join(f"{n} {s}" for s, n in report.counts.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>MedLedger audit report — {verdict}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;color:#1f2328;max-width:1200px}}
table{{border-collapse:collapse;width:100%;margin:1rem 0}}th,td{{border:1px solid #d0d7de;padding:4px 8px;
text-align:left;vertical-align:top}}th{{background:#f6f8fa}}.verdict{{color:#fff;background:{colour};padding:4px 12px;
border-radius:4px}}pre{{white-space:pre-wrap;max-width:40rem;font-size:11px}}
</style></head><body>
<h1>MedLedger audit report <span class="verdict">{verdict}</span></h1>
<p>Generated {escape(report.generated_at)} · chain {report.chain_id} at block {report.head_block} ·
schema <code>{escape(report.schema_id)}</code></p>
<h2>Summary</h2>
<p>{len(report.members)} member log(s), {sum(m.entries for m in report.members)} entries verified;
findings: {escape(counts)}. Policy: anchoring within {report.policy.max_anchor_delay_s}s, break-glass reviewed
within {report.policy.review_deadline_s}s, clock skew tolerance {report.policy.clock_skew_s}s.</p>
<table><thead><tr><th>Member</th><th>Entries</th><th>Anchored through</th><th>Single anchors</th>
<th>Batch anchors</th><th>Break-glass</th><th>Unauthorised</th><th>Records checked</th><th>Inclusion proof</th>
</tr></thead><tbody>{member_rows}</tbody></table>
<h2>Timeline</h2>
{_timeline_svg(report)}
<h2>Findings</h2>
<table><thead><tr><th>Severity</th><th>Check</th><th>Code</th><th>Member</th><th>Sequences</th><th>Count</th>
<th>What</th><th>Evidence</th></tr></thead><tbody>{finding_rows}</tbody></table>
</body></html>
"""
