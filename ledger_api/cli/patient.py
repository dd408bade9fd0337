"""``medledger patient``: the patient's side, signing locally with the patient's own key file.

The key file is a standard Ethereum V3 keystore; its passphrase comes from
MEDLEDGER_PATIENT_PASSPHRASE. Only signatures ever leave this machine.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ledger_api.chain.days import day_number
from ledger_api.cli.client import account_of, check, load_patient, node_url, patient_client, patient_passphrase
from ledger_api.cli.output import console, print_listing, reported_errors
from ledger_api.vocabulary import Category, Purpose, bitset, from_bitset

if TYPE_CHECKING:
    import httpx
    from medledger_crypto import PatientIdentity

app = typer.Typer(help="Patients: create a key, grant and revoke consent, see who read what.", no_args_is_help=True)
KeyOpt = Annotated[
    Path,
    typer.Option(
        "--key",
        help="The patient's key file (Web3 Secret Storage / V3 JSON; passphrase from $MEDLEDGER_PATIENT_PASSPHRASE).",
    ),
]
NodeOpt = Annotated[str | None, typer.Option("--node", help="Member node URL (default $MEDLEDGER_NODE_URL).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _names(enum: type[Category] | type[Purpose], text: str) -> int:
    try:
        return bitset([enum[name.strip().upper()] for name in text.split(",") if name.strip()])
    except KeyError as exc:
        choices = ", ".join(m.name.lower() for m in enum)
        raise ValueError(f"unknown {enum.__name__.lower()} {exc.args[0].lower()!r}; choose from {choices}") from None


@contextmanager
def _signed_in(key: Path, node: str | None) -> Iterator[tuple[PatientIdentity, httpx.Client]]:
    """The patient's key opened and a session at the node, errors reported as every command reports them."""
    with reported_errors():
        patient = load_patient(key)
        with patient_client(node_url(node), patient) as client:
            yield patient, client


@app.command()
def new(key: KeyOpt, dev: Annotated[bool, typer.Option(help="Allow a weak passphrase (development).")] = False) -> None:
    """Creates a patient account and writes its encrypted key file (keep a backup!)."""
    with reported_errors():
        if key.exists():
            raise ValueError(f"{key} exists; refusing to overwrite a patient's key")
        from medledger_crypto import PatientIdentity

        patient = PatientIdentity.create()
        patient.backup(key, patient_passphrase(), dev_mode=dev)
        console.print(f"patient account [bold]{patient.address}[/bold]; key written to {key}")


@app.command()
def grant(
    key: KeyOpt,
    to: Annotated[
        list[str],
        typer.Option(
            help="A member account to name (repeat for several), or 'any' for every member active now "
            "(each is named in what you sign; a member that joins later is not covered)."
        ),
    ],
    categories: Annotated[str, typer.Option(help="Comma-separated, e.g. labs,imaging.")],
    purposes: Annotated[str, typer.Option(help="Comma-separated, e.g. treatment.")] = "treatment",
    hours: Annotated[float, typer.Option(min=0.01, help="How long the consent lasts.")] = 24.0,
    care_from: Annotated[
        str | None, typer.Option(help="Only records about care on or after this day (YYYY-MM-DD).")
    ] = None,
    care_to: Annotated[
        str | None, typer.Option(help="Only records about care on or before this day (YYYY-MM-DD).")
    ] = None,
    node: NodeOpt = None,
) -> None:
    """Shows the consortium's privacy notice, then signs a consent grant here and has the node relay it."""
    with reported_errors():
        patient, url = load_patient(key), node_url(node)
        cats, purps = _names(Category, categories), _names(Purpose, purposes)
        first, last = _day(care_from, "--care-from"), _day(care_to, "--care-to")
        with patient_client(url, patient) as client:
            grantees = _grantees(client, to)
            notice = check(client.get("/v1/privacy-notice")).json()
            console.print(notice["text"]["en"])
            domain = check(client.get(f"/v1/patients/{account_of(client)}/signing-domain")).json()
            now = int(time.time())
            terms: dict[str, Any] = {
                "grantees": tuple(grantees),
                "categories": cats,
                "purposes": purps,
                "valid_from": now - 60,
                "valid_until": now + int(hours * 3600),
                "care_from": day_number(first),
                "care_to": day_number(last),
                "notice_version": notice["version"],
                "notice_hash": bytes.fromhex(notice["sha256"]),
            }
            deadline = now + 600
            document = patient.grant_document(
                **terms,
                patient=account_of(client),
                nonce=domain["nonce"],
                deadline=deadline,
                chain_id=domain["chain_id"],
                contract=_contract(domain),
            )
            fields = {
                "patient": account_of(client),
                **terms,
                "grantees": grantees,
                "care_from": first.isoformat() if first else None,
                "care_to": last.isoformat() if last else None,
                "notice_hash": notice["sha256"],
                "nonce": domain["nonce"],
                "deadline": deadline,
            }
            state = _relay(client, "/v1/consents", patient.sign(document), fields)
        named = ", ".join(grantees)
        console.print(f"consent for {named} ({categories}; {purposes}; {hours:g} h): {state}")


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{option} {text!r}: give a day as YYYY-MM-DD") from None


def _grantees(client: httpx.Client, to: list[str]) -> list[str]:
    """The members to name: as given, or (``any``) every member active now, listed by the node."""
    if [t.lower() for t in to] != ["any"]:
        return to
    members = check(client.get("/v1/consortium/members")).json()
    return [m["account"] for m in members if m["role"] == "member" and m["status"] == "active"]


@app.command()
def revoke(key: KeyOpt, consent: Annotated[str, typer.Option(help="The consent id.")], node: NodeOpt = None) -> None:
    """Signs a revocation here; it takes effect in the block it lands in."""
    with reported_errors():
        if not consent.isdigit() or int(consent) >= 2**256:
            raise ValueError(
                f"--consent {consent!r}: a consent id is a decimal number, as `medledger patient consents` lists it"
            )
        patient, url = load_patient(key), node_url(node)
        with patient_client(url, patient) as client:
            domain = check(client.get(f"/v1/patients/{account_of(client)}/signing-domain")).json()
            deadline = int(time.time()) + 600
            document = patient.revocation_document(
                patient=account_of(client),
                consent_id=int(consent),
                nonce=domain["nonce"],
                deadline=deadline,
                chain_id=domain["chain_id"],
                contract=_contract(domain),
            )
            fields = {"consent_id": consent, "nonce": domain["nonce"], "deadline": deadline}
            state = _relay(client, "/v1/consents/revocations", patient.sign(document), fields)
        console.print(f"revocation of consent {consent}: {state}")


def _contract(domain: dict[str, Any]) -> str:
    """The consent registry a signing domain names (``GET /v1/patients/{patient}/signing-domain``)."""
    return str(domain["verifying_contract"])


def _relay(client: httpx.Client, path: str, signature: tuple[int, bytes, bytes], fields: dict[str, Any]) -> str:
    """Relays a message signed here (its ``fields`` and ``signature``) and waits until it lands; its state."""
    v, r, s = signature
    relay = check(client.post(path, json={**fields, "signature": {"v": v, "r": r.hex(), "s": s.hex()}})).json()
    return _await_relay(client, relay["id"])


def _await_relay(client: httpx.Client, relay_id: int, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = check(client.get(f"/v1/relays/{relay_id}")).json()
        if state["state"] in ("confirmed", "failed"):
            return "on chain" if state["state"] == "confirmed" else f"failed: {state['last_error']}"
        time.sleep(0.3)
    return "pending (relayed; not yet on chain)"


@app.command()
def consents(key: KeyOpt, node: NodeOpt = None, as_json: JsonOpt = False) -> None:
    """Lists the patient's consents with their status."""
    with _signed_in(key, node) as (patient, client):
        rows = check(client.get(f"/v1/patients/{account_of(client)}/consents")).json()
        print_listing(
            rows,
            as_json=as_json,
            title=f"Consents of {account_of(client)}",
            whole=("id",),
            columns=("id", "members named", "categories", "purposes", "until", "status"),
            row=lambda c: (
                c["consent_id"],
                " ".join(c["grantees"]),
                ",".join(x.name.lower() for x in from_bitset(Category, c["categories"])),
                ",".join(x.name.lower() for x in from_bitset(Purpose, c["purposes"])),
                datetime.fromtimestamp(c["valid_until"], UTC).strftime("%Y-%m-%d %H:%M"),
                c["status"],
            ),
        )


@app.command()
def history(key: KeyOpt, node: NodeOpt = None, as_json: JsonOpt = False) -> None:
    """Who read the patient's records at this node, when, why — break-glass flagged."""
    with _signed_in(key, node) as (patient, client):
        rows = check(client.get(f"/v1/patients/{account_of(client)}/access-log")).json()
        sent = [] if as_json else check(client.get(f"/v1/patients/{account_of(client)}/notifications")).json()
        print_listing(
            rows,
            as_json=as_json,
            title=f"Access history of {account_of(client)}",
            columns=("#", "when", "who", "clinician", "purpose", "grounds", "action"),
            row=lambda e: (
                str(e["sequence"]),
                e["created_at"][:19],
                e["requester"],
                e["clinician"],
                Purpose(e["purpose"]).name.lower(),
                "[bold red]BREAK-GLASS[/bold red]" if e["break_glass"] else e["basis"],
                e["action"],
            ),
        )
        if sent:
            _print_notifications(sent, as_json=False)


def _print_notifications(rows: list[dict[str, Any]], *, as_json: bool) -> None:
    print_listing(
        rows,
        as_json=as_json,
        title="Notifications",
        columns=("when", "event", "detail", "delivery", "attempts"),
        row=lambda n: (
            n["created_at"][:19],
            n["event_type"],
            _event_detail(n["payload"]),
            n["state"],
            str(n["attempts"]),
        ),
    )


def _event_detail(payload: dict[str, Any]) -> str:
    data = payload.get("data", {})
    if payload.get("type") == "access":
        flag = " [bold red]BREAK-GLASS[/bold red]" if data.get("break_glass") else ""
        return f"{data.get('requester', '')[:10]}… read for {data.get('purpose')}{flag}"
    if payload.get("type") == "review":
        return f"break-glass {data.get('break_glass_id', '')[:10]} {data.get('decision')}"
    return ", ".join(f"{k} {v}" for k, v in data.items() if k in ("consent_id", "member"))[:60]


@app.command()
def subscribe(
    key: KeyOpt,
    url: Annotated[str, typer.Option(help="Your webhook (https; http only to loopback in production).")],
    events: Annotated[str, typer.Option(help="Comma-separated: access,grant,revocation,break_glass,review.")] = (
        "access,grant,revocation,break_glass,review"
    ),
    node: NodeOpt = None,
) -> None:
    """Subscribes a webhook to events about the patient's account; prints the signing secret once."""
    wanted = [e.strip() for e in events.split(",") if e.strip()]
    with _signed_in(key, node) as (_patient, client):
        created = check(client.post("/v1/subscriptions", json={"url": url, "events": wanted})).json()
        console.print(f"subscription [bold]{created['id']}[/bold] for {', '.join(created['events'])}")
        console.print(f"signing secret (shown once; verify X-MedLedger-Signature with it): {created['secret']}")


@app.command()
def subscriptions(key: KeyOpt, node: NodeOpt = None, as_json: JsonOpt = False) -> None:
    """Lists the patient's webhook subscriptions at this node."""
    with _signed_in(key, node) as (_patient, client):
        rows = check(client.get("/v1/subscriptions")).json()
        print_listing(
            rows,
            as_json=as_json,
            title="Subscriptions",
            columns=("id", "events", "url", "active"),
            row=lambda s: (s["id"], ",".join(s["events"]), s["url"], "yes" if s["active"] else "no"),
        )


@app.command()
def unsubscribe(
    key: KeyOpt, subscription: Annotated[str, typer.Argument(help="The subscription id.")], node: NodeOpt = None
) -> None:
    """Stops a webhook subscription (pending deliveries are cancelled)."""
    with _signed_in(key, node) as (_patient, client):
        check(client.delete(f"/v1/subscriptions/{subscription}"))
        console.print(f"subscription {subscription} stopped")


@app.command()
def notifications(key: KeyOpt, node: NodeOpt = None, as_json: JsonOpt = False) -> None:
    """Every notification about the patient's account and whether it was delivered."""
    with _signed_in(key, node) as (patient, client):
        rows = check(client.get(f"/v1/patients/{account_of(client)}/notifications")).json()
        _print_notifications(rows, as_json=as_json)


@app.command()
def export(
    key: KeyOpt,
    out: Annotated[Path, typer.Option("--out", help="Where to write the archive (a .zip).")],
    node: NodeOpt = None,
    of: Annotated[
        str | None,
        typer.Option(
            "--patient",
            help="The account of a patient whose delegate you are, allowed to see their records "
            "(default: your own account).",
        ),
    ] = None,
) -> None:
    """Downloads all the patient's records, from every member, into one archive (decrypted here; the
    nodes never see the plaintext), with a manifest that ``verify-export`` checks against the chain."""
    from ledger_api.auth.patient_proof import CONSORTIUM_VIEW
    from ledger_api.cli.patient_export import export_records

    with reported_errors():
        patient = load_patient(key)
        if out.exists():
            raise ValueError(f"{out} exists; refusing to overwrite it")
        partial = out.with_name(out.name + ".part")
        try:
            with (
                patient_client(node_url(node), patient, resources=(CONSORTIUM_VIEW,)) as client,
                open(partial, "wb") as sink,
            ):
                signer = account_of(client)
                outcome = export_records(
                    client,
                    of or signer,
                    sink,
                    reader=signer,
                    progress=lambda done, total: console.print(f"record {done} of {total}"),
                )
        except BaseException:
            partial.unlink(missing_ok=True)  # half an archive is no archive: nothing is left to mistake for one
            raise
        partial.replace(out)
        missing = [m["name"] for m in outcome["members"] if m["status"] != "returned"]
        console.print(f"{outcome['records']} records written to {out}")
        if missing:
            console.print(f"[yellow]not reached: {', '.join(missing)}: their records are not in the archive[/yellow]")


@app.command("verify-export")
def verify_export(
    archive: Annotated[Path, typer.Argument(help="An archive from `export` or the portal.")],
    data_dir: Annotated[Path, typer.Option("--data-dir", help="A local consortium's data directory.")] = Path("data"),
    rpc: Annotated[str | None, typer.Option("--rpc", help="Chain RPC URL (default: the local consortium's).")] = None,
    manifest: Annotated[Path | None, typer.Option("--manifest", help="Deployment manifest (default: local).")] = None,
) -> None:
    """Checks an archive against the chain: each record's anchored hash is its ciphertext's, the ciphertext
    decrypts to its file, and the anchor's commitment opens to the patient and category. Exit 1 if not."""
    from ledger_api.chain.deployment import Consortium
    from ledger_api.cli.audit_steps import Context
    from ledger_api.records.export_archive import passed, verify_archive

    with reported_errors():
        context = Context(data_dir, rpc, manifest, None)
        checks = verify_archive(archive.read_bytes(), Consortium(context.w3, context.manifest).records)
        for c in checks:
            verdict = "[green]ok[/green]" if not c.problems else "[red]" + "; ".join(c.problems) + "[/red]"
            console.print(f"{c.record_id} v{c.version}: {verdict}")
        console.print(f"{len(checks)} records: {'all match the chain' if passed(checks) else 'MISMATCH'}")
        if not passed(checks):
            raise typer.Exit(1)
