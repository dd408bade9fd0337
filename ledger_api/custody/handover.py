"""The leaving custodian's side of a handover: push every record to the successor, then move custody on chain.

For each batch of records this node holds: every version is pushed to the successor's node
(ciphertext as stored, data key re-wrapped for the successor's registered HPKE key); once the
successor has accepted all of a batch, one transaction goes into the outbox together with an
access-log entry per record (action ``handover``: the trail shows the key left this member), in
one database transaction. When the chain confirms the transfer, this node crypto-shreds its own
wrapped keys and deletes the ciphertexts: the successor is now the only holder. Every step is
idempotent, so a handover interrupted by a crash is resumed by starting it again.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import httpx
import structlog
from medledger_crypto import HpkePublicKey, WrapContext, unwrap_data_key, wrap_data_key
from sqlmodel import col, func, select

from ledger_api.access.models import AccessEntryBase
from ledger_api.access.service import record_access
from ledger_api.auth import policy
from ledger_api.auth.caller import Caller
from ledger_api.auth.signing import sign_headers
from ledger_api.chain.calldata import checksum_address
from ledger_api.chain.types import Member
from ledger_api.consortium.peers import active_peer, peer_client, raise_for_peer
from ledger_api.core import headers as header_names
from ledger_api.core.db import session_scope
from ledger_api.custody.transfer import CustodyTransfer, finalise
from ledger_api.errors import Conflict, InvalidValue, LedgerError, NotFound, PeerUnavailable
from ledger_api.node import Node
from ledger_api.outbox.kinds import OutboxState
from ledger_api.outbox.models import OutboxItem
from ledger_api.outbox.service import enqueue
from ledger_api.records.blobs import blob_path
from ledger_api.records.models import (
    Custody,
    CustodyHandover,
    CustodyHandoverPublic,
    HandoverState,
    Record,
    RecordVersion,
    WrappedKey,
)
from ledger_api.records.service import settle_incoming
from ledger_api.vocabulary import Purpose

log = structlog.get_logger("medledger.custody")

#: records per on-chain transfer (about 8,700 gas each: well inside a block)
BATCH = 100
_THREAD = "custody-handover"


def start(node: Node, caller: Caller, successor: str) -> CustodyHandoverPublic:
    """Starts (or resumes) handing every record this node holds to ``successor``, in the background."""
    policy.require(policy.OWN_SYSTEM, node, caller)
    successor = checksum_address(successor)
    if successor == node.address:
        raise InvalidValue("successor: a member cannot hand records to itself", field="successor", code="self-handover")
    active_peer(node, successor)  # an active member with a node, as the chain says (404 otherwise)
    finalise(node)  # transfers confirmed just before a crash, whose last step did not run
    settle_incoming(node)  # records handed to us earlier are ours to hand on once the chain says so
    with node.peer_lock:
        if any(t.name == _THREAD and t.is_alive() for t in threading.enumerate()):
            raise Conflict("a handover is already running on this node", code="handover-running")
        with session_scope(node.engine) as session:
            for stale in session.exec(select(CustodyHandover).where(CustodyHandover.state == HandoverState.RUNNING)):
                stale.state, stale.last_error = HandoverState.FAILED, "interrupted; resumed by a new handover"
                session.add(stale)
            total = session.exec(
                select(func.count())
                .select_from(Record)
                .where(col(Record.custody).in_([Custody.HELD, Custody.HANDING]), col(Record.erased_at).is_(None))
            ).one()
            handover = CustodyHandover(successor=successor, records_total=int(total), created_at=datetime.now(UTC))
            session.add(handover)
            session.flush()
            public = CustodyHandoverPublic.model_validate(handover, from_attributes=True)
        threading.Thread(target=_run, args=(node, public.id), name=_THREAD, daemon=True).start()
    return public


def status(node: Node, caller: Caller, handover_id: int) -> CustodyHandoverPublic:
    policy.require(policy.OWN_SYSTEM, node, caller)
    with session_scope(node.engine) as session:
        handover = session.get(CustodyHandover, handover_id)
        if handover is None:
            raise NotFound(f"no handover {handover_id}", code="handover-not-found")
        return CustodyHandoverPublic.model_validate(handover, from_attributes=True)


def _run(node: Node, handover_id: int) -> None:
    try:
        _hand_over(node, handover_id)
    except (LedgerError, httpx.HTTPError) as exc:
        detail = exc.detail if isinstance(exc, LedgerError) else type(exc).__name__
        log.warning("handover_failed", handover=handover_id, reason=detail)
        _set(node, handover_id, state=HandoverState.FAILED, last_error=detail[:500], finished_at=datetime.now(UTC))
    except Exception:
        log.exception("handover_error", handover=handover_id)
        _set(node, handover_id, state=HandoverState.FAILED, last_error="internal error", finished_at=datetime.now(UTC))


def _set(node: Node, handover_id: int, **changes: object) -> None:
    with session_scope(node.engine) as session:
        handover = session.get(CustodyHandover, handover_id)
        if handover is not None:
            for key, value in changes.items():
                setattr(handover, key, value)
            session.add(handover)


def _hand_over(node: Node, handover_id: int) -> None:
    with session_scope(node.engine) as session:
        handover = session.get(CustodyHandover, handover_id)
        assert handover is not None
    successor = active_peer(node, handover.successor)
    client = peer_client(node, successor)
    successor_key = HpkePublicKey.from_bytes(successor.hpke_public_key)
    sent = 0
    while True:
        with session_scope(node.engine) as session:
            records = list(
                session.exec(
                    select(Record)
                    .where(Record.custody == Custody.HELD, col(Record.erased_at).is_(None))
                    .order_by(col(Record.id))
                    .limit(BATCH)
                )
            )
        if not records:
            break
        for record in records:
            _push(node, client, successor, successor_key, record)
        with node.access_lock, session_scope(node.engine) as session:
            for record in records:
                fields = AccessEntryBase.custodian_action(
                    record_id=record.id,
                    version=record.latest_version,
                    category=record.category,
                    patient=record.patient,
                    requester=successor.account,
                    action="handover",
                    purpose=int(Purpose.OPERATIONS),
                )
                record_access(session, member=node.address, fields=fields)
                stored = session.get(Record, record.id)
                assert stored is not None
                stored.custody, stored.custody_counterpart = Custody.HANDING, successor.account
                session.add(stored)
            enqueue(session, CustodyTransfer(record_ids=[r.id for r in records], successor=successor.account))
        sent += len(records)
        _set(node, handover_id, records_sent=sent)
    deadline = time.monotonic() + node.settings.chain.receipt_timeout_s * 10
    while time.monotonic() < deadline:  # the outbox finalises each transfer as it confirms it
        with session_scope(node.engine) as session:
            handing = session.exec(
                select(func.count()).select_from(Record).where(Record.custody == Custody.HANDING)
            ).one()
            failed = session.exec(
                select(OutboxItem).where(
                    OutboxItem.kind == CustodyTransfer.kind, OutboxItem.state == OutboxState.FAILED
                )
            ).first()
        if failed is not None:
            raise PeerUnavailable(
                f"the custody transfer failed on chain: {failed.last_error}", code="custody-transfer-failed"
            )
        if not handing:
            _set(node, handover_id, state=HandoverState.DONE, finished_at=datetime.now(UTC))
            log.info("handover_done", handover=handover_id, records=sent)
            return
        time.sleep(0.2)
    raise PeerUnavailable(
        "the custody transfer is not confirmed on chain yet; start the handover again to resume",
        code="custody-transfer-pending",
    )


def _push(node: Node, client: httpx.Client, successor: Member, successor_key: HpkePublicKey, record: Record) -> None:
    """Sends every version of ``record`` to the successor (ciphertext + data key re-wrapped for it)."""
    with session_scope(node.engine) as session:
        versions = list(
            session.exec(
                select(RecordVersion).where(RecordVersion.record_id == record.id).order_by(col(RecordVersion.version))
            )
        )
        keys = {
            k.version: k
            for k in session.exec(
                select(WrappedKey).where(WrappedKey.record_id == record.id, WrappedKey.recipient == node.address)
            )
        }
    record_bytes = bytes.fromhex(record.id)
    for version in versions:
        data_key = unwrap_data_key(
            node.key_vault.open(record.id, keys[version.version].wrapped),
            node.identity.hpke_keys(),
            WrapContext(record_bytes, version.version, node.address),
        )
        try:
            wrapped = wrap_data_key(
                data_key, successor_key, WrapContext(record_bytes, version.version, successor.account)
            )
        finally:
            data_key.destroy()
        params = {
            "media_type": record.media_type,
            "sealed_by": version.sealed_by or record.custodian,
            "record_kind": record.record_kind,
        }
        if record.last_encounter is not None:
            params["last_encounter"] = record.last_encounter.isoformat()
        if record.fhir_resource_type:
            params["fhir_resource_type"] = record.fhir_resource_type
        blob = blob_path(node, record.id, version.version)
        digest = hashlib.sha256()
        with open(blob, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)

        def body(path: Path = blob) -> Iterator[bytes]:
            with open(path, "rb") as handle:
                while chunk := handle.read(1 << 20):
                    yield chunk

        target = f"/v1/custody/incoming/{record.id}/versions/{version.version}?{urlencode(params)}"
        headers = sign_headers(
            node.identity.account,
            chain_id=node.chain_id,
            audience=successor.account,
            method="PUT",
            url=str(client.base_url).rstrip("/") + target,
            digest=digest.hexdigest(),
        )
        headers.update(
            {
                "content-type": "application/octet-stream",
                header_names.WRAPPED_KEY: base64.b64encode(wrapped).decode(),
                # what the successor opens the anchor with: in headers, never in the URL
                header_names.PATIENT: record.patient,
                header_names.CATEGORY: str(record.category),
                header_names.SUBJECT_SALT: record.subject_salt,
            }
        )
        if record.encounter_date is not None:
            headers[header_names.ENCOUNTER_DATE] = record.encounter_date.isoformat()
        try:
            response = client.put(
                target,
                content=body(),
                headers=headers,
                auth=None,  # type: ignore[arg-type]  # signed above for this very body: not the client's signer
                timeout=node.settings.chain.receipt_timeout_s * 4,
            )
        except httpx.HTTPError as exc:
            raise PeerUnavailable(f"{successor.name} unreachable: {type(exc).__name__}") from None
        raise_for_peer(response, successor)
