"""``medledger audit``: the auditor's side — verify the trail, review break-glass, export FHIR.

Defaults point at a local consortium's data directory (``make run``): its state file names the
chain and the nodes, ``chain/deployment.json`` the contracts, ``chain/keys/auditor.json`` the
auditor's key. Against a production consortium pass ``--rpc``, ``--manifest``, ``--identity``
and ``--node`` (or ``--export`` files) instead.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer
from medledger_crypto import MemberIdentity
from web3 import Web3

from ledger_api.audit import fhir
from ledger_api.audit.chain_view import ChainView, read_chain
from ledger_api.audit.report import render_html
from ledger_api.audit.sources import export_from_files, exports_from_nodes
from ledger_api.audit.verify import AuditPolicy, AuditReport, verify
from ledger_api.chain.backends import RpcBackend
from ledger_api.chain.deployment import Consortium, DeploymentManifest
from ledger_api.chain.devnet import _passphrase
from ledger_api.chain.transactions import TransactionSender
from ledger_api.cli.client import load_member, member_client
from ledger_api.cli.output import console, print_listing, reported_errors
from ledger_api.consents.service import ConsentView, consent_status
from ledger_api.errors import BadRequest

app = typer.Typer(help="Auditors: verify the access trail, review break-glass, export FHIR.", no_args_is_help=True)
DataDirOpt = Annotated[Path, typer.Option("--data-dir", help="A local consortium's data directory.")]
RpcOpt = Annotated[str | None, typer.Option("--rpc", help="Chain RPC URL (default: the local consortium's).")]
ManifestOpt = Annotated[Path | None, typer.Option("--manifest", help="Deployment manifest (default: local).")]
IdentityOpt = Annotated[Path | None, typer.Option("--identity", help="The auditor's identity keystore.")]


class _Context:
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
        if self.dev_key and "MEDLEDGER_KEYSTORE_PASSPHRASE" not in os.environ:
            return MemberIdentity.load(self.identity_path, _passphrase())  # the local consortium's dev key
        return load_member(self.identity_path)


NodeOpt = Annotated[list[str] | None, typer.Option("--node", help="A member node URL (repeat; default: all).")]
ExportOpt = Annotated[list[str] | None, typer.Option("--export", help="MEMBER=LOG.jsonl[,RECORDS.jsonl]")]


def _exports(stack: ExitStack, context: _Context, node: list[str] | None, export: list[str] | None) -> list:
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


def _print_report(report: AuditReport) -> None:
    verdict = "[green]PASSED[/green]" if report.passed else "[red]FAILED[/red]"
    console.print(f"audit {verdict}: chain {report.chain_id} at block {report.head_block}; "
                  + ", ".join(f"{n} {s}" for s, n in report.counts.items()))  # fmt: skip
    print_listing([m.model_dump() for m in report.members], as_json=False, title="Members",
                  columns=["member", "entries", "anchored through", "break-glass", "unauthorised", "records"],
                  row=lambda m: [m["member"], str(m["entries"]), str(m["anchored_through"]),
                                 str(m["break_glass_accesses"]), str(m["unauthorised_accesses"]),
                                 str(m["records_checked"])])  # fmt: skip
    if report.findings:
        print_listing([f.model_dump(mode="json") for f in report.findings], as_json=False, title="Findings",
                      columns=["severity", "code", "member", "sequences", "count", "what"],
                      row=lambda f: [f["severity"], f["code"], (f["member"] or "")[:10],
                                     _sequences(f),
                                     str(f["count"]), f["message"]])  # fmt: skip


def _sequences(finding: dict) -> str:
    return "" if finding["first_sequence"] is None else f"{finding['first_sequence']}–{finding['last_sequence']}"


@app.command("verify")
def verify_command(
    data_dir: DataDirOpt = Path("data"), rpc: RpcOpt = None, manifest: ManifestOpt = None,
    identity: IdentityOpt = None,
    node: NodeOpt = None, export: ExportOpt = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the JSON report here.")] = None,
    html_out: Annotated[Path | None, typer.Option("--html", help="Write the HTML report here.")] = None,
    max_anchor_delay: Annotated[int, typer.Option(help="Seconds an entry may wait for its anchor.")] = 600,
    review_deadline: Annotated[int, typer.Option(help="Seconds a break-glass may wait for review.")] = 7 * 86_400,
) -> None:  # fmt: skip
    """Verifies every member's trail against the chain; exits 1 if anything critical or high is found."""
    with reported_errors():
        context = _Context(data_dir, rpc, manifest, identity)
        policy = AuditPolicy(max_anchor_delay_s=max_anchor_delay, review_deadline_s=review_deadline)
        chain = read_chain(context.w3, context.manifest)
        with ExitStack() as stack:
            exports = _exports(stack, context, node, export)
            report = verify(chain, context.manifest.chain_id, exports, policy)
        if json_out:
            json_out.write_text(report.model_dump_json(by_alias=True, indent=2))
        if html_out:
            html_out.write_text(render_html(report), encoding="utf-8")
        _print_report(report)
    if not report.passed:
        raise typer.Exit(1)


@app.command("break-glass")
def break_glass(
    data_dir: DataDirOpt = Path("data"), rpc: RpcOpt = None, manifest: ManifestOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:  # fmt: skip
    """Every break-glass declaration with its review state (review items for auditors)."""
    with reported_errors():
        context = _Context(data_dir, rpc, manifest, None)
        chain = read_chain(context.w3, context.manifest)
        review_names = {0: "pending", 1: "justified", 2: "not justified"}
        rows = [{"break_glass_id": str(f.break_glass_id), "member": f.member, "patient": f.patient,
                 "reason_code": f.reason_code, "declared_at": chain.block_time(f.declared_block),
                 "review": review_names[f.review], "reviewer": f.reviewer}
                for f in chain.break_glass.values()]  # fmt: skip
        print_listing(rows, as_json=as_json, title="Break-glass reviews",
                      columns=["id", "member", "patient", "reason", "review"],
                      row=lambda r: [r["break_glass_id"], r["member"][:10], r["patient"][:10], str(r["reason_code"]),
                                     r["review"]])  # fmt: skip


@app.command()
def review(
    break_glass_id: Annotated[str, typer.Argument(help="The break-glass id (decimal or 0x-hex).")],
    justified: Annotated[bool, typer.Option("--justified/--not-justified", help="The decision.")],
    reason: Annotated[str, typer.Option(help="The reason, kept by the auditor; only its hash goes on chain.")],
    data_dir: DataDirOpt = Path("data"), rpc: RpcOpt = None, manifest: ManifestOpt = None,
    identity: IdentityOpt = None,
) -> None:  # fmt: skip
    """Records the auditor's decision on a break-glass access on chain (signed with the auditor's key)."""
    with reported_errors():
        if not reason.strip():
            raise BadRequest("give the reason for the decision", field="reason")
        try:
            bg_id = int(break_glass_id, 0)
        except ValueError:
            raise BadRequest(f"not a break-glass id: {break_glass_id!r}", field="break_glass_id") from None
        context = _Context(data_dir, rpc, manifest, identity)
        auditor = context.auditor()
        chain = Consortium(context.w3, context.manifest, TransactionSender(context.w3, auditor.account))
        reason_hash = hashlib.sha256(reason.strip().encode()).digest()
        receipt = chain.consents.review_break_glass(bg_id, justified, reason_hash)
        console.print(f"break-glass {bg_id} reviewed: {'justified' if justified else 'not justified'} "
                      f"(reason hash {reason_hash.hex()[:16]}…, block {receipt.block_number})")  # fmt: skip


@app.command("lift-block")
def lift_block(
    patient: Annotated[str, typer.Option(help="The patient's account.")],
    member: Annotated[str, typer.Option(help="The member a not-justified review blocked for that patient.")],
    data_dir: DataDirOpt = Path("data"), rpc: RpcOpt = None, manifest: ManifestOpt = None,
    identity: IdentityOpt = None,
) -> None:  # fmt: skip
    """Lets a member declare break-glass for a patient again after a not-justified review blocked it."""
    with reported_errors():
        for name, value in (("patient", patient), ("member", member)):
            if not Web3.is_address(value):
                raise BadRequest(f"{name}: not an Ethereum address: {value!r}", field=name)
        context = _Context(data_dir, rpc, manifest, identity)
        chain = Consortium(context.w3, context.manifest, TransactionSender(context.w3, context.auditor().account))
        receipt = chain.consents.lift_break_glass_block(patient, member)
        console.print(f"break-glass block lifted for member {member} and patient {patient} "
                      f"(block {receipt.block_number})")


def _consent_resources(chain: ChainView, names: dict[str, str]) -> Iterator[dict]:
    """Every consent on chain as a FHIR Consent, with its status at the head block and its block times."""
    now = chain.block_time(chain.head)
    for fact in chain.consents.values():
        revoked = fact.revoked_block is not None
        view = ConsentView(consent_id=str(fact.consent_id), patient=fact.patient, grantee=fact.grantee,
                           categories=fact.categories, purposes=fact.purposes, valid_from=fact.valid_from,
                           valid_until=fact.valid_until,
                           status=consent_status(revoked=revoked, valid_from=fact.valid_from,
                                                 valid_until=fact.valid_until, now=now))  # fmt: skip
        yield fhir.consent_resource(view, names, granted_at=chain.block_time(fact.granted_block),
                                    revoked_at=chain.block_time(fact.revoked_block) if revoked else None)


@app.command("fhir")
def fhir_export(
    out: Annotated[Path, typer.Option("--out", help="Directory for AuditEvent.ndjson and Consent.ndjson.")],
    data_dir: DataDirOpt = Path("data"), rpc: RpcOpt = None, manifest: ManifestOpt = None,
    identity: IdentityOpt = None, node: NodeOpt = None, export: ExportOpt = None,
) -> None:  # fmt: skip
    """Exports the consortium's trail as FHIR R4 AuditEvent and every consent on chain as FHIR R4 Consent
    (bulk-data NDJSON, one file per resource type, every resource validated)."""
    with reported_errors():
        context = _Context(data_dir, rpc, manifest, identity)
        chain = read_chain(context.w3, context.manifest)
        names = {m.account: m.name for m in Consortium(context.w3, context.manifest).registry.members()}
        out.mkdir(parents=True, exist_ok=True)
        counts = {"AuditEvent": 0, "Consent": 0}
        with ExitStack() as stack:
            exports = _exports(stack, context, node, export)
            with open(out / "AuditEvent.ndjson", "w", encoding="utf-8") as handle:
                for member_export in exports:
                    for entry in member_export.entries:
                        handle.writelines(fhir.ndjson([fhir.audit_event(entry, names)]))
                        counts["AuditEvent"] += 1
        with open(out / "Consent.ndjson", "w", encoding="utf-8") as handle:
            for resource in _consent_resources(chain, names):
                handle.writelines(fhir.ndjson([resource]))
                counts["Consent"] += 1
        console.print(f"FHIR R4 export in {out}: {counts['AuditEvent']} AuditEvent, {counts['Consent']} Consent "
                      "(each validated)")  # fmt: skip
