"""Errors of the crypto package.

Caller mistakes raise ``ValueError`` (or ``TypeError``). Every integrity failure while opening
data raises the one opaque ``DecryptionError``: it never says which check failed, so it cannot
be used as an oracle. Merkle proof failures are typed and say expected vs computed values,
because those are public data an auditor needs to see.
"""

from __future__ import annotations


class DecryptionError(Exception):
    """The ciphertext, its associated data or the key is wrong; nothing more is said."""

    def __init__(self) -> None:
        super().__init__("decryption failed")


class KeyIdNotFound(LookupError):
    """No private key with this key id is held (rotated out, or wrapped for someone else)."""


class WeakPassphrase(ValueError):
    """The passphrase is empty, or too weak outside dev mode."""


class KeystoreError(Exception):
    """A keystore file is unreadable, of an unknown format, or the passphrase is wrong."""


class ProofMismatch(Exception):
    """A Merkle proof does not lead to the expected root."""

    def __init__(self, what: str, expected: bytes, computed: bytes | None) -> None:
        shown = computed.hex() if computed is not None else "nothing (malformed proof)"
        super().__init__(f"{what}: expected {expected.hex()}, computed {shown}")
        self.expected = expected
        self.computed = computed


class InclusionMismatch(ProofMismatch):
    """An inclusion proof does not lead from the leaf to the root."""


class ConsistencyMismatch(ProofMismatch):
    """A consistency proof does not connect the two tree heads."""
