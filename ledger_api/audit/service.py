"""The node's side of an audit: what it exports for auditors, and verifying its own trail.

The record manifest hashes every stored ciphertext *now* (BLAKE3, as anchored), so an auditor
compares the bytes on disk with the chain, not the database's claim about them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import blake3
from sqlmodel import Session, col, select

from ledger_api.access.imports import iter_imports
from ledger_api.access.service import iter_documents, iter_export
from ledger_api.audit import fhir
from ledger_api.audit.chain_view import consent_times, read_chain
from ledger_api.audit.report_schema import AuditPolicy, AuditReport, MemberExport
from ledger_api.audit.verify import verify
from ledger_api.auth.caller import Caller
from ledger_api.consents.service import list_consents
from ledger_api.core.db import as_utc, session_scope
from ledger_api.node import Node
from ledger_api.records.blobs import blob_path
from ledger_api.records.models import Custody, PatientRequest, Record, RecordVersion


def stored_hash(node: Node, record_id: str, version: int) -> str | None:
    digest = blake3.blake3()
    try:
        with open(blob_path(node, record_id, version), "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except FileNotFoundError:
        return None
    return digest.hexdigest()


def iter_record_manifest(node: Node, *, batch: int = 500) -> Iterator[dict[str, Any]]:
    """Every stored record version: id, version, erased, the hash of its ciphertext on disk, and what opens
    the record's anchor (patient, category, subject salt): the auditor's only source for whose record it
    is and of what kind, since the chain holds a commitment. A record's first version's line also carries
    the patient's signed requests that restricted, lifted, hid or showed it (``patient_requests``): the
    evidence the auditor checks those trail entries and chain changes against."""
    after = 0
    while True:
        with session_scope(node.engine) as session:
            query = select(RecordVersion, Record).join(Record, col(Record.id) == RecordVersion.record_id)
            rows = list(
                session.exec(query.where(col(RecordVersion.id) > after).order_by(col(RecordVersion.id)).limit(batch))
            )
            requests = _patient_requests(session, [record.id for version, record in rows if version.version == 1])
        if not rows:
            return
        for version, record in rows:
            erased = record.erased_at is not None
            line = {
                "record_id": record.id,
                "version": version.version,
                "patient": record.patient,
                "category": record.category,
                "subject_salt": record.subject_salt,
                "encounter_date": record.encounter_date.isoformat() if record.encounter_date else None,
                "erased": erased,
                "stored_hash": None if erased else stored_hash(node, record.id, version.version),
            }
            if record.custody == Custody.TRANSFERRED:
                line["transferred_to"] = record.custody_counterpart
            if version.version == 1 and record.id in requests:
                line["patient_requests"] = requests[record.id]
            yield line
        after = rows[-1][0].id or after


def _patient_requests(session: Session, record_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The signed requests kept for ``record_ids``, by record, in the order they were applied."""
    found: dict[str, list[dict[str, Any]]] = {}
    if not record_ids:
        return found
    rows = session.exec(
        select(PatientRequest)
        .where(col(PatientRequest.record_id).in_(record_ids))
        .order_by(col(PatientRequest.sequence))
    )
    for row in rows:
        found.setdefault(row.record_id, []).append(row.model_dump(exclude={"id", "record_id"}))
    return found


def manifest_lines(node: Node) -> Iterator[str]:
    for line in iter_record_manifest(node):
        yield json.dumps(line, sort_keys=True) + "\n"


def verify_own_trail(node: Node, policy: AuditPolicy) -> AuditReport:
    """This node's log and records against the chain (the same checks ``medledger audit verify`` runs)."""
    chain = read_chain(node.w3, node.manifest)

    def entries() -> Iterator[dict[str, Any]]:
        with session_scope(node.engine) as session:
            for line in iter_export(session):
                yield json.loads(line)

    export = MemberExport(member=node.address, entries=entries(), records=iter_record_manifest(node))
    return verify(chain, node.chain_id, [export], policy)


def member_names(node: Node) -> dict[str, str]:
    """Account -> name of every member ever admitted (for readable FHIR displays)."""
    return {m.account: m.name for m in node.chain.registry.members()}


def fhir_audit_events(node: Node, *, patient: str | None = None) -> Iterator[str]:
    """This node's trail as FHIR AuditEvent NDJSON (optionally one patient's only): its access log (releases
    to other members as BALP disclosures at the source), then its imports (the recipient's side)."""
    names = member_names(node)
    with session_scope(node.engine) as session:
        yield from fhir.ndjson(
            fhir.audit_event(document, names) for document in iter_documents(session, patient=patient)
        )
        yield from fhir.ndjson(
            fhir.import_event(
                {**row.model_dump(), "created_at": as_utc(row.created_at).isoformat()}, node.address, names
            )
            for row in iter_imports(session, patient=patient)
        )


def fhir_consents(node: Node, caller: Caller, patient: str) -> dict[str, Any]:
    """A patient's consents (on chain, and relayed here but still pending) as a FHIR searchset Bundle."""
    names = member_names(node)
    views = list_consents(node, caller, patient)
    times = consent_times(node.w3, node.manifest, patient)
    resources = []
    for view in views:
        granted_at, revoked_at = (
            times.get(int(view.consent_id), (None, None)) if view.status != "pending" else (None, None)
        )
        resources.append(fhir.consent_resource(view, names, granted_at=granted_at, revoked_at=revoked_at))
    return fhir.bundle(resources, bundle_type="searchset")
