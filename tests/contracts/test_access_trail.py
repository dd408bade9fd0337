"""AccessTrail: one gap-free sequence per member, single entries and Merkle batches."""

from __future__ import annotations

from ledger_api.chain.types import Basis
from tests.utils.actors import Chain, random_id, reverts


def _entry(chain: Chain, sequence: int, basis: Basis = Basis.CONSENT) -> dict:
    return {
        "entry_hash": random_id(),
        "sequence": sequence,
        "requester": chain.actors.b.address,
        "patient": chain.actors.patient.address,
        "record_id": random_id(),
        "purpose": 0,
        "basis": basis,
        "authorization": (7).to_bytes(32, "big"),
    }


def test_entries_carry_their_fields_and_advance_the_sequence(chain: Chain) -> None:
    a = chain.as_(chain.actors.a)
    entry = _entry(chain, 1)
    receipt = a.trail.record_access(**entry)
    assert receipt.event("AccessRecorded").args == {
        "member": chain.actors.a.address,
        "patient": entry["patient"],
        "sequence": 1,
        "entryHash": entry["entry_hash"],
        "requester": entry["requester"],
        "recordId": entry["record_id"],
        "purpose": 0,
        "basis": int(Basis.CONSENT),
        "authorization": entry["authorization"],
    }
    a.trail.record_access(**_entry(chain, 2, Basis.BREAK_GLASS))
    assert chain.read.trail.last_sequence(chain.actors.a.address) == 2
    assert chain.read.trail.last_sequence(chain.actors.b.address) == 0  # per member


def test_sequence_must_grow_by_exactly_one(chain: Chain) -> None:
    a, member = chain.as_(chain.actors.a), chain.actors.a.address
    with reverts("AccessTrailSequenceMismatch", member=member, expected=1, given=2):
        a.trail.record_access(**_entry(chain, 2))
    a.trail.record_access(**_entry(chain, 1))
    with reverts("AccessTrailSequenceMismatch", member=member, expected=2, given=1):  # a retry never anchors twice
        a.trail.record_access(**_entry(chain, 1))


def test_batches_anchor_a_root_over_a_sequence_range(chain: Chain) -> None:
    a, member = chain.as_(chain.actors.a), chain.actors.a.address
    a.trail.record_access(**_entry(chain, 1))
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
    a.trail.record_access(**_entry(chain, 258))  # singles and batches share the sequence


def test_invalid_entries_are_refused(chain: Chain) -> None:
    a = chain.as_(chain.actors.a)
    with reverts("AccessTrailInvalidHash"):
        a.trail.record_access(**{**_entry(chain, 1), "entry_hash": b"\x00" * 32})
    with reverts("AccessTrailInvalidBasis", basis=0):
        a.trail.record_access(**_entry(chain, 1, Basis.NONE))
    with reverts("AccessTrailInvalidHash"):
        a.trail.anchor_batch(b"\x00" * 32, 1, 4)


def test_only_active_members_write_the_trail(chain: Chain) -> None:
    for outsider in (chain.actors.auditor, chain.actors.stranger, chain.actors.patient):
        with reverts("AccessTrailNotActiveMember", account=outsider.address):
            chain.as_(outsider).trail.record_access(**_entry(chain, 1))
        with reverts("AccessTrailNotActiveMember", account=outsider.address):
            chain.as_(outsider).trail.anchor_batch(random_id(), 1, 2)
