"""The `medledger` CLI against a real node: patients sign locally, members put/get/list, errors in one line."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import pytest
from eth_account import Account
from medledger_crypto import DEV_SCRYPT, KeyRotation, PatientIdentity, sign_typed
from typer.testing import CliRunner

from ledger_api.chain.deployment import Consortium
from ledger_api.cli import app
from ledger_api.core import headers as header_names
from ledger_api.notifications.service import verify_signature
from ledger_api.records.export_archive import passed, verify_archive
from tests.api.conftest import World
from tests.utils.actors import views
from tests.utils.records import LAB_REPORT, upload
from tests.utils.webhooks import Receiver

runner = CliRunner()


@pytest.fixture
def cli_env(world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.setenv("MEDLEDGER_NODE_URL", world.node.url)
    monkeypatch.setenv("MEDLEDGER_KEYSTORE_PASSPHRASE", "member passphrase for tests 7")
    monkeypatch.setenv("MEDLEDGER_PATIENT_PASSPHRASE", "patient passphrase for tests 9")
    keys = {"a": tmp_path / "a.json", "b": tmp_path / "b.json", "patient": tmp_path / "patient.json"}
    world.a.save(keys["a"], "member passphrase for tests 7", params=DEV_SCRYPT)
    world.b.save(keys["b"], "member passphrase for tests 7", params=DEV_SCRYPT)
    world.node.worker.start()
    yield keys
    world.node.worker.stop()


def _ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_patient_and_member_flows_through_the_cli(world: World, cli_env: dict[str, Path], tmp_path: Path) -> None:
    out = _ok("patient", "new", "--key", str(cli_env["patient"]))
    patient = out.split("account ")[1].split(";")[0].strip()
    report = tmp_path / "report.txt"
    report.write_text("eGFR 78 mL/min/1.73m²\n" * 500)
    out = _ok(
        "record",
        "put",
        str(report),
        "--patient",
        patient,
        "--category",
        "labs",
        "--media-type",
        "text/plain",
        "--identity",
        str(cli_env["a"]),
    )
    record_id = out.split("record ")[1].split()[0]
    listed = json.loads(_ok("record", "list", "--patient", patient, "--identity", str(cli_env["a"]), "--json"))
    assert [r["id"] for r in listed] == [record_id]
    fetched = tmp_path / "fetched.txt"
    out = _ok(
        "record", "get", record_id, "--out", str(fetched), "--identity", str(cli_env["a"]), "--clinician", "dr-chen"
    )
    assert fetched.read_bytes() == report.read_bytes() and "grounds: custodian" in out

    out = _ok(
        "patient",
        "grant",
        "--key",
        str(cli_env["patient"]),
        "--to",
        world.b.address,
        "--categories",
        "labs,imaging",
        "--purposes",
        "treatment",
        "--hours",
        "2",
    )
    assert "on chain" in out
    consents = json.loads(_ok("patient", "consents", "--key", str(cli_env["patient"]), "--json"))
    assert [c["status"] for c in consents] == ["active"]
    assert "every member" not in _ok("patient", "consents", "--key", str(cli_env["patient"]))

    out = _ok(
        "emergency",
        "--patient",
        patient,
        "--reason-code",
        "1",
        "--clinician",
        "dr-chen",
        "--justification",
        "unconscious on arrival, no relatives reachable",
        "--identity",
        str(cli_env["a"]),
    )
    assert "break-glass" in out
    history = json.loads(_ok("patient", "history", "--key", str(cli_env["patient"]), "--json"))
    assert [(e["clinician"], e["basis"]) for e in history] == [("dr-chen", "custodian")]

    out = _ok("patient", "revoke", "--key", str(cli_env["patient"]), "--consent", consents[0]["consent_id"])
    assert "on chain" in out
    consents = json.loads(_ok("patient", "consents", "--key", str(cli_env["patient"]), "--json"))
    assert [c["status"] for c in consents] == ["revoked"]


def test_a_patient_subscribes_a_webhook_and_sees_the_notifications(
    world: World, cli_env: dict[str, Path], receiver: Receiver
) -> None:
    out = _ok("patient", "new", "--key", str(cli_env["patient"]))
    out = _ok("patient", "subscribe", "--key", str(cli_env["patient"]), "--url", receiver.url, "--events", "grant")
    secret = out.split("with it): ")[1].split()[0]
    subscriptions = json.loads(_ok("patient", "subscriptions", "--key", str(cli_env["patient"]), "--json"))
    assert [s["events"] for s in subscriptions] == [["grant"]]
    _ok("patient", "grant", "--key", str(cli_env["patient"]), "--to", world.b.address, "--categories", "labs")
    world.node.app.state.notifier.run_once()
    ((headers, body),) = receiver.received
    assert verify_signature(secret, headers[header_names.SIGNATURE.lower()], body)
    sent = json.loads(_ok("patient", "notifications", "--key", str(cli_env["patient"]), "--json"))
    assert [(n["event_type"], n["state"]) for n in sent] == [("grant", "delivered")]
    assert "Notifications" in _ok("patient", "history", "--key", str(cli_env["patient"]))
    _ok("patient", "unsubscribe", "--key", str(cli_env["patient"]), subscriptions[0]["id"])
    listed = json.loads(_ok("patient", "subscriptions", "--key", str(cli_env["patient"]), "--json"))
    assert [s["active"] for s in listed] == [False]


def test_a_hospital_asks_for_consent_and_follows_the_answers_from_the_cli(
    world: World, cli_env: dict[str, Path]
) -> None:
    upload(world)  # a patient of this hospital: it holds their record
    member = ("--identity", str(cli_env["a"]))
    out = _ok(
        "consent",
        "request",
        "--patient",
        world.patient.address,
        "--purpose",
        "treatment",
        "--category",
        "labs",
        "--category",
        "imaging",
        "--days",
        "30",
        "--reason",
        "Referral: recent results",
        "--staff",
        "dr-chen",
        *member,
    )
    request_id = out.split("request ")[1].split(":")[0]
    assert "requested" in out
    listed = json.loads(_ok("consent", "requests", *member, "--json"))
    assert [(r["id"], r["state"], r["categories"]) for r in listed] == [(request_id, "requested", ["labs", "imaging"])]
    assert request_id in _ok("consent", "requests", *member, "--patient", world.patient.address)
    assert "withdrawn" in _ok("consent", "withdraw", request_id, *member)
    assert [r["id"] for r in json.loads(_ok("consent", "requests", *member, "--state", "withdrawn", "--json"))] == [
        request_id
    ]
    unknown = runner.invoke(
        app,
        [
            "consent",
            "request",
            "--patient",
            "mrn:NOBODY-3",
            "--purpose",
            "treatment",
            "--category",
            "labs",
            "--days",
            "3",
            "--reason",
            "x",
            "--staff",
            "dr-chen",
            *member,
        ],
    )
    assert unknown.exit_code == 2 and "[mrn-not-found]" in unknown.output and "Traceback" not in unknown.output


def test_errors_are_one_line_with_a_code_never_a_traceback(world: World, cli_env: dict[str, Path]) -> None:
    cases = [
        ["record", "get", "ab" * 32, "--out", "/tmp/x", "--identity", str(cli_env["a"]), "--purpose", "gossip"],
        ["record", "get", "ab" * 32, "--out", "/tmp/x", "--identity", str(cli_env["a"])],
        ["patient", "consents", "--key", "/nonexistent/key.json"],
        ["record", "list", "--patient", "0x123", "--identity", str(cli_env["a"])],
    ]
    for args in cases:
        result = runner.invoke(app, args)
        assert result.exit_code in (2, 3), result.output
        assert "Traceback" not in result.output and "error" in result.output
        assert "[" in result.output and "]" in result.output  # the problem's code


# ---------------------------------------------------------------------------------------- a newcomer's first steps


def test_a_media_type_with_a_plus_is_sent_encoded(world: World, cli_env: dict[str, Path], tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.json"
    bundle.write_text('{"resourceType": "Bundle", "type": "collection"}')
    out = _ok(
        "record",
        "put",
        str(bundle),
        "--patient",
        world.patient.address,
        "--category",
        "labs",
        "--media-type",
        "application/fhir+json",
        "--identity",
        str(cli_env["a"]),
    )
    record_id = out.split("record ")[1].split()[0]
    listed = json.loads(
        _ok("record", "list", "--patient", world.patient.address, "--identity", str(cli_env["a"]), "--json")
    )
    assert [(r["id"], r["media_type"]) for r in listed] == [(record_id, "application/fhir+json")]


def test_help_and_errors_name_the_passphrase_variables(
    world: World, cli_env: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    top = runner.invoke(app, ["--help"]).output
    assert "MEDLEDGER_KEYSTORE_PASSPHRASE" in top and "MEDLEDGER_PATIENT_PASSPHRASE" in top
    assert "medledger-local-development-only" in top
    assert "MEDLEDGER_KEYSTORE_PASSPHRASE" in runner.invoke(app, ["record", "put", "--help"]).output
    monkeypatch.delenv("MEDLEDGER_KEYSTORE_PASSPHRASE")
    result = runner.invoke(app, ["record", "list", "--patient", world.patient.address, "--identity", str(cli_env["a"])])
    assert result.exit_code == 2
    assert "[passphrase-missing]" in result.output and "MEDLEDGER_KEYSTORE_PASSPHRASE" in result.output
    assert "MEDLEDGER_DEV_PASSPHRASE" in result.output


def test_an_unreachable_node_is_reported_as_such(cli_env: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDLEDGER_NODE_URL", "http://127.0.0.1:9")
    result = runner.invoke(app, ["record", "list", "--patient", "0x" + "ab" * 20, "--identity", str(cli_env["a"])])
    assert result.exit_code == 3 and "[node-unreachable]" in result.output, result.output
    assert "internal-error" not in result.output and "http://127.0.0.1:9" in result.output


def test_a_consent_id_is_checked_and_shown_whole(
    world: World, cli_env: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _ok("patient", "new", "--key", str(cli_env["patient"]))
    bad = runner.invoke(app, ["patient", "revoke", "--key", str(cli_env["patient"]), "--consent", "abc"])
    assert bad.exit_code == 2 and "--consent 'abc'" in bad.output and "int()" not in bad.output
    _ok("patient", "grant", "--key", str(cli_env["patient"]), "--to", world.b.address, "--categories", "labs")
    (consent,) = json.loads(_ok("patient", "consents", "--key", str(cli_env["patient"]), "--json"))
    assert len(consent["consent_id"]) >= 70
    for columns in ("160", "100"):
        monkeypatch.setenv("COLUMNS", columns)
        table = runner.invoke(
            app, ["patient", "consents", "--key", str(cli_env["patient"])], terminal_width=int(columns)
        )
        assert consent["consent_id"] in table.output, table.output


def test_after_a_key_rotation_the_cli_signs_for_the_account_with_the_new_key(
    world: World, cli_env: dict[str, Path], tmp_path: Path
) -> None:
    old_file, new_file = tmp_path / "old.json", tmp_path / "new.json"
    account = _ok("patient", "new", "--key", str(old_file)).split("account ")[1].split(";")[0].strip()
    new_key = _ok("patient", "new", "--key", str(new_file)).split("account ")[1].split(";")[0].strip()
    first = _ok("patient", "grant", "--key", str(old_file), "--to", world.b.address, "--categories", "labs")
    assert first.rstrip().endswith(": on chain"), first
    old = PatientIdentity.restore(old_file, "patient passphrase for tests 9")
    consents = world.chain_as(world.b.account).consents  # B relays it (A's own node sends as A meanwhile)
    deadline = int(time.time()) + 600
    rotation = KeyRotation(patient=account, new_key=new_key, nonce=consents.nonce(account), deadline=deadline)
    document = rotation.document(chain_id=world.node.node.chain_id, contract=world.manifest.address("ConsentRegistry"))
    consents.rotate_key_by_sig(account, new_key, deadline, sign_typed(old.account, document))

    listed = json.loads(_ok("patient", "consents", "--key", str(new_file), "--json"))
    assert [c["patient"] for c in listed] == [account]  # the account's consents, read with its new key
    granted = _ok("patient", "grant", "--key", str(new_file), "--to", world.c.address, "--categories", "imaging")
    assert granted.rstrip().endswith(": on chain"), granted
    assert consents.consent_count(account) == 2
    retired = runner.invoke(app, ["patient", "consents", "--key", str(old_file)])
    assert retired.exit_code != 0 and "key-retired" in retired.output


def test_a_patient_and_their_delegate_export_every_record_into_an_archive_the_chain_vouches_for(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`patient export` writes the archive; a delegate allowed to see the records exports them with
    `--patient`; anyone else gets a one-line refusal and no file."""
    monkeypatch.setenv("MEDLEDGER_NODE_URL", world.node.url)  # no worker thread: the test drains the outbox
    monkeypatch.setenv("MEDLEDGER_PATIENT_PASSPHRASE", "patient passphrase for tests 9")
    keys = {name: tmp_path / f"{name}-key.json" for name in ("patient", "guardian", "other")}
    for name, account in (("patient", world.patient), ("guardian", world.stranger), ("other", world.other_patient)):
        PatientIdentity(account).backup(keys[name], "patient passphrase for tests 9", dev_mode=True)
    record_id = upload(world).json()["id"]
    world.chain_as(world.patient).consents.set_delegate(views(world.stranger.address))
    world.node.drain()  # the chain must vouch for the record
    chain = Consortium(world.backend.w3, world.manifest)

    own, theirs = tmp_path / "mine.zip", tmp_path / "for-patient.zip"
    assert "1 records written" in _ok("patient", "export", "--key", str(keys["patient"]), "--out", str(own))
    out = _ok(
        "patient", "export", "--key", str(keys["guardian"]), "--patient", world.patient.address, "--out", str(theirs)
    )
    assert "1 records written" in out
    for archive in (own, theirs):
        checks = verify_archive(archive.read_bytes(), chain.records)
        assert passed(checks) and [c.record_id for c in checks] == [record_id]
        with zipfile.ZipFile(archive) as z:
            manifest = json.loads(z.read("manifest.json"))
            assert manifest["patient"] == world.patient.address
            assert z.read(manifest["records"][0]["file"]) == LAB_REPORT

    refused = tmp_path / "not-mine.zip"
    result = runner.invoke(
        app,
        ["patient", "export", "--key", str(keys["other"]), "--patient", world.patient.address, "--out", str(refused)],
    )
    assert result.exit_code == 2 and "[patient-scope]" in result.output and "Traceback" not in result.output
    assert not refused.exists() and not refused.with_name("not-mine.zip.part").exists()


def test_a_legal_erasure_order_is_countersigned_by_an_officer_and_signed_by_an_auditor_from_the_cli(
    world: World, cli_env: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The records officer countersigns with their own key and the auditor approves with theirs, each
    under the consortium's signing domain; the order keeps both signatures and the record is shredded."""
    record_id = upload(world).json()["id"]
    with world.node.member_client(world.a.account) as client:
        order = client.post(
            f"/v1/records/{record_id}/erasure-orders",
            json={
                "reference": "(2026) 粤0306民初77号",
                "authority": "宝安区人民法院",
                "issued_on": "2026-11-02",
                "filed_by": "clerk-wang",
            },
        ).json()
    officer_key, auditor_key, manifest = tmp_path / "officer.json", tmp_path / "auditor.json", tmp_path / "d.json"
    officer_key.write_text(json.dumps(Account.encrypt(world.officer.key, "officer pass 3", iterations=1024)))
    monkeypatch.setenv("MEDLEDGER_OFFICER_PASSPHRASE", "officer pass 3")
    world.ids.auditor.save(auditor_key, "member passphrase for tests 7", params=DEV_SCRYPT)
    world.manifest.save(manifest)

    out = _ok(
        "record",
        "countersign",
        str(order["id"]),
        "--officer",
        "officer-li",
        "--officer-key",
        str(officer_key),
        "--identity",
        str(cli_env["a"]),
    )
    assert f"order {order['id']} is pending" in out
    waiting = _ok(
        "audit",
        "erasure-orders",
        "--node",
        world.node.url,
        "--identity",
        str(auditor_key),
        "--state",
        "pending",
        "--json",
    )
    assert [(o["id"], o["countersigned_by"]) for o in json.loads(waiting)] == [(order["id"], "officer-li")]
    out = _ok(
        "audit",
        "approve-erasure",
        str(order["id"]),
        "--node",
        world.node.url,
        "--manifest",
        str(manifest),
        "--identity",
        str(auditor_key),
    )
    assert "countersigned by officer-li" in out and f"order {order['id']} is executed" in out
    with world.node.member_client(world.a.account) as client:
        kept = client.get(f"/v1/erasure-orders/{order['id']}").json()
        assert client.get(f"/v1/records/{record_id}").json()["erased"] is True
    assert kept["approved_by"] == world.ids.auditor.address and len(bytes.fromhex(kept["approval_signature"])) == 65
