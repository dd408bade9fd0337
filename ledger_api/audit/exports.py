"""Reading a member's exports: JSON lines, streamed one at a time (an audit's memory stays bounded)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


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
