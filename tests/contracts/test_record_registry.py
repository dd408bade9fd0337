"""RecordRegistry: append-only content-hash anchors per record version, custodian only."""

from __future__ import annotations

from tests.utils.actors import Chain, random_id, reverts


def test_custodian_anchors_a_record_and_its_versions(chain: Chain) -> None:
    a, p = chain.actors.a, chain.actors.patient.address
    record_id, h1, h2 = random_id(), random_id(), random_id()
    receipt = chain.as_(a).records.anchor_record(record_id, p, 1, h1)
    assert receipt.event("RecordAnchored").args == {"recordId": record_id, "patient": p, "custodian": a.address,
                                                     "version": 1, "category": 1, "contentHash": h1}  # fmt: skip
    receipt = chain.as_(a).records.anchor_version(record_id, 2, h2)
    assert receipt.event("RecordAnchored").args["version"] == 2
    assert receipt.event("RecordAnchored").args["patient"] == p
    info = chain.read.records.record(record_id)
    assert (info.patient, info.custodian, info.category, info.latest_version) == (p, a.address, 1, 2)
    assert chain.read.records.content_hash(record_id, 1) == h1
    assert chain.read.records.content_hash(record_id, 2) == h2
    assert chain.read.records.exists(record_id)
    assert not chain.read.records.exists(random_id())


def test_nothing_is_overwritten(chain: Chain) -> None:
    a, p = chain.as_(chain.actors.a), chain.actors.patient.address
    record_id = random_id()
    a.records.anchor_record(record_id, p, 0, random_id())
    with reverts("RecordRegistryRecordExists", recordId=record_id):
        a.records.anchor_record(record_id, p, 0, random_id())
    with reverts("RecordRegistryVersionMismatch", recordId=record_id, expected=2, given=1):
        a.records.anchor_version(record_id, 1, random_id())
    with reverts("RecordRegistryVersionMismatch", recordId=record_id, expected=2, given=3):
        a.records.anchor_version(record_id, 3, random_id())


def test_only_the_custodian_adds_versions(chain: Chain) -> None:
    record_id = random_id()
    chain.as_(chain.actors.a).records.anchor_record(record_id, chain.actors.patient.address, 0, random_id())
    with reverts("RecordRegistryNotCustodian", recordId=record_id, caller=chain.actors.b.address):
        chain.as_(chain.actors.b).records.anchor_version(record_id, 2, random_id())
    with reverts("RecordRegistryNotActiveMember", account=chain.actors.auditor.address):
        chain.as_(chain.actors.auditor).records.anchor_version(record_id, 2, random_id())


def test_invalid_anchors_are_refused(chain: Chain) -> None:
    a, p = chain.as_(chain.actors.a), chain.actors.patient.address
    with reverts("RecordRegistryInvalidRecordId"):
        a.records.anchor_record(b"\x00" * 32, p, 0, random_id())
    with reverts("RecordRegistryInvalidPatient"):
        a.records.anchor_record(random_id(), "0x" + "00" * 20, 0, random_id())
    with reverts("RecordRegistryInvalidCategory", category=16):
        a.records.anchor_record(random_id(), p, 16, random_id())
    with reverts("RecordRegistryInvalidContentHash"):
        a.records.anchor_record(random_id(), p, 0, b"\x00" * 32)
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
            chain.as_(outsider).records.anchor_record(random_id(), chain.actors.patient.address, 0, random_id())
