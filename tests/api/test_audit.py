"""The auditor's verification: a clean trail passes; every kind of tampering is found.

Each test runs a short story on node A (uploads, a consented read by B, the custodian's own
read, a break-glass read by C), tampers with A's database, blob store or history the way a
dishonest administrator could, then verifies A's export (fetched with the auditor's signed
requests) against the chain, exactly as ``medledger audit verify`` does.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta

from eth_utils import keccak
from sqlalchemy import text

from ledger_api.access.models import AccessEntry, AccessEntryBase
from ledger_api.access.service import entry_hash, record_access
from ledger_api.audit.chain_view import read_chain
from ledger_api.audit.patient_requests import SignedRequests
from ledger_api.audit.report_schema import AuditPolicy, AuditReport, MemberExport
from ledger_api.audit.verify import verify
from ledger_api.chain.commitments import statement_commitment
from ledger_api.consents.wire import terms_under_notice
from ledger_api.core import headers as header_names
from ledger_api.core.db import session_scope
from ledger_api.outbox.service import enqueue
from ledger_api.records.blobs import blob_path
from ledger_api.records.restriction import SetRecordRestriction
from ledger_api.vocabulary import Category, Purpose
from tests.api.conftest import World
from tests.utils.record_requests import signed_record_request
from tests.utils.records import fetch, grant, upload


def _story(world: World) -> dict[str, str]:
    labs = upload(world).json()["id"]
    imaging = upload(world, category=Category.IMAGING).json()["id"]
    grant(world, world.b.address)  # labs + imaging, treatment
    assert fetch(world, world.b, labs).status_code == 200
    assert fetch(world, world.b, imaging).status_code == 200
    assert fetch(world, world.a, labs).status_code == 200  # the custodian's own read
    world.chain_as(world.c.account).consents.declare_break_glass(world.patient.address, b"\x11" * 32)
    assert fetch(world, world.c, labs).status_code == 200
    world.node.drain()
    return {"labs": labs, "imaging": imaging}


def _audit(world: World, policy: AuditPolicy | None = None, reorder: bool = False) -> AuditReport:
    with world.node.member_client(world.ids.auditor.account) as client:
        export = client.get("/v1/access-log/export")
        manifest = client.get("/v1/audit/records")
    assert export.status_code == manifest.status_code == 200
    entries = [json.loads(line) for line in export.text.splitlines()]
    if reorder:
        entries[1], entries[2] = entries[2], entries[1]
    records = [json.loads(line) for line in manifest.text.splitlines()]
    chain = read_chain(world.backend.w3, world.manifest)
    return verify(chain, world.manifest.chain_id, [MemberExport(world.a.address, entries, records)], policy)


def _codes(report: AuditReport) -> set[str]:
    return {f.code for f in report.findings if f.severity.value in ("critical", "high")}


def _sql(world: World, statement: str, **params: object) -> None:
    with world.node.node.engine.begin() as connection:
        connection.execute(text(statement), params)


def _rehash(world: World, sequence: int) -> None:
    """What a careful forger does after editing a row: recompute its stored hash."""
    with session_scope(world.node.node.engine) as session:
        entry = session.get(AccessEntry, sequence)
        assert entry is not None
        entry.entry_hash = entry_hash(entry)
        session.add(entry)


def _batched(world: World) -> None:
    world.node.node.settings.outbox.batch_size = 3
    world.node.node.settings.outbox.batch_delay_s = 0.0


def test_an_honest_trail_passes_with_every_access_covered(world: World) -> None:
    _story(world)
    report = _audit(world)
    assert report.passed, report.findings
    (summary,) = report.members
    assert (summary.entries, summary.anchored_through, summary.single_anchors) == (4, 4, 4)
    assert summary.break_glass_accesses == 1 and summary.unauthorised_accesses == 0
    assert summary.records_checked == 2
    assert [f.code for f in report.findings] == ["break-glass-declared"]  # noted, pending review
    assert sum(b.accesses for b in report.timeline) == 4 and sum(b.break_glass for b in report.timeline) == 1


def test_an_honest_trail_in_merkle_batches_passes_with_an_inclusion_proof(world: World) -> None:
    _batched(world)
    _story(world)
    report = _audit(world)
    assert report.passed, report.findings
    (summary,) = report.members
    assert summary.batch_anchors >= 1 and summary.single_anchors == 0 and summary.anchored_through == 4
    assert summary.inclusion_proof is not None and summary.inclusion_proof["verified"]


def test_a_deleted_row_is_a_gap(world: World) -> None:
    _story(world)
    _sql(world, "DELETE FROM access_log WHERE sequence = 2")
    report = _audit(world)
    assert not report.passed
    (gap,) = [f for f in report.findings if f.code == "sequence-gap"]
    assert (gap.first_sequence, gap.last_sequence, gap.severity.value) == (2, 2, "critical")


def test_an_edited_row_no_longer_hashes_to_its_hash(world: World) -> None:
    _story(world)
    _sql(world, "UPDATE access_log SET clinician = 'dr-nobody' WHERE sequence = 2")
    report = _audit(world)
    (edited,) = [f for f in report.findings if f.code == "entry-edited"]
    assert edited.first_sequence == 2 and not report.passed


def test_an_edited_and_rehashed_row_differs_from_the_chain(world: World) -> None:
    _story(world)
    _sql(world, "UPDATE access_log SET purpose = :p WHERE sequence = 1", p=int(Purpose.RESEARCH))
    _rehash(world, 1)
    report = _audit(world)
    assert "entry-edited" not in _codes(report)
    (forged,) = [f for f in report.findings if f.code == "entry-not-as-anchored"]
    assert forged.first_sequence == 1 and not report.passed


def test_reordered_rows_are_found_in_the_database_and_in_the_export(world: World) -> None:
    _story(world)
    report = _audit(world, reorder=True)
    assert "sequence-out-of-order" in _codes(report)
    _sql(world, "UPDATE access_log SET sequence = 1000 WHERE sequence = 2")
    _sql(world, "UPDATE access_log SET sequence = 2 WHERE sequence = 3")
    _sql(world, "UPDATE access_log SET sequence = 3 WHERE sequence = 1000")
    edited = [f for f in _audit(world).findings if f.code == "entry-edited"]
    assert [(f.first_sequence, f.last_sequence) for f in edited] == [(2, 3)]


def test_an_inserted_row_is_not_what_the_chain_anchored(world: World) -> None:
    _story(world)
    _sql(world, "UPDATE access_log SET sequence = sequence + 1000 WHERE sequence >= 3")
    _sql(world, "UPDATE access_log SET sequence = sequence - 999 WHERE sequence >= 1000")
    with session_scope(world.node.node.engine) as session:
        original = session.get(AccessEntry, 1)
        assert original is not None
        forged = AccessEntry(**original.model_dump(exclude={"outbox_id"}))
        forged.sequence, forged.clinician = 3, "dr-forged"
        forged.entry_hash = entry_hash(forged)
        session.add(forged)
    report = _audit(world)
    not_anchored = [f for f in report.findings if f.code == "entry-not-as-anchored"]
    assert not_anchored and not_anchored[0].first_sequence == 3 and not report.passed


def test_a_backdated_row_is_found_even_when_rehashed(world: World) -> None:
    _story(world)
    with session_scope(world.node.node.engine) as session:
        entry = session.get(AccessEntry, 2)
        assert entry is not None
        entry.created_at = entry.created_at - timedelta(days=3)
        session.add(entry)
    assert "entry-edited" in _codes(_audit(world))
    _rehash(world, 2)
    assert "entry-not-as-anchored" in _codes(_audit(world))


def test_a_changed_ciphertext_byte_is_found(world: World) -> None:
    records = _story(world)
    path = blob_path(world.node.node, records["imaging"], 1)
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01
    path.write_bytes(bytes(data))
    report = _audit(world)
    (altered,) = [f for f in report.findings if f.code == "ciphertext-altered"]
    assert altered.evidence[0]["record_id"] == records["imaging"] and not report.passed


def test_a_missing_record_version_is_found(world: World) -> None:
    records = _story(world)
    _sql(world, "DELETE FROM wrapped_keys WHERE record_id = :r", r=records["labs"])
    _sql(world, "DELETE FROM record_versions WHERE record_id = :r", r=records["labs"])
    assert "record-version-missing" in _codes(_audit(world))


def test_rewriting_an_anchored_batch_fails_the_consistency_proof(world: World) -> None:
    _batched(world)
    records = _story(world)  # batch 1..3 and 4..4 (or 1..4) anchored
    _sql(world, "UPDATE access_log SET clinician = 'dr-rewritten' WHERE sequence = 2")
    _rehash(world, 2)
    # a member that re-roots its rewritten log from the database
    world.node.worker.kinds["access_entry"]._frontier = None
    for _ in range(3):
        assert fetch(world, world.a, records["labs"]).status_code == 200
    world.node.drain()
    report = _audit(world)
    rewritten = [f for f in report.findings if f.code == "anchored-history-rewritten"]
    assert rewritten and rewritten[0].first_sequence == 1
    assert rewritten[0].evidence[0]["consistency_proof"] and not report.passed


def _read_by_b(world: World, record_id: str, *, authorization: str, category: Category) -> AccessEntryBase:
    """An entry for a read by member B on the grounds of a consent, as a node that skipped the chain check
    would write it."""
    return AccessEntryBase(
        record_id=record_id,
        record_version=1,
        category=category,
        patient=world.patient.address,
        requester=world.b.address,
        clinician="dr-x",
        purpose=int(Purpose.TREATMENT),
        basis="consent",
        authorization=authorization,
        action="read",
        chain_block=world.node.node.chain.consents.head_block(),
    )


def _log_as_if_released(world: World, fields: AccessEntryBase) -> None:
    """Logs (and anchors) an entry the way a node that skipped the chain check would have."""
    node = world.node.node
    with node.access_lock, session_scope(node.engine) as session:
        record_access(session, member=node.address, fields=fields)
    world.node.drain()


def test_an_access_released_without_consent_is_found(world: World) -> None:
    records = _story(world)
    labs_only = grant(world, world.b.address, categories=1 << Category.LABS)
    _log_as_if_released(
        world, _read_by_b(world, records["imaging"], authorization=f"{labs_only:064x}", category=Category.IMAGING)
    )
    report = _audit(world)
    (violation,) = [f for f in report.findings if f.check.value == "authorisation"]
    assert (violation.code, violation.first_sequence) == ("consent-category", 5)
    assert report.members[0].unauthorised_accesses == 1 and not report.passed


def test_a_read_after_revocation_is_found(world: World) -> None:
    records = _story(world)
    (consent_id,) = [int(e["authorization"], 16) for e in _export(world) if e["basis"] == "consent"][:1]
    world.chain_as(world.patient).consents.revoke(consent_id)
    assert fetch(world, world.b, records["labs"]).status_code == 403  # the node honours it
    _log_as_if_released(
        world, _read_by_b(world, records["labs"], authorization=f"{consent_id:064x}", category=Category.LABS)
    )
    assert "consent-revoked" in _codes(_audit(world))


def _export(world: World) -> list[dict]:
    with world.node.member_client(world.ids.auditor.account) as client:
        return [json.loads(line) for line in client.get("/v1/access-log/export").text.splitlines()]


def test_a_relabelled_record_no_longer_opens_its_anchor(world: World) -> None:
    """The chain holds a commitment, not the category: a member that relabels a record in its database (to
    make a read look covered) is caught when the auditor opens the commitment with the manifest."""
    records = _story(world)
    _sql(world, "UPDATE records SET category = :c WHERE id = :r", c=int(Category.LABS), r=records["imaging"])
    report = _audit(world)
    (relabelled,) = [f for f in report.findings if f.code == "record-subject-mismatch"]
    assert relabelled.evidence[0]["record_id"] == records["imaging"] and not report.passed
    # the reads of that record can no longer be judged: its category is unproven
    assert "record-unopened" in _codes(report)


def test_an_entry_naming_another_patient_than_the_record_is_found(world: World) -> None:
    """A read of the patient's record logged under another patient whose consent covers it."""
    records = _story(world)
    other = world.other_patient
    now = int(world.backend.w3.eth.get_block("latest")["timestamp"])
    terms = terms_under_notice(
        grantees=(world.b.address,), categories=0b11, purposes=0b1, valid_from=now - 1, valid_until=now + 3600
    )
    covering = world.chain_as(other).consents.grant(other.address, terms)
    consent_id = covering.event("ConsentGranted").args["consentId"]
    _log_as_if_released(
        world,
        _read_by_b(world, records["labs"], authorization=f"{consent_id:064x}", category=Category.LABS).model_copy(
            update={"patient": other.address}
        ),
    )
    assert "entry-other-patient" in _codes(_audit(world))


def test_an_entry_naming_another_category_than_the_record_is_found(world: World) -> None:
    records = _story(world)
    consent_id = [int(e["authorization"], 16) for e in _export(world) if e["basis"] == "consent"][0]
    _log_as_if_released(
        world, _read_by_b(world, records["imaging"], authorization=f"{consent_id:064x}", category=Category.LABS)
    )
    assert "entry-other-category" in _codes(_audit(world))


def test_break_glass_reviews_are_checked(world: World) -> None:
    _story(world)
    chain = world.chain_as(world.ids.auditor.account)
    (bg_id,) = [int(e["authorization"], 16) for e in _export(world) if e["basis"] == "break_glass"]
    late = AuditPolicy(review_deadline_s=0, now=int(world.backend.w3.eth.get_block("latest")["timestamp"]) + 60)
    assert "break-glass-review-overdue" in _codes(_audit(world, late))
    chain.consents.review_break_glass(bg_id, False, b"\x22" * 32)
    report = _audit(world, late)
    (judged,) = [f for f in report.findings if f.code == "break-glass-not-justified"]
    assert judged.evidence[0]["reviewer"] == world.ids.auditor.address and not report.passed


def test_unanchored_entries_are_pending_then_overdue(world: World) -> None:
    world.node.node.settings.outbox.batch_size = 100  # nothing reaches the chain
    world.node.node.settings.outbox.batch_delay_s = 10**6
    record_id = upload(world).json()["id"]
    world.node.drain()
    assert fetch(world, world.a, record_id).status_code == 200
    report = _audit(world)
    assert [f.code for f in report.findings] == ["anchoring-pending"] and report.passed
    later = AuditPolicy(max_anchor_delay_s=60, now=int(world.backend.w3.eth.get_block("latest")["timestamp"]) + 3600)
    overdue = _audit(world, later)
    assert [f.code for f in overdue.findings] == ["anchoring-overdue"] and overdue.passed  # medium: flagged


def test_the_node_verifies_its_own_trail_for_an_auditor_as_json_and_html(world: World) -> None:
    _story(world)
    with world.node.member_client(world.ids.auditor.account) as client:
        report = client.get("/v1/audit/report")
        page = client.get("/v1/audit/report", params={"format": "html"})
    assert report.status_code == 200 and report.json()["passed"] is True
    assert report.json()["schema"] == "medledger.audit-report/1"
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "PASSED" in page.text and "<svg" in page.text and "<script" not in page.text


def test_a_break_glass_declaration_shows_on_chain_who_and_whom_and_its_reason_only_to_the_auditor(world: World) -> None:
    """On chain: patient, member, expiry and a salted commitment; the coded reason and the justification stay
    with the member, whose declaration the auditor reads and opens against the chain."""
    body = {
        "patient": world.patient.address,
        "reason_code": 7,
        "justification": "unconscious on arrival, suspected overdose",
        "clinician": "dr-li-02",
    }
    with world.node.member_client(world.a.account) as client:
        declared = client.post("/v1/emergency", json=body)
    assert declared.status_code == 201, declared.text
    bg_id = declared.json()["break_glass_id"]
    event = world.chain_as(world.stranger).consents.contract.events.BreakGlassDeclared.get_logs(from_block=0)[-1]
    assert set(event["args"]) == {"breakGlassId", "patient", "member", "justificationHash", "expiresAt"}
    assert body["justification"].encode() not in b"".join(
        bytes(t) for log in world.backend.w3.eth.get_logs({"fromBlock": 0}) for t in (*log["topics"], log["data"])
    )
    with world.node.member_client(world.ids.auditor.account) as auditor:
        seen = auditor.get(f"/v1/emergency/{bg_id}")
    assert seen.status_code == 200 and seen.json()["reason_code"] == 7
    view = seen.json()
    opened = statement_commitment(
        bytes.fromhex(view["statement_salt"]),
        {"reason_code": view["reason_code"], "justification": view["justification"]},
    )
    assert opened == bytes(event["args"]["justificationHash"])
    assert opened != statement_commitment(bytes(32), {"reason_code": 7, "justification": body["justification"]})
    with world.node.member_client(world.b.account) as other_member:
        assert other_member.get(f"/v1/emergency/{bg_id}").status_code == 403


def test_the_patients_own_copies_and_restrictions_pass_and_a_release_despite_a_restriction_is_found(
    world: World,
) -> None:
    """A self-access (basis patient) is the patient's right and passes; once the patient restricts all their
    records on chain, a consent-based read that a node logged anyway is a finding."""
    records = _story(world)
    with world.node.patient_client(world.patient) as client:
        copy = client.get(
            f"/v1/patients/{world.patient.address}/records/{records['labs']}/content",
            headers={header_names.READER_KEY: base64.b64encode(bytes(range(1, 33))).decode()},
        )
    assert copy.status_code == 200 and copy.headers[header_names.BASIS] == "patient"
    world.node.drain()
    assert _codes(_audit(world)) == set()
    with world.node.member_client(world.ids.auditor.account) as auditor:  # and as a FHIR AuditEvent, to the patient
        events = [json.loads(line) for line in auditor.get("/v1/audit/fhir/AuditEvent").text.splitlines()]
    (own,) = [e for e in events if e["agent"][0]["who"]["identifier"]["system"] == "urn:medledger:patient-account"]
    assert own["action"] == "R" and own["agent"][0]["who"]["identifier"]["value"] == world.patient.address.lower()
    (consent_id,) = [int(e["authorization"], 16) for e in _export(world) if e["basis"] == "consent"][:1]
    world.chain_as(world.patient).consents.restrict_sharing(world.patient.address, True)
    assert fetch(world, world.b, records["labs"]).status_code == 403  # the node honours it
    _log_as_if_released(
        world, _read_by_b(world, records["labs"], authorization=f"{consent_id:064x}", category=Category.LABS)
    )
    assert _codes(_audit(world)) == {"release-while-restricted"}


def test_a_restricted_record_opens_only_for_legal_purposes_and_a_declared_break_glass_and_the_audit_agrees(
    world: World,
) -> None:
    """PIPL Art. 47 and 13(4): once the patient restricts a record, a consent no longer opens it; the custodian
    reads it for purpose legal, and any member, the custodian's own emergency department included, under a
    break-glass it declared. Each of those reads passes the audit."""
    record_id = upload(world).json()["id"]
    grant(world, world.b.address)
    assert fetch(world, world.b, record_id).status_code == 200
    with world.node.patient_client(world.patient) as client:
        assert client.delete(f"/v1/records/{record_id}").json()["action"] == "restrict"
    denied = fetch(world, world.b, record_id)
    assert denied.status_code == 403 and denied.json()["code"] == "consent-denied"
    refused = fetch(world, world.a, record_id)
    assert refused.status_code == 403 and refused.json()["code"] == "record-restricted"
    assert fetch(world, world.a, record_id, Purpose.LEGAL).headers[header_names.BASIS] == "custodian"

    world.chain_as(world.c.account).consents.declare_break_glass(world.patient.address, b"\x02" * 32)
    other = fetch(world, world.c, record_id)
    assert other.status_code == 200 and other.headers[header_names.BASIS] == "break_glass"
    with world.node.member_client(world.a.account) as client:
        declared = client.post(
            "/v1/emergency",
            json={
                "patient": world.patient.address,
                "reason_code": 1,
                "justification": "brought in unconscious; the restricted discharge letter lists her allergies",
                "clinician": "dr-er-04",
            },
        )
    assert declared.status_code == 201, declared.text
    own = fetch(world, world.a, record_id)
    assert own.status_code == 200 and own.headers[header_names.BASIS] == "break_glass"
    assert fetch(world, world.b, record_id).status_code == 403  # B declared nothing: the consent stays overridden
    world.node.drain()
    assert _codes(_audit(world)) == set()


def _signed_change(world: World, record_id: str, **change: bool) -> None:
    """The patient's own signed restriction or hiding change, applied by the custodian (and anchored)."""
    body = signed_record_request(
        world.patient,
        world.patient.address,
        record_id,
        chain_id=world.node.node.chain_id,
        contract=world.manifest.address("ConsentRegistry"),
        **change,
    )
    path = "restriction" if "restricted" in change else "hiding"
    with world.node.patient_client(world.patient) as client:
        assert client.post(f"/v1/records/{record_id}/{path}", json=body).status_code == 200
    world.node.drain()


def test_a_restriction_lifted_by_the_custodian_on_its_own_is_found_and_the_patients_own_changes_pass(
    world: World,
) -> None:
    """The custodian keeps each signed request and exports it with its records, so the auditor checks every
    restriction and hiding change against the patient's signature. A custodian that lifts a restriction on
    chain by itself is found, whether it logs nothing or a lift that no signature of the patient backs."""
    record_id = upload(world).json()["id"]
    _signed_change(world, record_id, restricted=True)
    _signed_change(world, record_id, hidden=True)
    _signed_change(world, record_id, hidden=False)
    _signed_change(world, record_id, restricted=False)
    with world.node.patient_client(world.patient) as client:  # in person: the patient's DELETE within retention
        assert client.delete(f"/v1/records/{record_id}").json()["action"] == "restrict"
    world.node.drain()
    assert _codes(_audit(world)) == set()
    with world.node.member_client(world.ids.auditor.account) as auditor:
        (first,) = [json.loads(line) for line in auditor.get("/v1/audit/records").text.splitlines()]
    assert [(r["kind"], r["value"]) for r in first["patient_requests"]] == [
        ("RecordRestriction", True),
        ("RecordHiding", True),
        ("RecordHiding", False),
        ("RecordRestriction", False),
    ]

    # the custodian lifts the restriction on chain by itself: the chain shows a lift no entry records
    with session_scope(world.node.node.engine) as session:  # its own node software, changed to do so
        enqueue(session, SetRecordRestriction(record_id=record_id, restricted=False))
    world.node.drain()
    assert not world.chain_as(world.stranger).records.is_restricted(bytes.fromhex(record_id))
    report = _audit(world)
    (unlogged,) = [f for f in report.findings if f.code == "patient-change-unlogged"]
    assert unlogged.severity == "critical" and unlogged.evidence[0]["record_id"] == record_id
    # ... and logs a lift in the patient's name, backed by no signature it can show
    lift = AccessEntryBase.patient_action(
        record_id=record_id,
        version=1,
        category=Category.LABS,
        patient=world.patient.address,
        requester=world.patient.address,
        action="unrestrict",
        proof="ab" * 32,
    )
    _log_as_if_released(world, lift)
    assert _codes(_audit(world)) == {"patient-request-unproven"}
    # ... or backed by a request the patient did sign, for another change (their hiding of the record)
    with world.node.member_client(world.ids.auditor.account) as auditor:
        (first,) = [json.loads(line) for line in auditor.get("/v1/audit/records").text.splitlines()]
    hiding = keccak(bytes.fromhex(first["patient_requests"][1]["signature"])).hex()
    _log_as_if_released(world, lift.model_copy(update={"authorization": hiding}))
    assert _codes(_audit(world)) == {"patient-request-unproven", "patient-request-forged"}


def test_a_kept_request_that_is_no_signature_is_forged_and_one_not_hex_is_none() -> None:
    """What a member exports as the patient's request is checked, never trusted to be well formed."""
    requests = SignedRequests(31337, "0x" + "11" * 20)
    record_id, signature = "cd" * 32, "00" * 65
    requests.keep(
        "0xMember",
        {
            "record_id": record_id,
            "patient_requests": [
                {"kind": "RecordRestriction", "patient": "not an account", "value": False, "signature": signature},
                {"kind": "RecordRestriction", "signature": "not hex"},
            ],
        },
    )
    lift = {"action": "unrestrict", "record_id": record_id, "patient": "0x" + "22" * 20, "requester": "0x" + "22" * 20}
    forged = requests.problem("0xMember", {**lift, "authorization": keccak(bytes.fromhex(signature)).hex()})
    unproven = requests.problem("0xMember", {**lift, "authorization": "ee" * 32})
    assert forged is not None and forged[0] == "patient-request-forged"
    assert unproven is not None and unproven[0] == "patient-request-unproven"
