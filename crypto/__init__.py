"""MedLedger cryptography: everything that touches a key or a hash.

Imported as ``medledger_crypto`` (the folder is ``crypto/``; see pyproject.toml for why).
The public surface is what this module exports; the ``_`` modules behind it are private.

- Record encryption: streaming AES-256-GCM segments bound to the record's context, with the
  on-chain content hash computed in the same pass (``encrypt_record`` / ``decrypt_record``).
- Key wrapping: HPKE (RFC 9180), hybrid ML-KEM-768 + X25519 by default (``wrap_data_key``).
- Erasure: ``crypto_shred`` destroys every wrapped copy of a data key; ``KeyEncryptionKey`` seals the
  stored copies under a key that lives outside the database and can really be destroyed.
- Identities: ``MemberIdentity`` (Ethereum + HPKE keys in a passphrase keystore) and
  ``PatientIdentity`` (the patient's own account and EIP-712 consent signatures).
- Verifiable logs: RFC 6962 Merkle roots and proofs (``merkle``).
"""

from medledger_crypto import _merkle as merkle
from medledger_crypto._eip712 import (
    DOMAIN_NAME,
    DOMAIN_VERSION,
    GRANT_TERMS,
    ConsentConfirmation,
    ConsentGrant,
    ConsentMessage,
    ConsentRequestRefusal,
    ConsentRevocation,
    DelegateChange,
    KeyRotation,
    MinorClaim,
    PatientNumberLink,
    RecordHiding,
    RecordRestriction,
    RecoveryApproval,
    RecoveryCancellation,
    SharingRestriction,
    TypedMessage,
    recover_typed,
    sign_typed,
    typed_data,
)
from medledger_crypto._errors import (
    ConsistencyMismatch,
    DecryptionError,
    InclusionMismatch,
    KeyIdNotFound,
    KeystoreError,
    ProofMismatch,
    WeakPassphrase,
)
from medledger_crypto._hpke import (
    DEFAULT_SUITE,
    HpkePrivateKey,
    HpkePublicKey,
    HpkeSuite,
    WrapContext,
    unwrap_data_key,
    wrap_data_key,
    wrapped_key_id,
)
from medledger_crypto._kek import KeyEncryptionKey, is_sealed
from medledger_crypto._keystore import (
    DEV_SCRYPT,
    PRODUCTION_SCRYPT,
    MemberIdentity,
    ScryptParams,
    check_passphrase,
    load_passphrase,
)
from medledger_crypto._patient import PatientIdentity, Signature
from medledger_crypto._record import EncryptedRecord, RecordContext, crypto_shred, decrypt_record, encrypt_record
from medledger_crypto._streaming import (
    DEFAULT_SEGMENT_SIZE,
    DataKey,
    StreamResult,
    ciphertext_size,
    decrypt_stream,
    encrypt_stream,
)

__all__ = [
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "ConsentConfirmation",
    "ConsentGrant",
    "GRANT_TERMS",
    "ConsentMessage",
    "ConsentRequestRefusal",
    "ConsentRevocation",
    "DelegateChange",
    "KeyRotation",
    "MinorClaim",
    "RecoveryApproval",
    "RecoveryCancellation",
    "PatientNumberLink",
    "RecordHiding",
    "RecordRestriction",
    "SharingRestriction",
    "TypedMessage",
    "DEFAULT_SEGMENT_SIZE",
    "DEFAULT_SUITE",
    "DEV_SCRYPT",
    "PRODUCTION_SCRYPT",
    "ConsistencyMismatch",
    "DataKey",
    "DecryptionError",
    "EncryptedRecord",
    "HpkePrivateKey",
    "HpkePublicKey",
    "HpkeSuite",
    "InclusionMismatch",
    "KeyEncryptionKey",
    "KeyIdNotFound",
    "KeystoreError",
    "MemberIdentity",
    "PatientIdentity",
    "ProofMismatch",
    "RecordContext",
    "ScryptParams",
    "Signature",
    "StreamResult",
    "WeakPassphrase",
    "WrapContext",
    "check_passphrase",
    "ciphertext_size",
    "crypto_shred",
    "decrypt_record",
    "decrypt_stream",
    "encrypt_record",
    "encrypt_stream",
    "is_sealed",
    "load_passphrase",
    "merkle",
    "recover_typed",
    "sign_typed",
    "typed_data",
    "unwrap_data_key",
    "wrap_data_key",
    "wrapped_key_id",
]
