"""The work behind ``medledger audit``: chain, manifest and auditor key; members' exports; reports.

Apart from the command definitions (``cli.audit``) so the chain, crypto and FHIR stacks load only when an
audit command runs, not for ``--help`` (see ``ledger_api.cli``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from medledger_crypto import MemberIdentity
from web3 import Web3

from ledger_api.audit import fhir
from ledger_api.audit.chain_view import ChainView, read_chain
from ledger_api.audit.report import render_html
from ledger_api.audit.report_schema import AuditPolicy, AuditReport, MemberExport
from ledger_api.audit.sources import export_from_files, exports_from_nodes
from ledger_api.audit.verify import verify
from ledger_api.chain.backends import RpcBackend
from ledger_api.chain.commitments import new_salt, statement_commitment
from ledger_api.chain.deployment import Consortium, DeploymentManifest
from ledger_api.chain.devnet import dev_passphrase
from ledger_api.chain.transactions import TransactionSender
from ledger_api.cli.client import load_member, member_client
from ledger_api.cli.output import console, print_listing
from ledger_api.consents.schemas import ConsentView, consent_status
from ledger_api.errors import BadRequest

#: the commands in ``cli.audit`` use these helpers and, re-exported from here, the stacks they stand on
__all__ = [
    "AuditPolicy",
    "Consortium",
    "Context",
    "ExitStack",
    "TransactionSender",
    "Web3",
    "consent_resources",
    "exports",
    "fhir",
    "new_salt",
    "print_report",
    "read_chain",
    "render_html",
    "statement_commitment",
    "verify",
]


class Context:
    """Chain, manifest and auditor key, from flags or the local consortium's data directory."""

    def __init__(self, data_dir: Path, rpc: str | None, manifest: Path | None, identity: Path | None) -> None:
        state_file = data_dir / "consortium.json"
        self.state = json.loads(state_file.read_text()) if state_file.exists() else {}
        self.rpc = rpc or self.state.get("chain")
        if not self.rpc:
            raise BadRequest("no chain: pass --rpc, or --data-dir of a running local consortium", field="rpc")
        self.manifest = DeploymentManifest.load(manifest or data_dir / "chain" / "deployment.json")
        self.identity_path = identity or data_dir / "chain" / "keys" / "auditor.json"
        self.dev_key = identity is None
        self.w3 = RpcBackend(self.rpc, timeout=30).w3

    def auditor(self) -> MemberIdentity:
        return auditor_identity(self.identity_path, dev_key=self.dev_key)


def local_auditor(data_dir: Path, identity: Path | None) -> MemberIdentity:
    """The auditor's key for commands that need no chain: ``--identity``, or the local consortium's."""
    return auditor_identity(identity or data_dir / "chain" / "keys" / "auditor.json", dev_key=identity is None)


def auditor_identity(path: Path, *, dev_key: bool) -> MemberIdentity:
    """The auditor's key: ``--identity`` (passphrase from the environment), or else the local consortium's
    dev key unless a passphrase is set."""
    if dev_key and "MEDLEDGER_KEYSTORE_PASSPHRASE" not in os.environ:
        return MemberIdentity.load(path, dev_passphrase())  # the local consortium's dev key
    return load_member(path)


def exports(stack: ExitStack, context: Context, node: list[str] | None, export: list[str] | None) -> list[MemberExport]:
    """Members' exports from files (``--export``) and from nodes (``--node``, or every local node)."""
    exports = []
    for spec in export or []:
        member, _, files = spec.partition("=")
        log, _, records = files.partition(",")
        if not member or not log:
            raise BadRequest(f"--export {spec!r}: expected MEMBER=LOG.jsonl[,RECORDS.jsonl]", field="export")
        exports.append(export_from_files(member, Path(log), Path(records) if records else None))
    urls = node or ([] if export else [n["url"] for n in context.state.get("nodes", {}).values()])
    if urls:
        auditor = context.auditor()
        clients = {}
        for url in urls:
            client = stack.enter_context(member_client(url.rstrip("/"), auditor))
            clients[client.get("/readyz").json()["member"]] = client
        exports += stack.enter_context(exports_from_nodes(clients))
    if not exports:
        raise BadRequest("nothing to read: pass --node or --export (or run a local consortium)", field="node")
    return exports


def print_report(report: AuditReport) -> None:
    verdict = "[green]PASSED[/green]" if report.passed else "[red]FAILED[/red]"
    console.print(
        f"audit {verdict}: chain {report.chain_id} at block {report.head_block}; "
        + ", ".join(f"{n} {s}" for s, n in report.counts.items())
    )
    print_listing(
        [m.model_dump() for m in report.members],
        as_json=False,
        title="Members",
        columns=["member", "entries", "anchored through", "break-glass", "unauthorised", "records"],
        row=lambda m: [
            m["member"],
            str(m["entries"]),
            str(m["anchored_through"]),
            str(m["break_glass_accesses"]),
            str(m["unauthorised_accesses"]),
            str(m["records_checked"]),
        ],
    )
    if report.findings:
        print_listing(
            [f.model_dump(mode="json") for f in report.findings],
            as_json=False,
            title="Findings",
            columns=["severity", "code", "member", "sequences", "count", "what"],
            row=lambda f: [
                f["severity"],
                f["code"],
                (f["member"] or "")[:10],
                sequences(f),
                str(f["count"]),
                f["message"],
            ],
        )


def sequences(finding: dict[str, Any]) -> str:
    return "" if finding["first_sequence"] is None else f"{finding['first_sequence']}–{finding['last_sequence']}"


def consent_resources(chain: ChainView, names: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Every consent on chain as a FHIR Consent, with its status at the head block and its block times."""
    now = chain.block_time(chain.head)
    for fact in chain.consents.values():
        revoked = fact.revoked_block is not None
        status = consent_status(revoked=revoked, valid_from=fact.valid_from, valid_until=fact.valid_until, now=now)
        view = ConsentView.of(str(fact.consent_id), fact.patient, fact, status)
        yield fhir.consent_resource(
            view,
            names,
            granted_at=chain.block_time(fact.granted_block),
            revoked_at=chain.block_time(fact.revoked_block) if revoked else None,
        )
