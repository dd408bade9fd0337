"""``medledger record`` and ``medledger emergency``: a member hospital's system, signing with its identity."""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from ledger_api.cli.client import check, load_member, member_client, node_url
from ledger_api.cli.output import console, print_listing, reported_errors
from ledger_api.core import headers as header_names
from ledger_api.vocabulary import Category, Purpose

app = typer.Typer(help="Member hospitals: put, get and list records.", no_args_is_help=True)
IdentityOpt = Annotated[
    Path,
    typer.Option(
        "--identity", help="This member's identity keystore (passphrase from $MEDLEDGER_KEYSTORE_PASSPHRASE)."
    ),
]
NodeOpt = Annotated[str | None, typer.Option("--node", help="This member's node URL (default $MEDLEDGER_NODE_URL).")]


def _progress() -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=console,
        transient=True,
    )


@app.command()
def put(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The record to upload.")],
    patient: Annotated[str, typer.Option(help="The patient's account.")],
    category: Annotated[str, typer.Option(help="labs, imaging, medication, ...")],
    media_type: Annotated[str, typer.Option(help="e.g. application/pdf, application/dicom.")],
    identity: IdentityOpt,
    node: NodeOpt = None,
    kind: Annotated[str, typer.Option(help="outpatient, inpatient or other: how long it must be kept.")] = "other",
    last_encounter: Annotated[
        str | None, typer.Option(help="Date of the last encounter it documents, YYYY-MM-DD (default today).")
    ] = None,
) -> None:
    """Uploads a record (encrypted by the node, anchored on chain), with a progress bar."""
    import httpx

    from ledger_api.auth.signing import MemberAuth, sign_headers

    with reported_errors():
        if category.upper() not in Category.__members__:
            raise ValueError(f"unknown category {category!r}")
        member, url = load_member(identity), node_url(node)
        digest = hashlib.sha256()
        with open(file, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        size = file.stat().st_size
        with member_client(url, member) as client, _progress() as progress:
            task = progress.add_task(f"uploading {file.name}", total=size)

            def body() -> Iterator[bytes]:
                with open(file, "rb") as handle:
                    while chunk := handle.read(1 << 20):
                        progress.advance(task, len(chunk))
                        yield chunk

            # the query is encoded (a media type's "+" would otherwise arrive as a space) and signed as sent
            params = {"patient": patient, "category": category.lower(), "media_type": media_type, "record_kind": kind}
            if last_encounter:
                params["last_encounter"] = last_encounter
            target = httpx.URL(f"{url}/v1/records", params=params)
            auth = cast(MemberAuth, client.auth)
            headers = sign_headers(
                member.account,
                chain_id=auth.chain_id,
                audience=auth.audience,
                method="POST",
                url=str(target),
                digest=digest.hexdigest(),
            )
            headers["content-type"] = "application/octet-stream"
            # signed above for this very body (with its digest): not by the client's per-request signer
            response = check(client.post(target, content=body(), headers=headers, auth=None))  # type: ignore[arg-type]
        record = response.json()
        console.print(
            f"record [bold]{record['id']}[/bold] v{record['latest_version']} stored; "
            f"content hash {record['versions'][-1]['content_hash']} (anchoring)"
        )


@app.command()
def get(
    record_id: Annotated[str, typer.Argument(help="The record id (hex).")],
    out: Annotated[Path, typer.Option(help="Where to write the record.")],
    identity: IdentityOpt,
    custodian: Annotated[str | None, typer.Option(help="The custodian member (default: this member).")] = None,
    purpose: Annotated[str, typer.Option(help="Purpose of use.")] = "treatment",
    clinician: Annotated[str, typer.Option(help="Pseudonymous id of the acting clinician.")] = "cli",
    node: NodeOpt = None,
) -> None:
    """Fetches a record if the chain allows it now: from this node, or from its custodian through this node."""
    from ledger_api.core.releases import open_release
    from ledger_api.errors import IntegrityViolation

    with reported_errors():
        if purpose.upper() not in Purpose.__members__:
            raise ValueError(f"unknown purpose {purpose!r}")
        member, url = load_member(identity), node_url(node)
        params = {"purpose": purpose.lower(), "clinician": clinician}
        local = custodian is None or custodian.lower() == member.address.lower()
        with member_client(url, member) as client, _progress() as progress:
            path = f"/v1/records/{record_id}/content" if local else f"/v1/consortium/records/{record_id}"
            request_params = params if local else {**params, "custodian": custodian}
            with client.stream("GET", path, params=request_params) as response:
                if response.status_code >= 300:
                    response.read()
                    check(response)
                task = progress.add_task(f"fetching {record_id[:12]}…", total=None)
                body = io.BytesIO()
                for chunk in response.iter_bytes():
                    body.write(chunk)
                    progress.advance(task, len(chunk))
                headers = response.headers
        if local:  # ciphertext + key wrapped for us: decrypt here
            if headers.get(header_names.RECORD_ID) != record_id:  # the context binds the record asked for
                raise IntegrityViolation("the node answered with another record", code="peer-answer-mismatch")
            body.seek(0)
            with open(out, "wb") as sink:
                open_release(headers, member, body, sink)
        else:
            out.write_bytes(body.getvalue())
        console.print(
            f"record {record_id} v{headers[header_names.VERSION]} written to {out} "
            f"(grounds: {headers[header_names.BASIS]})"
        )


@app.command("list")
def list_records(
    patient: Annotated[str, typer.Option(help="The patient's account.")],
    identity: IdentityOpt,
    node: NodeOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Lists a patient's records held at this node (metadata only)."""
    with reported_errors():
        member = load_member(identity)
        with member_client(node_url(node), member) as client:
            rows = check(client.get(f"/v1/patients/{patient}/records")).json()
        print_listing(
            rows,
            as_json=as_json,
            title=f"Records of {patient}",
            columns=("id", "category", "media type", "versions", "anchoring", "created"),
            row=lambda r: (
                r["id"],
                Category(r["category"]).name.lower(),
                r["media_type"],
                str(r["latest_version"]),
                r["versions"][-1]["anchoring"] if r["versions"] else "-",
                r["created_at"][:19],
            ),
        )


def emergency(
    patient: Annotated[str, typer.Option(help="The patient's account.")],
    reason_code: Annotated[int, typer.Option(min=0, max=255, help="Coded reason (e.g. 1 = unconscious).")],
    justification: Annotated[str, typer.Option(help="Free-text justification (kept at this node).")],
    clinician: Annotated[str, typer.Option(help="Pseudonymous id of the acting clinician.")],
    identity: IdentityOpt,
    node: NodeOpt = None,
) -> None:
    """Declares break-glass access to a patient: on chain at once, flagged for review."""
    with reported_errors():
        member = load_member(identity)
        with member_client(node_url(node), member) as client:
            declared = check(
                client.post(
                    "/v1/emergency",
                    json={
                        "patient": patient,
                        "reason_code": reason_code,
                        "justification": justification,
                        "clinician": clinician,
                    },
                )
            ).json()
        console.print(
            f"[bold red]break-glass {declared['break_glass_id']}[/bold red] declared for {patient} "
            f"until {declared['expires_at']}; it will be reviewed"
        )


@app.command()
def handover(
    to: Annotated[str, typer.Option("--to", help="The successor: an active member's account.")],
    identity: IdentityOpt,
    node: NodeOpt = None,
    wait: Annotated[bool, typer.Option(help="Follow it to the end with a progress bar.")] = True,
) -> None:
    """Hands every record this member holds to a successor (this member is leaving the consortium)."""
    with reported_errors():
        member = load_member(identity)
        with member_client(node_url(node), member) as client:
            state = check(client.post("/v1/custody/handovers", json={"successor": to})).json()
            if wait:
                with Progress(console=console) as progress:
                    task = progress.add_task("records handed over", total=max(1, state["records_total"]))
                    while state["state"] == "running":
                        time.sleep(0.5)
                        state = check(client.get(f"/v1/custody/handovers/{state['id']}")).json()
                        progress.update(task, completed=state["records_transferred"])
        if state["state"] == "failed":
            raise ValueError(f"handover {state['id']} failed: {state['last_error']} (run it again to resume)")
        console.print(
            f"handover {state['id']} to {to}: {state['state']}; {state['records_sent']} of "
            f"{state['records_total']} records sent, {state['records_transferred']} transferred on chain"
        )


@app.command("erasure-order")
def erasure_order(
    record_id: Annotated[str, typer.Argument(help="The record id (hex).")],
    reference: Annotated[str, typer.Option(help="The order's reference, e.g. the court's case number.")],
    authority: Annotated[str, typer.Option(help="Who issued it (court, regulator).")],
    issued_on: Annotated[str, typer.Option(help="When it was issued, YYYY-MM-DD.")],
    filed_by: Annotated[str, typer.Option(help="Your staff id (pseudonymous, as in the trail).")],
    identity: IdentityOpt,
    node: NodeOpt = None,
) -> None:
    """Files a legal order to erase a record before its retention end (carried out only once a second
    records officer has countersigned it and an auditor has approved it)."""
    with reported_errors():
        member, url = load_member(identity), node_url(node)
        with member_client(url, member) as client:
            order = check(
                client.post(
                    f"/v1/records/{record_id}/erasure-orders",
                    json={"reference": reference, "authority": authority, "issued_on": issued_on, "filed_by": filed_by},
                )
            ).json()
        console.print(f"erasure order [bold]{order['id']}[/bold] filed; digest {order['digest']} (awaiting signatures)")


@app.command()
def countersign(
    order_id: Annotated[int, typer.Argument(help="The erasure order's id.")],
    officer: Annotated[str, typer.Option(help="Your staff id as a records officer (settings retention.officers).")],
    officer_key: Annotated[
        Path, typer.Option(help="Your own key file (V3 JSON; passphrase from $MEDLEDGER_OFFICER_PASSPHRASE).")
    ],
    identity: IdentityOpt,
    node: NodeOpt = None,
) -> None:
    """Countersigns a legal erasure order as a second records officer, with your own key (EIP-712)."""
    import os

    from eth_account import Account
    from medledger_crypto import sign_typed

    from ledger_api.records.legal_orders import countersign_document
    from ledger_api.records.models import ErasureOrderPublic

    with reported_errors():
        member, url = load_member(identity), node_url(node)
        account = Account.from_key(
            Account.decrypt(officer_key.read_text(), os.environ.get("MEDLEDGER_OFFICER_PASSPHRASE", ""))
        )
        with member_client(url, member) as client:
            order = ErasureOrderPublic.model_validate(check(client.get(f"/v1/erasure-orders/{order_id}")).json())
            domain = check(client.get(f"/v1/patients/{account.address}/signing-domain")).json()
            console.print(
                f"order {order.id}: erase record {order.record_id} under {order.reference} "
                f"({order.authority}, {order.issued_on}), filed by {order.filed_by}"
            )
            document = countersign_document(
                order, chain_id=int(domain["chain_id"]), contract=str(domain["verifying_contract"])
            )
            v, r, s = sign_typed(account, document)
            signed = check(
                client.post(
                    f"/v1/erasure-orders/{order_id}/countersignature",
                    json={"officer": officer, "signature": {"v": v, "r": r.hex(), "s": s.hex()}},
                )
            ).json()
        console.print(f"countersigned; order {order_id} is {signed['state']}")
