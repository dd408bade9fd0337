"""RecordRegistry: append-only content-hash anchors per record version, custodian only."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from ledger_api.chain.commitments import new_salt, opens, record_subject
from ledger_api.chain.ids import mint_record_id, record_id_minted_by
from ledger_api.chain.types import MemberStatus, ProposalKind
from tests.utils.actors import Chain, random_id, reverts

ROOT = Path(__file__).resolve().parents[2]


def test_custodian_anchors_a_record_and_its_versions(chain: Chain) -> None:
    a, p = chain.actors.a, chain.actors.patient.address
    record_id, h1, h2, salt = mint_record_id(a.address), random_id(), random_id(), new_salt()
    subject = record_subject(record_id, p, 1, salt)
    receipt = chain.as_(a).records.anchor_record(record_id, subject, h1)
    assert receipt.event("RecordAnchored").args == {
        "recordId": record_id,
        "custodian": a.address,
        "version": 1,
        "subject": subject,
        "contentHash": h1,
    }
    receipt = chain.as_(a).records.anchor_version(record_id, 2, h2)
    assert receipt.event("RecordAnchored").args["version"] == 2
    assert receipt.event("RecordAnchored").args["subject"] == subject
    info = chain.read.records.record(record_id)
    assert (info.custodian, info.subject, info.latest_version) == (a.address, subject, 2)
    assert chain.read.records.content_hash(record_id, 1) == h1
    assert chain.read.records.content_hash(record_id, 2) == h2
    assert chain.read.records.exists(record_id)
    assert not chain.read.records.exists(random_id())


def test_the_subject_commitment_is_the_eip712_struct_hash_the_contract_computes(chain: Chain) -> None:
    """Integrators open an anchor with any EIP-712 library; the node's computation is the contract's."""
    record_id, p, salt = mint_record_id(chain.actors.a.address), chain.actors.patient.address, new_salt()
    for category, day in ((0, 0), (7, 20_422), (15, 0xFFFF)):
        assert chain.read.records.subject_commitment(record_id, p, category, salt, day) == record_subject(
            record_id, p, category, salt, day
        )
    subject = record_subject(record_id, p, 7, salt, 20_422)
    assert opens(subject, record_id, p, 7, salt, 20_422)
    assert not opens(subject, record_id, p, 7, salt, 20_421)  # another day of care
    assert not opens(subject, record_id, p, 6, salt, 20_422)  # another category
    assert not opens(subject, record_id, chain.actors.stranger.address, 7, salt, 20_422)  # another patient
    assert not opens(subject, record_id, p, 7, new_salt(), 20_422)  # without the record's salt
    assert not opens(subject, random_id(), p, 7, salt, 20_422)  # bound to its record id


def test_two_records_of_one_patient_are_not_linkable_from_their_anchors(chain: Chain) -> None:
    """Same patient, same category, same custodian: the anchors share nothing but the custodian."""
    a, p = chain.actors.a, chain.actors.patient.address
    anchors = []
    for _ in range(2):
        record_id = mint_record_id(a.address)
        receipt = chain.as_(a).records.anchor_record(
            record_id, record_subject(record_id, p, 4, new_salt()), random_id()
        )
        anchors.append(receipt.event("RecordAnchored").args)
    first, second = anchors
    assert first["subject"] != second["subject"]
    assert {k for k in first if first[k] == second[k]} == {"custodian", "version"}
    for args in anchors:
        assert bytes.fromhex(p[2:]) not in b"".join(
            v if isinstance(v, bytes) else str(v).encode() for v in args.values()
        )


def test_ethers_computes_the_same_subject_an_integrator_opens_anchors_with() -> None:
    """An outside client needs no MedLedger code to open an anchor: ethers' EIP-712 ``hashStruct``."""
    cases = [
        (mint_record_id("0x" + "11" * 20), "0x" + "ab" * 20, category, new_salt(), day)
        for category, day in ((0, 0), (9, 20_422), (15, 0xFFFF))
    ]
    args = [
        {"recordId": "0x" + r.hex(), "patient": p, "category": c, "encounterDay": d, "salt": "0x" + s.hex()}
        for r, p, c, s, d in cases
    ]
    run = subprocess.run(
        ["node", str(ROOT / "tests" / "js" / "record_subject.mjs"), json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == ["0x" + record_subject(*case).hex() for case in cases]


def test_nothing_is_overwritten(chain: Chain) -> None:
    a, p = chain.as_(chain.actors.a), chain.actors.patient.address
    record_id = mint_record_id(chain.actors.a.address)
    a.records.anchor_record(record_id, record_subject(record_id, p, 0, new_salt()), random_id())
    with reverts("RecordRegistryRecordExists", recordId=record_id):
        a.records.anchor_record(record_id, record_subject(record_id, p, 0, new_salt()), random_id())
    with reverts("RecordRegistryVersionMismatch", recordId=record_id, expected=2, given=1):
        a.records.anchor_version(record_id, 1, random_id())
    with reverts("RecordRegistryVersionMismatch", recordId=record_id, expected=2, given=3):
        a.records.anchor_version(record_id, 3, random_id())


def test_only_the_custodian_adds_versions(chain: Chain) -> None:
    record_id = mint_record_id(chain.actors.a.address)
    chain.as_(chain.actors.a).records.anchor_record(
        record_id, record_subject(record_id, chain.actors.patient.address, 0, new_salt()), random_id()
    )
    with reverts("RecordRegistryNotCustodian", recordId=record_id, caller=chain.actors.b.address):
        chain.as_(chain.actors.b).records.anchor_version(record_id, 2, random_id())
    with reverts("RecordRegistryNotActiveMember", account=chain.actors.auditor.address):
        chain.as_(chain.actors.auditor).records.anchor_version(record_id, 2, random_id())


def test_invalid_anchors_are_refused(chain: Chain) -> None:
    a, p, mine = chain.as_(chain.actors.a), chain.actors.patient.address, chain.actors.a.address
    with reverts("RecordRegistryRecordIdNotMinted", recordId=b"\x00" * 32, caller=mine):
        a.records.anchor_record(b"\x00" * 32, record_subject(b"\x00" * 32, p, 0, new_salt()), random_id())
    with reverts("RecordRegistryInvalidSubject"):
        a.records.anchor_record(mint_record_id(mine), bytes(24), random_id())
    with reverts("RecordRegistryInvalidContentHash"):
        a.records.anchor_record(
            mint_record_id(mine), record_subject(mint_record_id(mine), p, 0, new_salt()), b"\x00" * 32
        )
    unknown = random_id()
    with reverts("RecordRegistryUnknownRecord", recordId=unknown):
        a.records.anchor_version(unknown, 2, random_id())
    with reverts("RecordRegistryInvalidContentHash"):
        a.records.anchor_version(unknown, 2, b"\x00" * 32)
    with reverts("RecordRegistryUnknownRecord", recordId=unknown):
        chain.read.records.record(unknown)
    with reverts("RecordRegistryUnknownVersion", recordId=unknown, version=1):
        chain.read.records.content_hash(unknown, 1)


def test_outsiders_cannot_anchor(chain: Chain) -> None:
    for outsider in (chain.actors.stranger, chain.actors.auditor, chain.actors.patient):
        with reverts("RecordRegistryNotActiveMember", account=outsider.address):
            chain.as_(outsider).records.anchor_record(
                mint_record_id(outsider.address),
                record_subject(mint_record_id(outsider.address), chain.actors.patient.address, 0, new_salt()),
                random_id(),
            )


def _remove(chain: Chain, member: str) -> None:
    """Governance removes ``member`` (A proposes, B approves: 2 of 3; C executes unless it is the one removed)."""
    receipt = chain.as_(chain.actors.a).registry.propose_status_change(ProposalKind.REMOVE_MEMBER, member)
    pid = receipt.event("ProposalCreated").args["proposalId"]
    chain.as_(chain.actors.b).registry.vote(pid, True)
    chain.as_(chain.actors.b).registry.execute(pid)
    assert chain.read.registry.member(member).status == MemberStatus.REMOVED


def test_a_removed_member_hands_custody_to_a_successor_and_consents_survive(chain: Chain) -> None:
    c, b, patient = chain.actors.c, chain.actors.b, chain.actors.patient
    records = [mint_record_id(c.address), mint_record_id(c.address)]
    for record_id in records:
        chain.as_(c).records.anchor_record(
            record_id, record_subject(record_id, patient.address, 0, new_salt()), random_id()
        )
    chain.as_(c).records.anchor_version(records[0], 2, random_id())
    granted = chain.as_(patient).consents.grant(patient.address, chain.terms(b.address))
    consent_id = granted.event("ConsentGranted").args["consentId"]
    _remove(chain, c.address)

    receipt = chain.as_(c).records.transfer_custody(records, b.address)
    events = [e for e in receipt.events if e.name == "CustodyTransferred"]
    assert [e.args for e in events] == [
        {"recordId": records[0], "to": b.address, "from": c.address, "latestVersion": 2},
        {"recordId": records[1], "to": b.address, "from": c.address, "latestVersion": 1},
    ]
    assert [chain.read.records.record(r).custodian for r in records] == [b.address, b.address]
    assert chain.read.records.record(records[0]).latest_version == 2  # versions and hashes stay as anchored
    assert chain.read.consents.permitting_consent(patient.address, b.address, 0, 0) == consent_id
    chain.as_(b).records.anchor_version(records[0], 3, random_id())  # the successor continues the record
    with reverts("RecordRegistryNotActiveMember", account=c.address):
        chain.as_(c).records.anchor_version(records[1], 2, random_id())
    with reverts("RecordRegistryNotCustodian", recordId=records[0], caller=c.address):
        chain.as_(c).records.transfer_custody([records[0]], chain.actors.a.address)  # it no longer holds it


def test_custody_goes_only_from_the_custodian_to_an_active_member(chain: Chain) -> None:
    a, b, patient = chain.actors.a, chain.actors.b, chain.actors.patient.address
    record_id = mint_record_id(a.address)
    chain.as_(a).records.anchor_record(record_id, record_subject(record_id, patient, 0, new_salt()), random_id())
    with reverts("RecordRegistryNotCustodian", recordId=record_id, caller=b.address):
        chain.as_(b).records.transfer_custody([record_id], chain.actors.c.address)
    for outsider in (chain.actors.stranger, chain.actors.auditor):  # the stranger's empty seat has index 0, as A's
        with reverts("RecordRegistryNotActiveMember", account=outsider.address):
            chain.as_(outsider).records.transfer_custody([record_id], b.address)
    for successor in (chain.actors.auditor.address, chain.actors.stranger.address, a.address):
        with reverts("RecordRegistryInvalidSuccessor", successor=successor):
            chain.as_(a).records.transfer_custody([record_id], successor)
    with reverts("RecordRegistryEmptyHandover"):
        chain.as_(a).records.transfer_custody([], b.address)
    unknown = random_id()
    with reverts("RecordRegistryUnknownRecord", recordId=unknown):
        chain.as_(a).records.transfer_custody([record_id, unknown], b.address)  # all or nothing
    assert chain.read.records.record(record_id).custodian == a.address
    _remove(chain, chain.actors.c.address)
    with reverts("RecordRegistryInvalidSuccessor", successor=chain.actors.c.address):
        chain.as_(a).records.transfer_custody([record_id], chain.actors.c.address)


def test_no_member_can_anchor_a_record_id_minted_by_another(chain: Chain) -> None:
    """Squatting: B sees A's pending anchor for a fresh id and tries to anchor it first to take custody."""
    a, b, p = chain.actors.a, chain.actors.b, chain.actors.patient.address
    record_id = mint_record_id(a.address)
    assert record_id_minted_by(record_id) == a.address
    with reverts("RecordRegistryRecordIdNotMinted", recordId=record_id, caller=b.address):
        chain.as_(b).records.anchor_record(record_id, record_subject(record_id, p, 3, new_salt()), random_id())
    assert not chain.read.records.exists(record_id)
    chain.as_(a).records.anchor_record(record_id, record_subject(record_id, p, 3, new_salt()), random_id())
    assert chain.read.records.record(record_id).custodian == a.address


def test_only_the_custodian_restricts_a_record_and_the_restriction_names_no_patient(chain: Chain) -> None:
    a, b = chain.actors.a, chain.actors.b
    record_id = mint_record_id(a.address)
    chain.as_(a).records.anchor_record(
        record_id, record_subject(record_id, chain.actors.patient.address, 0, new_salt()), random_id()
    )
    with reverts("RecordRegistryNotCustodian", recordId=record_id, caller=b.address):
        chain.as_(b).records.set_restriction(record_id, True)
    receipt = chain.as_(a).records.set_restriction(record_id, True)
    assert receipt.event("RecordRestrictionChanged").args == {
        "recordId": record_id,
        "custodian": a.address,
        "restricted": True,
    }
    assert chain.read.records.is_restricted(record_id)
    with reverts("RecordRegistryRestrictionUnchanged", recordId=record_id, restricted=True):
        chain.as_(a).records.set_restriction(record_id, True)
    chain.as_(a).records.transfer_custody([record_id], b.address)  # it follows the record to its successor
    assert chain.read.records.is_restricted(record_id)
    chain.as_(b).records.set_restriction(record_id, False)
    assert not chain.read.records.is_restricted(record_id)
    with reverts("RecordRegistryUnknownRecord", recordId=b"\x00" * 32):
        chain.as_(a).records.set_restriction(b"\x00" * 32, True)


def test_only_the_custodian_hides_a_record_apart_from_its_restriction_and_naming_no_patient(chain: Chain) -> None:
    a, b = chain.actors.a, chain.actors.b
    record_id = mint_record_id(a.address)
    chain.as_(a).records.anchor_record(
        record_id, record_subject(record_id, chain.actors.patient.address, 0, new_salt(), 20_422), random_id()
    )
    with reverts("RecordRegistryNotCustodian", recordId=record_id, caller=b.address):
        chain.as_(b).records.set_hidden(record_id, True)
    receipt = chain.as_(a).records.set_hidden(record_id, True)
    assert receipt.event("RecordHiddenChanged").args == {"recordId": record_id, "custodian": a.address, "hidden": True}
    assert chain.read.records.is_hidden(record_id) and not chain.read.records.is_restricted(record_id)
    with reverts("RecordRegistryHiddenUnchanged", recordId=record_id, hidden=True):
        chain.as_(a).records.set_hidden(record_id, True)
    chain.as_(a).records.set_restriction(record_id, True)  # both flags stand side by side
    assert chain.read.records.is_hidden(record_id) and chain.read.records.is_restricted(record_id)
    chain.as_(a).records.anchor_version(record_id, 2, random_id())  # a new version keeps them
    chain.as_(a).records.transfer_custody([record_id], b.address)  # and so does the successor
    assert chain.read.records.is_hidden(record_id) and chain.read.records.record(record_id).latest_version == 2
    chain.as_(b).records.set_hidden(record_id, False)
    assert not chain.read.records.is_hidden(record_id) and chain.read.records.is_restricted(record_id)
    with reverts("RecordRegistryUnknownRecord", recordId=b"\x00" * 32):
        chain.as_(a).records.set_hidden(b"\x00" * 32, True)
