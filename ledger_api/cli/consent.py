"""``medledger consent``: a member hospital's system asks a patient for consent and follows the answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ledger_api.cli.client import check, load_member, member_client, node_url
from ledger_api.cli.output import console, print_listing, reported_errors

app = typer.Typer(help="Member hospitals: ask patients for consent and follow the answers.", no_args_is_help=True)
IdentityOpt = Annotated[
    Path,
    typer.Option(
        "--identity", help="This member's identity keystore (passphrase from $MEDLEDGER_KEYSTORE_PASSPHRASE)."
    ),
]
NodeOpt = Annotated[str | None, typer.Option("--node", help="This member's node URL (default $MEDLEDGER_NODE_URL).")]


@app.command()
def request(
    patient: Annotated[str, typer.Option(help="The patient: their account, or mrn:<this hospital's number>.")],
    purpose: Annotated[list[str], typer.Option(help="treatment, research, ... (repeat for several).")],
    category: Annotated[list[str], typer.Option(help="labs, imaging, ... (repeat for several).")],
    days: Annotated[int, typer.Option(help="How long access is wanted, in days.")],
    reason: Annotated[str, typer.Option(help="Why, in words the patient will read.")],
    staff: Annotated[str, typer.Option(help="The id of the staff member asking.")],
    identity: IdentityOpt,
    node: NodeOpt = None,
    care_from: Annotated[str | None, typer.Option(help="First day of the care wanted, YYYY-MM-DD.")] = None,
    care_to: Annotated[str | None, typer.Option(help="Last day of the care wanted, YYYY-MM-DD.")] = None,
    custodian: Annotated[list[str] | None, typer.Option(help="A member whose records are wanted (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Asks a patient for consent; the patient answers in the portal of any member."""
    body = {
        "patient": patient,
        "purposes": [p.lower() for p in purpose],
        "categories": [c.lower() for c in category],
        "access_days": days,
        "reason": reason,
        "raised_by": staff,
        "custodians": custodian or [],
        **({"care_from": care_from} if care_from else {}),
        **({"care_to": care_to} if care_to else {}),
    }
    with reported_errors():
        with member_client(node_url(node), load_member(identity)) as client:
            raised = check(client.post("/v1/consent-requests", json=body)).json()
    if as_json:
        typer.echo(json.dumps(raised, indent=2))
        return
    console.print(f"request {raised['id']}: {raised['state']}, the patient answers by {raised['expires_at'][:19]}")


@app.command("requests")
def list_requests(
    identity: IdentityOpt,
    node: NodeOpt = None,
    state: Annotated[str | None, typer.Option(help="requested, granted, denied, expired or withdrawn.")] = None,
    patient: Annotated[str | None, typer.Option(help="Only this patient's (account or mrn:<number>).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """This hospital's consent requests and where each stands (newest first)."""
    with reported_errors():
        with member_client(node_url(node), load_member(identity)) as client:
            if patient is not None:
                rows = check(client.get(f"/v1/patients/{patient}/consent-requests")).json()
                rows = [r for r in rows if state is None or r["state"] == state]
            else:
                rows = check(client.get("/v1/consent-requests", params={"state": state} if state else {})).json()
        print_listing(
            rows,
            as_json=as_json,
            title="Consent requests",
            columns=("id", "patient", "asked for", "state", "raised", "decided", "consent"),
            row=lambda r: (
                r["id"],
                r["patient"],
                f"{', '.join(r['categories'])} for {', '.join(r['purposes'])}, {r['access_days']} days",
                r["state"],
                r["created_at"][:19],
                (r["decided_at"] or "-")[:19],
                r["consent_id"] or "-",
            ),
            whole=("id", "patient"),
        )


@app.command()
def withdraw(
    request_id: Annotated[str, typer.Argument(help="The request's id.")], identity: IdentityOpt, node: NodeOpt = None
) -> None:
    """Takes back an open request."""
    with reported_errors():
        with member_client(node_url(node), load_member(identity)) as client:
            check(client.post(f"/v1/consent-requests/{request_id}/withdrawal"))
    console.print(f"request {request_id}: withdrawn")
