from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

VECTORS = Path(__file__).parent / "vectors"


def load_vectors(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text())


@pytest.fixture
def context():
    from medledger_crypto import RecordContext

    return RecordContext(record_id=b"\x07" * 32, version=1, custodian="0x" + "aa" * 20, patient="0x" + "bb" * 20)
