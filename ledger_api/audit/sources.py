"""Where an audit's inputs come from: members' nodes (auditor-signed requests) or export files.

Exports are downloaded to temporary files first and then streamed through the verifier, so a
member's log of any length is held neither in memory nor on an open connection while it is checked.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from ledger_api.audit.exports import read_jsonl
from ledger_api.audit.report_schema import MemberExport
from ledger_api.errors import LedgerError


class ExportUnavailable(LedgerError):
    status = 502
    code = "export-unavailable"
    title = "A member's export could not be fetched"


def _download(client: httpx.Client, path: str, target: Path) -> None:
    try:
        with client.stream("GET", path) as response:
            if response.status_code != 200:
                response.read()
                raise ExportUnavailable(
                    f"{client.base_url}{path} answered {response.status_code}: {response.text[:200]}"
                )
            with open(target, "wb") as handle:
                for chunk in response.iter_bytes():
                    handle.write(chunk)
    except httpx.HTTPError as exc:
        raise ExportUnavailable(f"{client.base_url}{path}: {type(exc).__name__}") from None


@contextmanager
def exports_from_nodes(clients: dict[str, httpx.Client]) -> Iterator[list[MemberExport]]:
    """Each member's log export and record manifest, fetched with the auditor's signed requests."""
    with tempfile.TemporaryDirectory(prefix="medledger-audit-") as tmp:
        exports = []
        for index, (member, client) in enumerate(clients.items()):
            log, records = Path(tmp) / f"{index}-log.jsonl", Path(tmp) / f"{index}-records.jsonl"
            _download(client, "/v1/access-log/export", log)
            _download(client, "/v1/audit/records", records)
            exports.append(MemberExport(member=member, entries=read_jsonl(log), records=read_jsonl(records)))
        yield exports


def export_from_files(member: str, log: Path, records: Path | None) -> MemberExport:
    return MemberExport(member=member, entries=read_jsonl(log), records=read_jsonl(records) if records else None)
