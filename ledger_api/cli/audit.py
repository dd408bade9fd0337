"""``medledger audit``: the auditor's side — verify the trail, review break-glass, export FHIR.

Defaults point at a local consortium's data directory (``make run``): its state file names the
chain and the nodes, ``chain/deployment.json`` the contracts, ``chain/keys/auditor.json`` the
auditor's key. Against a production consortium pass ``--rpc``, ``--manifest``, ``--identity``
and ``--node`` (or ``--export`` files) instead. The work happens in ``audit_steps``, imported when a
command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ledger_api.cli.output import console, print_listing, reported_errors
from ledger_api.errors import BadRequest

app = typer.Typer(help="Auditors: verify the access trail, review break-glass, export FHIR.", no_args_is_help=True)
DataDirOpt = Annotated[Path, typer.Option("--data-dir", help="A local consortium's data directory.")]
RpcOpt = Annotated[str | None, typer.Option("--rpc", help="Chain RPC URL (default: the local consortium's).")]
ManifestOpt = Annotated[Path | None, typer.Option("--manifest", help="Deployment manifest (default: local).")]
IdentityOpt = Annotated[Path | None, typer.Option("--identity", help="The auditor's identity keystore.")]


NodeOpt = Annotated[list[str] | None, typer.Option("--node", help="A member node URL (repeat; default: all).")]
ExportOpt = Annotated[list[str] | None, typer.Option("--export", help="MEMBER=LOG.jsonl[,RECORDS.jsonl]")]


@app.command("verify")
def verify_command(
    data_dir: DataDirOpt = Path("data"),
    rpc: RpcOpt = None,
    manifest: ManifestOpt = None,
    identity: IdentityOpt = None,
    node: NodeOpt = None,
    export: ExportOpt = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the JSON report here.")] = None,
    html_out: Annotated[Path | None, typer.Option("--html", help="Write the HTML report here.")] = None,
    max_anchor_delay: Annotated[int, typer.Option(help="Seconds an entry may wait for its anchor.")] = 600,
    review_deadline: Annotated[int, typer.Option(help="Seconds a break-glass may wait for review.")] = 7 * 86_400,
) -> None:
    """Verifies every member's trail against the chain; exits 1 if anything critical or high is found."""
    from ledger_api.cli import audit_steps as steps

    with reported_errors():
        context = steps.Context(data_dir, rpc, manifest, identity)
        policy = steps.AuditPolicy(max_anchor_delay_s=max_anchor_delay, review_deadline_s=review_deadline)
        chain = steps.read_chain(context.w3, context.manifest)
        with steps.ExitStack() as stack:
            exports = steps.exports(stack, context, node, export)
            report = steps.verify(chain, context.manifest.chain_id, exports, policy)
        if json_out:
            json_out.write_text(report.model_dump_json(by_alias=True, indent=2))
        if html_out:
            html_out.write_text(steps.render_html(report), encoding="utf-8")
        steps.print_report(report)
    if not report.passed:
        raise typer.Exit(1)


@app.command("break-glass")
def break_glass(
    data_dir: DataDirOpt = Path("data"),
    rpc: RpcOpt = None,
    manifest: ManifestOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every break-glass declaration with its review state (review items for auditors). The reason and
    justification are the declaring member's (``GET /v1/emergency/{id}`` there): only a commitment is on chain."""
    from datetime import UTC, datetime

    from ledger_api.chain.types import Review
    from ledger_api.cli import audit_steps as steps

    with reported_errors():
        context = steps.Context(data_dir, rpc, manifest, None)
        chain = steps.read_chain(context.w3, context.manifest)
        rows = [
            {
                "break_glass_id": str(f.break_glass_id),
                "member": f.member,
                "patient": f.patient,
                "declared_at": chain.block_time(f.declared_block),
                "expires_at": f.expires_at,
                "review": Review(f.review).label,
                "reviewer": f.reviewer,
            }
            for f in chain.break_glass.values()
        ]
        print_listing(
            rows,
            as_json=as_json,
            title="Break-glass reviews",
            columns=["id", "member", "patient", "declared", "review"],
            row=lambda r: [
                r["break_glass_id"],
                r["member"][:10],
                r["patient"][:10],
                datetime.fromtimestamp(r["declared_at"], UTC).strftime("%Y-%m-%d %H:%M"),
                r["review"],
            ],
        )


@app.command()
def review(
    break_glass_id: Annotated[str, typer.Argument(help="The break-glass id (decimal or 0x-hex).")],
    justified: Annotated[bool, typer.Option("--justified/--not-justified", help="The decision.")],
    reason: Annotated[
        str, typer.Option(help="The reason, kept by the auditor; only a salted commitment to it goes on chain.")
    ],
    data_dir: DataDirOpt = Path("data"),
    rpc: RpcOpt = None,
    manifest: ManifestOpt = None,
    identity: IdentityOpt = None,
) -> None:
    """Records the auditor's decision on a break-glass access on chain (signed with the auditor's key)."""
    from ledger_api.cli import audit_steps as steps

    with reported_errors():
        if not reason.strip():
            raise BadRequest("give the reason for the decision", field="reason")
        try:
            bg_id = int(break_glass_id, 0)
        except ValueError:
            raise BadRequest(f"not a break-glass id: {break_glass_id!r}", field="break_glass_id") from None
        context = steps.Context(data_dir, rpc, manifest, identity)
        auditor = context.auditor()
        chain = steps.Consortium(context.w3, context.manifest, steps.TransactionSender(context.w3, auditor.account))
        salt = steps.new_salt()
        reason_hash = steps.statement_commitment(salt, {"reason": reason.strip()})
        receipt = chain.consents.review_break_glass(bg_id, justified, reason_hash)
        console.print(
            f"break-glass {bg_id} reviewed: {'justified' if justified else 'not justified'} "
            f"(block {receipt.block_number}). Keep the reason with this salt, which opens its commitment "
            f"{reason_hash.hex()} on chain: {salt.hex()}"
        )


@app.command("lift-block")
def lift_block(
    patient: Annotated[str, typer.Option(help="The patient's account.")],
    member: Annotated[str, typer.Option(help="The member a not-justified review blocked for that patient.")],
    data_dir: DataDirOpt = Path("data"),
    rpc: RpcOpt = None,
    manifest: ManifestOpt = None,
    identity: IdentityOpt = None,
) -> None:
    """Lets a member declare break-glass for a patient again after a not-justified review blocked it."""
    from ledger_api.cli import audit_steps as steps

    with reported_errors():
        for name, value in (("patient", patient), ("member", member)):
            if not steps.Web3.is_address(value):
                raise BadRequest(f"{name}: not an Ethereum address: {value!r}", field=name)
        context = steps.Context(data_dir, rpc, manifest, identity)
        sender = steps.TransactionSender(context.w3, context.auditor().account)
        chain = steps.Consortium(context.w3, context.manifest, sender)
        receipt = chain.consents.lift_break_glass_block(patient, member)
        console.print(
            f"break-glass block lifted for member {member} and patient {patient} (block {receipt.block_number})"
        )


@app.command("fhir")
def fhir_export(
    out: Annotated[Path, typer.Option("--out", help="Directory for AuditEvent.ndjson and Consent.ndjson.")],
    data_dir: DataDirOpt = Path("data"),
    rpc: RpcOpt = None,
    manifest: ManifestOpt = None,
    identity: IdentityOpt = None,
    node: NodeOpt = None,
    export: ExportOpt = None,
) -> None:
    """Exports the consortium's trail as FHIR R4 AuditEvent and every consent on chain as FHIR R4 Consent
    (bulk-data NDJSON, one file per resource type, every resource validated)."""
    from ledger_api.cli import audit_steps as steps

    with reported_errors():
        context = steps.Context(data_dir, rpc, manifest, identity)
        chain = steps.read_chain(context.w3, context.manifest)
        names = {m.account: m.name for m in steps.Consortium(context.w3, context.manifest).registry.members()}
        out.mkdir(parents=True, exist_ok=True)
        counts = {"AuditEvent": 0, "Consent": 0}
        with steps.ExitStack() as stack:
            exports = steps.exports(stack, context, node, export)
            with open(out / "AuditEvent.ndjson", "w", encoding="utf-8") as handle:
                for member_export in exports:
                    for entry in member_export.entries:
                        handle.writelines(steps.fhir.ndjson([steps.fhir.audit_event(entry, names)]))
                        counts["AuditEvent"] += 1
        with open(out / "Consent.ndjson", "w", encoding="utf-8") as handle:
            for resource in steps.consent_resources(chain, names):
                handle.writelines(steps.fhir.ndjson([resource]))
                counts["Consent"] += 1
        console.print(
            f"FHIR R4 export in {out}: {counts['AuditEvent']} AuditEvent, {counts['Consent']} Consent (each validated)"
        )


@app.command("erasure-orders")
def erasure_orders(
    node_url: Annotated[str, typer.Option("--node", help="The custodian's node URL.")],
    state: Annotated[
        str | None, typer.Option("--state", help="Only orders in this state: pending or executed.")
    ] = None,
    data_dir: DataDirOpt = Path("data"),
    identity: IdentityOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """Lists a custodian's legal erasure orders, newest first (``--state pending``: those waiting for an
    auditor's approval), with who filed and countersigned each."""
    from ledger_api.cli import audit_steps as steps
    from ledger_api.cli.client import check, member_client

    with reported_errors():
        auditor = steps.local_auditor(data_dir, identity)
        with member_client(node_url.rstrip("/"), auditor) as client:
            rows = check(client.get("/v1/erasure-orders", params={"state": state} if state else {})).json()
        print_listing(
            rows,
            as_json=as_json,
            title="Legal erasure orders",
            columns=("id", "record", "order", "filed by", "countersigned by", "approved by", "state"),
            row=lambda o: (
                str(o["id"]),
                o["record_id"],
                f"{o['reference']} ({o['authority']}, {o['issued_on']})",
                o["filed_by"],
                o["countersigned_by"] or "-",
                o["approved_by"] or "-",
                o["state"],
            ),
            whole=("record",),
        )


@app.command("approve-erasure")
def approve_erasure(
    order_id: Annotated[int, typer.Argument(help="The erasure order's id at the custodian's node.")],
    node_url: Annotated[str, typer.Option("--node", help="The custodian's node URL.")],
    data_dir: DataDirOpt = Path("data"),
    manifest: ManifestOpt = None,
    identity: IdentityOpt = None,
) -> None:
    """Shows a legal erasure order and approves it as the auditor, signing it (EIP-712 ``LegalErasure``)
    with the auditor's key; the record is shredded once a second records officer at the custodian has also
    countersigned it."""
    from medledger_crypto import sign_typed

    from ledger_api.chain.deployment import DeploymentManifest
    from ledger_api.cli import audit_steps as steps
    from ledger_api.cli.client import check, member_client
    from ledger_api.records.legal_orders import countersign_document
    from ledger_api.records.models import ErasureOrderPublic

    with reported_errors():
        deployment = DeploymentManifest.load(manifest or data_dir / "chain" / "deployment.json")
        auditor = steps.local_auditor(data_dir, identity)
        with member_client(node_url.rstrip("/"), auditor) as client:
            order = ErasureOrderPublic.model_validate(check(client.get(f"/v1/erasure-orders/{order_id}")).json())
            console.print(
                f"order {order_id}: erase record {order.record_id} under {order.reference} "
                f"({order.authority}, {order.issued_on}), filed by {order.filed_by}; countersigned by "
                f"{order.countersigned_by or 'nobody yet'}"
            )
            # signed under the domain of this auditor's own deployment manifest, not one the node names
            document = countersign_document(
                order, chain_id=deployment.chain_id, contract=deployment.address("ConsentRegistry")
            )
            v, r, s = sign_typed(auditor.account, document)
            approved = check(
                client.post(
                    f"/v1/erasure-orders/{order_id}/approval", json={"signature": {"v": v, "r": r.hex(), "s": s.hex()}}
                )
            ).json()
        console.print(f"approved and signed; order {order_id} is {approved['state']}")
