"""The patient's own copy of a record (PIPL Art. 44-45: the right to consult and copy one's records).

Design: the custodian never sends plaintext. It unwraps the record's data key with its own key and
wraps it again for a key the patient's side holds: the portal makes an X25519 key pair in the browser
(WebCrypto, the private half not extractable) for the page's life, the CLI a hybrid ML-KEM-768 +
X25519 one; the ciphertext and that wrapped key travel through whichever member node the patient
signed in at, and the record decrypts in the browser (or the CLI). So no node sees plaintext it does
not hold already, and the node in between cannot open what it passes on. Every copy is an access-trail
entry of its own action (``self_access``), anchored like any other and shown in the patient's history.
"""

from __future__ import annotations

import base64
import binascii

from medledger_crypto import HpkePublicKey

from ledger_api.access.models import AccessEntryBase
from ledger_api.access.writer import access_log
from ledger_api.auth import policy
from ledger_api.auth.caller import Caller
from ledger_api.auth.delegation import unseen_categories
from ledger_api.core.db import transaction
from ledger_api.errors import BadRequest, NotFound
from ledger_api.node import Node
from ledger_api.records.blobs import blob_path, verify_blob
from ledger_api.records.service import RELEASABLE, Release, check_custody, rewrap


def reader_key(encoded: str) -> HpkePublicKey:
    """The patient's reader key from its header: base64 of an X25519 (32 bytes) or hybrid (1216) HPKE key."""
    try:
        return HpkePublicKey.from_bytes(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):
        raise BadRequest(
            "X-MedLedger-Reader-Key: base64 of a 32-byte X25519 or 1216-byte ML-KEM-768+X25519 public key",
            field="x-medledger-reader-key",
            code="header-malformed",
        ) from None


def holds(node: Node, record_id: str) -> bool:
    """Whether this node keeps the record (else its custodian elsewhere answers for it)."""
    with transaction(node.engine) as connection:
        stored = connection.execute(
            RELEASABLE, {"record_id": record_id, "version": None, "recipient": node.address}
        ).first()
    return stored is not None and stored.custody != "transferred"


def release_own(
    node: Node, caller: Caller, patient: str, record_id: str, version: int | None, key: HpkePublicKey
) -> Release:
    """The record's ciphertext and its data key wrapped for ``key``, for its patient or their delegate."""
    policy.require(policy.PATIENT_OR_DELEGATE_READS_OWN_CONTENT, node, caller, patient)
    with transaction(node.engine) as connection:
        stored = connection.execute(
            RELEASABLE, {"record_id": record_id, "version": version, "recipient": node.address}
        ).first()
    # another patient's record, or one of a category kept from a delegate, answers as a missing one: its
    # existence is not the caller's to learn
    if (
        stored is None
        or stored.erased_at is not None
        or stored.patient.lower() != patient.lower()
        or (unseen_categories(node, patient, caller.address) >> stored.category) & 1
    ):
        raise NotFound(f"no record {record_id} of this patient at this member", code="record-not-found")
    number = version or stored.latest_version
    check_custody(node, stored)
    if stored.version is None or stored.wrapped is None:
        raise NotFound(f"record {record_id} has no version {number}", code="version-not-found")
    path = blob_path(node, record_id, number)
    content = verify_blob(path, stored.content_hash)
    wrapped = rewrap(node, record_id, number, stored.wrapped, key, caller.address)
    fields = AccessEntryBase.patient_action(
        record_id=record_id,
        version=number,
        category=stored.category,
        patient=stored.patient,
        requester=caller.address,
        action="self_access",
        chain_block=node.chain.consents.head_block(),  # the caller's right was read just now
    )
    sequence = access_log(node).write(fields)
    return Release(stored=stored, wrapped_key=wrapped, sequence=sequence, basis="patient", path=path, content=content)
