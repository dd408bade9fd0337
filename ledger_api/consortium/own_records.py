"""A patient's own records at whichever member holds them, through the node they signed in at.

The patient's copy (``records.self_access``) and restriction of a record (``records.restriction``) are
answered by the record's custodian. The node the patient signed in at answers itself when it holds
the record; otherwise it asks the custodian the chain names, once: a copy with the patient's
consortium-view proof (a read, as the patient), a restriction with the patient's own signed request
(the custodian checks the signature itself, trusting no member in between). A copy passes through
as ciphertext wrapped for the patient's key, checked here against the hash anchored on chain; this
node cannot open it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from ledger_api.auth import patient_proof, policy
from ledger_api.auth.caller import Caller
from ledger_api.consortium.peers import active_peer, post_to_peer, safe_media_type, stream_from_peer
from ledger_api.core import headers as header_names
from ledger_api.errors import ContractReverted, Forbidden, IntegrityViolation, NotFound, PeerUnavailable
from ledger_api.node import Node
from ledger_api.records import restriction, self_access
from ledger_api.records.service import Release

#: what a copy's answer carries besides the body, passed on from the custodian as it is
COPY_HEADERS = (
    header_names.RECORD_ID,
    header_names.VERSION,
    header_names.CUSTODIAN,
    header_names.SEALED_BY,
    header_names.PATIENT,
    header_names.CATEGORY,
    header_names.CONTENT_HASH,
    header_names.WRAPPED_KEY,
    header_names.ACCESS_SEQUENCE,
    header_names.BASIS,
    header_names.FHIR_RESOURCE_TYPE,
    header_names.SUBJECT_SALT,
)


@dataclass
class ForwardedCopy:
    """A copy fetched from the custodian: its headers, and the ciphertext in a temporary file."""

    headers: dict[str, str]
    path: Path


def _custodian(node: Node, record_id: str) -> str:
    try:
        return node.chain.records.record(bytes.fromhex(record_id)).custodian
    except ContractReverted:
        raise NotFound(f"no record {record_id} of this patient", code="record-not-found") from None


def own_copy(
    node: Node, caller: Caller, patient: str, record_id: str, version: int | None, reader_key: str
) -> Release | ForwardedCopy:
    """The patient's copy: released here if this node holds the record, else fetched from its custodian."""
    policy.require(policy.PATIENT_OR_DELEGATE_READS_OWN_CONTENT, node, caller, patient)
    key = self_access.reader_key(reader_key)
    if self_access.holds(node, record_id) or caller.via is not None:  # a forwarded request is never forwarded on
        return self_access.release_own(node, caller, patient, record_id, version, key)
    if caller.proof is None:
        raise Forbidden(
            "this record is held by another member, and the sign-in did not allow consortium-wide viewing: "
            "sign in again allowing it, or at the hospital that holds the record",
            code="consortium-view-not-allowed",
        )
    custodian = _custodian(node, record_id)
    if custodian == node.address:
        raise NotFound(f"no record {record_id} of this patient", code="record-not-found")
    return _fetch_copy(node, caller, patient, record_id, version, reader_key, custodian)


def _fetch_copy(
    node: Node, caller: Caller, patient: str, record_id: str, version: int | None, reader_key: str, custodian: str
) -> ForwardedCopy:
    peer = active_peer(node, custodian)
    params = {"version": version} if version is not None else {}
    headers = {patient_proof.HEADER: caller.proof or "", header_names.READER_KEY: reader_key}
    target, digest, h = stream_from_peer(
        node,
        peer,
        f"/v1/patients/{patient}/records/{record_id}/content",
        params=params,
        headers=headers,
        timeout=node.settings.peers.timeout_s,
    )
    try:
        answer = {name: h[name] for name in COPY_HEADERS if name in h}
        version_sent = int(answer[header_names.VERSION])
        anchored = node.chain.records.content_hash(bytes.fromhex(record_id), version_sent).hex()
        if answer[header_names.RECORD_ID] != record_id or digest != anchored:
            raise IntegrityViolation(
                "the custodian's ciphertext does not match the hash anchored on chain", code="peer-answer-mismatch"
            )
        base64.b64decode(answer[header_names.WRAPPED_KEY], validate=True)
        answer[header_names.MEDIA_TYPE] = safe_media_type(h.get(header_names.MEDIA_TYPE, ""))
        return ForwardedCopy(headers=answer, path=target)
    except (KeyError, ValueError) as exc:
        target.unlink(missing_ok=True)
        raise PeerUnavailable(f"{peer.name} sent an unreadable answer ({type(exc).__name__})") from None
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def change_record(
    node: Node, caller: Caller, record_id: str, request: restriction.RecordRestrictionIn | restriction.RecordHidingIn
) -> restriction.RestrictionView:
    """A patient's signed change of one record (its restriction, or its hiding from every consent), applied
    here if this node holds the record, else by its custodian."""
    policy.require(policy.PATIENT_DELEGATE_OR_MEMBER_RESTRICTS, node, caller, request.patient)
    if self_access.holds(node, record_id) or (caller.kind == "member" and not caller.local):
        if isinstance(request, restriction.RecordHidingIn):
            return restriction.change_hidden(node, record_id, request)
        return restriction.change_signed(node, record_id, request)
    custodian = _custodian(node, record_id)
    if custodian == node.address:
        raise NotFound(f"no record {record_id} at this member", code="record-not-found")
    change = "hiding" if isinstance(request, restriction.RecordHidingIn) else "restriction"
    return _pass_on(node, custodian, record_id, change, request)


def _pass_on(
    node: Node,
    custodian: str,
    record_id: str,
    change: str,
    request: restriction.RecordRestrictionIn | restriction.RecordHidingIn,
) -> restriction.RestrictionView:
    """The patient's signed change, passed to the record's custodian, which checks the signature itself."""
    view = post_to_peer(node, custodian, f"/v1/records/{record_id}/{change}", request, restriction.RestrictionView)
    if view.record_id != record_id or view.custodian.lower() != custodian.lower():
        raise IntegrityViolation("the custodian answered for another record", code="peer-answer-mismatch")
    return view
