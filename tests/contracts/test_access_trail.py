"""AccessTrail: one gap-free sequence per member, single entries and Merkle batches, hashes only."""

from __future__ import annotations

from tests.utils.actors import Chain, random_id, reverts


def _entry(sequence: int) -> dict:
    return {"entry_hash": random_id(), "sequence": sequence}


def test_an_entry_is_its_member_sequence_and_hash_only(chain: Chain) -> None:
    a = chain.as_(chain.actors.a)
    entry = _entry(1)
    receipt = a.trail.record_access(**entry)
    assert receipt.event("AccessRecorded").args == {
        "member": chain.actors.a.address,
        "sequence": 1,
        "entryHash": entry["entry_hash"],
    }
    a.trail.record_access(**_entry(2))
    assert chain.read.trail.last_sequence(chain.actors.a.address) == 2
    assert chain.read.trail.last_sequence(chain.actors.b.address) == 0  # per member


def test_sequence_must_grow_by_exactly_one(chain: Chain) -> None:
    a, member = chain.as_(chain.actors.a), chain.actors.a.address
    with reverts("AccessTrailSequenceMismatch", member=member, expected=1, given=2):
        a.trail.record_access(**_entry(2))
    a.trail.record_access(**_entry(1))
    with reverts("AccessTrailSequenceMismatch", member=member, expected=2, given=1):  # a retry never anchors twice
        a.trail.record_access(**_entry(1))


def test_batches_anchor_a_root_over_a_sequence_range(chain: Chain) -> None:
    a, member = chain.as_(chain.actors.a), chain.actors.a.address
    a.trail.record_access(**_entry(1))
    root = random_id()
    receipt = a.trail.anchor_batch(root, 2, 257)
    assert receipt.event("AccessBatchAnchored").args == {
        "member": member,
        "fromSequence": 2,
        "toSequence": 257,
        "root": root,
    }
    assert chain.read.trail.last_sequence(member) == 257
    with reverts("AccessTrailSequenceMismatch", member=member, expected=258, given=2):
        a.trail.anchor_batch(root, 2, 300)
    with reverts("AccessTrailEmptyBatch", fromSequence=258, toSequence=257):
        a.trail.anchor_batch(root, 258, 257)
    a.trail.record_access(**_entry(258))  # singles and batches share the sequence


def test_invalid_entries_are_refused(chain: Chain) -> None:
    a = chain.as_(chain.actors.a)
    with reverts("AccessTrailInvalidHash"):
        a.trail.record_access(**{**_entry(1), "entry_hash": b"\x00" * 32})
    with reverts("AccessTrailInvalidHash"):
        a.trail.anchor_batch(b"\x00" * 32, 1, 4)


def test_only_active_members_write_the_trail(chain: Chain) -> None:
    for outsider in (chain.actors.auditor, chain.actors.stranger, chain.actors.patient):
        with reverts("AccessTrailNotActiveMember", account=outsider.address):
            chain.as_(outsider).trail.record_access(**_entry(1))
        with reverts("AccessTrailNotActiveMember", account=outsider.address):
            chain.as_(outsider).trail.anchor_batch(random_id(), 1, 2)
