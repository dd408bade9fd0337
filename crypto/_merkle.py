"""RFC 6962 Merkle trees: roots, inclusion and consistency proofs, and their verification.

Hashing is SHA-256 with domain separation: a leaf is ``SHA-256(0x00 || data)``, an interior node
``SHA-256(0x01 || left || right)``; the empty tree's root is ``SHA-256("")``. The tree over
``n`` leaves splits at the largest power of two below ``n`` (RFC 6962 §2.1), exactly as the
AccessTrail contract's batched anchors expect: a member's batch root is the root over the leaf
hashes of its entry hashes ``1..toSequence``.

Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2. ``verify_*`` raise a typed
``ProofMismatch`` naming expected and computed roots; they check only the proof. The caller
must still check that the root itself is authentic (e.g. anchored on chain by that member) and
that the leaf is the hash of the entry it holds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from medledger_crypto._errors import ConsistencyMismatch, InclusionMismatch
from medledger_crypto._secret import equal

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """The RFC 6962 hash of one leaf's data."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 6962 hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_hashes(hashes: Sequence[bytes]) -> None:
    for h in hashes:
        if not isinstance(h, bytes | bytearray) or len(h) != HASH_SIZE:
            raise ValueError(f"every hash must be {HASH_SIZE} bytes")


class RootBuilder:
    """Appends leaf hashes one at a time and gives the root of everything so far.

    Keeps one hash per set bit of the size (subtrees of strictly decreasing power-of-two size),
    so a million-entry log is rooted in O(n) time and O(log n) memory.
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []
        self.size = 0

    def append(self, leaf: bytes) -> None:
        if not isinstance(leaf, bytes | bytearray) or len(leaf) != HASH_SIZE:
            raise ValueError(f"a leaf hash must be {HASH_SIZE} bytes")
        size, current = 1, bytes(leaf)
        while self._stack and self._stack[-1][0] == size:
            left_size, left = self._stack.pop()
            current = node_hash(left, current)
            size += left_size
        self._stack.append((size, current))
        self.size += 1

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        result = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            result = node_hash(left, result)
        return result


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash over ``leaf_hashes`` (already leaf-hashed), in O(n) time, O(log n) memory."""
    builder = RootBuilder()
    for h in leaf_hashes:
        builder.append(h)
    return builder.root()


@dataclass(frozen=True)
class InclusionProof:
    """Proof that the leaf at ``log_index`` is in the tree of ``tree_size`` with ``root_hash``.

    ``hashes`` run from the leaf's sibling up to the root's child (as in sigstore/rekor).
    """

    log_index: int
    tree_size: int
    root_hash: bytes
    hashes: tuple[bytes, ...]


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> InclusionProof:
    """The audit path of leaf ``index`` in the tree over ``leaf_hashes`` (RFC 6962 §2.1.1)."""
    _check_hashes(leaf_hashes)
    n = len(leaf_hashes)
    if not 0 <= index < n:
        raise ValueError(f"leaf index {index} outside a tree of size {n}")
    return InclusionProof(index, n, root(leaf_hashes), tuple(_path(index, leaf_hashes)))


def _path(m: int, leaves: Sequence[bytes]) -> list[bytes]:
    n = len(leaves)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(m, leaves[:k]), root(leaves[k:])]
    return [*_path(m - k, leaves[k:]), root(leaves[:k])]


def consistency_proof(leaf_hashes: Sequence[bytes], first: int) -> list[bytes]:
    """Proof that the tree of size ``first`` is a prefix of the tree over ``leaf_hashes`` (§2.1.2)."""
    _check_hashes(leaf_hashes)
    second = len(leaf_hashes)
    if not 0 <= first <= second:
        raise ValueError(f"first size {first} must be between 0 and {second}")
    if first in (0, second):
        return []
    return _subproof(first, leaf_hashes, True)


def _subproof(m: int, leaves: Sequence[bytes], complete: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if complete else [root(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], complete), root(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), root(leaves[:k])]


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], expected_root: bytes) -> None:
    """Checks an inclusion proof; raises ``InclusionMismatch`` if it does not reach ``expected_root``.

    The caller must still check that ``expected_root`` is authentic (anchored on chain) and that
    ``leaf`` is the leaf hash of the entry it claims to be.
    """
    if len(leaf) != HASH_SIZE or len(expected_root) != HASH_SIZE:
        raise ValueError(f"leaf and root must be {HASH_SIZE} bytes")
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} outside a tree of size {size}")
    if any(len(p) != HASH_SIZE for p in proof):
        raise InclusionMismatch("inclusion proof", expected_root, None)
    fn, sn, r = index, size - 1, bytes(leaf)
    for p in proof:
        if sn == 0:
            raise InclusionMismatch("inclusion proof too long", expected_root, None)
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InclusionMismatch("inclusion proof too short", expected_root, r)
    if not equal(r, expected_root):
        raise InclusionMismatch(f"inclusion of leaf {index} in tree {size}", expected_root, r)


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> None:
    """Checks that tree ``first`` (``first_root``) is a prefix of tree ``second`` (``second_root``).

    Raises ``ConsistencyMismatch``. The caller must still check both roots are authentic
    (for the access trail: successive batch roots anchored on chain by the same member).
    """
    if len(first_root) != HASH_SIZE or len(second_root) != HASH_SIZE:
        raise ValueError(f"roots must be {HASH_SIZE} bytes")
    if not 0 <= first <= second:
        raise ValueError(f"sizes must satisfy 0 <= first <= second, got {first} and {second}")
    if any(len(p) != HASH_SIZE for p in proof):
        raise ConsistencyMismatch("consistency proof", second_root, None)
    if first == second:
        if proof:
            raise ConsistencyMismatch("equal sizes take an empty proof", second_root, None)
        if not equal(first_root, second_root):
            raise ConsistencyMismatch("same size, different roots", first_root, second_root)
        return
    if first == 0:
        if proof:
            raise ConsistencyMismatch("an empty first tree takes an empty proof", second_root, None)
        if not equal(first_root, EMPTY_ROOT):
            raise ConsistencyMismatch("size 0 must have the empty root", EMPTY_ROOT, first_root)
        return
    if not proof:
        raise ConsistencyMismatch("empty consistency proof", second_root, None)
    path = list(proof)
    if first & (first - 1) == 0:  # exact power of two: the first root is itself a node
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ConsistencyMismatch("consistency proof too long", second_root, None)
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ConsistencyMismatch("consistency proof too short", second_root, sr)
    if not equal(fr, first_root):
        raise ConsistencyMismatch(f"first tree ({first}) root", first_root, fr)
    if not equal(sr, second_root):
        raise ConsistencyMismatch(f"second tree ({second}) root", second_root, sr)
