"""`make demo` as an end-to-end test: the whole story over real processes, every step checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.consent import Consent

from ledger_api.chain.backends import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_demo_story_passes_on_a_fresh_local_consortium(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "demo.py"),
            "--data-dir",
            str(tmp_path / "data"),
            "--imaging-mb",
            "48",
            "--rpc-port",
            str(free_port()),
            "--base-port",
            str(free_port(3)),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    for step in (
        "asks for the lab report without consent",
        "denied on the very next request",
        "break-glass flagged",
        "verification passed",
        "Consent (the revoked one inactive)",
        "demo passed",
    ):
        assert step in output, output
    report = (tmp_path / "data" / "demo-audit-report.html").read_text()
    assert "PASSED" in report and "<svg" in report
    fhir = tmp_path / "data" / "demo-fhir"
    events = (fhir / "AuditEvent.ndjson").read_text().splitlines()
    consents = (fhir / "Consent.ndjson").read_text().splitlines()
    assert len(events) >= 3 and len(consents) >= 1  # B: labs + imaging, C: labs under break-glass
    for line in events:
        AuditEvent.model_validate_json(line)
    for line in consents:
        Consent.model_validate_json(line)
