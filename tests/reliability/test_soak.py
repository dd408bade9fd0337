"""A short soak in CI: mixed traffic against a 3-member consortium, then the auditor's verification
of everything it produced passes. ``make bench`` soaks longer (``soak.*`` figures)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.utils.soak import run_soak

pytestmark = pytest.mark.slow


def test_a_short_soak_serves_everything_and_the_audit_of_it_passes(tmp_path: Path) -> None:
    result = run_soak(tmp_path, duration_s=20, workers=4)
    assert result.requests >= 200, result.requests
    assert result.errors == 0, result.unexpected
    assert result.audit_passed, result.audit_output
