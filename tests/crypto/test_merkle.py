"""RFC 6962 Merkle trees against the Certificate Transparency reference vectors, and tampering."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from medledger_crypto import ConsistencyMismatch, InclusionMismatch, merkle

from tests.crypto.conftest import load_vectors

V = load_vectors("rfc6962_merkle.json")
LEAVES = [merkle.leaf_hash(bytes.fromhex(x)) for x in V["leaves"]]
ROOTS = [bytes.fromhex(r) for r in V["roots"]]
MANY = [merkle.leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(40)]


def test_roots_match_the_reference_for_every_size() -> None:
    for size in range(len(LEAVES) + 1):
        assert merkle.root(LEAVES[:size]) == ROOTS[size]
    assert merkle.EMPTY_ROOT == ROOTS[0]


def test_root_builder_matches_root_as_it_grows() -> None:
    builder = merkle.RootBuilder()
    for size, leaf in enumerate(MANY, start=1):
        builder.append(leaf)
        assert builder.size == size and builder.root() == merkle.root(MANY[:size])


def test_reference_inclusion_proofs() -> None:
    for case in V["inclusion"]:
        proof = merkle.inclusion_proof(LEAVES[: case["size"]], case["index"])
        assert [h.hex() for h in proof.hashes] == case["proof"]
        assert (proof.log_index, proof.tree_size, proof.root_hash) == (case["index"], case["size"], ROOTS[case["size"]])
        merkle.verify_inclusion(
            LEAVES[case["index"]],
            case["index"],
            case["size"],
            [bytes.fromhex(h) for h in case["proof"]],
            ROOTS[case["size"]],
        )


def test_reference_consistency_proofs() -> None:
    for case in V["consistency"]:
        proof = merkle.consistency_proof(LEAVES[: case["second"]], case["first"])
        assert [h.hex() for h in proof] == case["proof"]
        merkle.verify_consistency(case["first"], case["second"], ROOTS[case["first"]], ROOTS[case["second"]], proof)


def test_every_proof_verifies_for_every_size() -> None:
    for size in range(1, len(MANY) + 1):
        tree, r = MANY[:size], merkle.root(MANY[:size])
        for index in range(size):
            merkle.verify_inclusion(tree[index], index, size, merkle.inclusion_proof(tree, index).hashes, r)
        for first in range(size + 1):
            merkle.verify_consistency(first, size, merkle.root(tree[:first]), r, merkle.consistency_proof(tree, first))


def test_tampered_inclusion_proofs_fail_with_expected_and_computed() -> None:
    case = V["inclusion"][1]
    proof = [bytes.fromhex(h) for h in case["proof"]]
    root, leaf = ROOTS[8], LEAVES[5]
    flipped = [proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:]]
    with pytest.raises(InclusionMismatch) as caught:
        merkle.verify_inclusion(leaf, 5, 8, flipped, root)
    assert caught.value.expected == root and caught.value.computed not in (None, root)
    for bad in (proof[:-1], [*proof, proof[0]], [proof[1], proof[0], proof[2]], [b"\x00" * 31, *proof[1:]]):
        with pytest.raises(InclusionMismatch):
            merkle.verify_inclusion(leaf, 5, 8, bad, root)
    with pytest.raises(InclusionMismatch):
        merkle.verify_inclusion(LEAVES[4], 5, 8, proof, root)  # another leaf
    with pytest.raises(InclusionMismatch):
        merkle.verify_inclusion(leaf, 4, 8, proof, root)  # another position
    with pytest.raises(ValueError):
        merkle.verify_inclusion(leaf, 8, 8, proof, root)


def test_tampered_consistency_proofs_fail() -> None:
    case = V["consistency"][1]
    proof = [bytes.fromhex(h) for h in case["proof"]]
    first_root, second_root = ROOTS[6], ROOTS[8]
    rewritten_history = merkle.root([*LEAVES[:5], merkle.leaf_hash(b"inserted")])
    with pytest.raises(ConsistencyMismatch) as caught:
        merkle.verify_consistency(6, 8, rewritten_history, second_root, proof)
    assert caught.value.expected == rewritten_history
    for bad in (proof[:-1], [*proof, proof[0]], [proof[1], proof[0], proof[2]], []):
        with pytest.raises(ConsistencyMismatch):
            merkle.verify_consistency(6, 8, first_root, second_root, bad)
    with pytest.raises(ConsistencyMismatch):
        merkle.verify_consistency(4, 4, ROOTS[4], ROOTS[5], [])
    with pytest.raises(ConsistencyMismatch):
        merkle.verify_consistency(0, 8, ROOTS[1], ROOTS[8], [])
    merkle.verify_consistency(0, 8, merkle.EMPTY_ROOT, ROOTS[8], [])
    merkle.verify_consistency(4, 4, ROOTS[4], ROOTS[4], [])
    with pytest.raises(ValueError):
        merkle.verify_consistency(8, 6, ROOTS[8], ROOTS[6], proof)


def test_caller_mistakes_are_value_errors() -> None:
    with pytest.raises(ValueError):
        merkle.root([b"\x00" * 31])
    with pytest.raises(ValueError):
        merkle.inclusion_proof(LEAVES, 8)
    with pytest.raises(ValueError):
        merkle.consistency_proof(LEAVES[:4], 5)


@settings(max_examples=40, deadline=None)
@given(size=st.integers(min_value=1, max_value=120), data=st.data())
def test_random_trees_prove_inclusion_and_consistency(size: int, data: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    first = data.draw(st.integers(min_value=0, max_value=size))
    r = merkle.root(leaves)
    merkle.verify_inclusion(leaves[index], index, size, merkle.inclusion_proof(leaves, index).hashes, r)
    merkle.verify_consistency(first, size, merkle.root(leaves[:first]), r, merkle.consistency_proof(leaves, first))
