"""Routes for records: upload, versions, metadata, consent-checked release, erasure."""

from __future__ import annotations

import base64
from datetime import date
from typing import Annotated

from anyio.to_thread import run_sync
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, Response

from ledger_api.access.models import AccessEntryPublic
from ledger_api.access.service import to_public
from ledger_api.auth import policy, signing
from ledger_api.auth.caller import Caller
from ledger_api.auth.dependencies import Allowed, LocalMemberDep, NodeDep, get_caller
from ledger_api.auth.patient_numbers import PatientRefPath, PatientRefQuery, resolve_patient
from ledger_api.core import headers as header_names
from ledger_api.core.db import DB_INT_MAX
from ledger_api.core.problems import linked, responses
from ledger_api.errors import UnsupportedMediaType
from ledger_api.records import erasure, service
from ledger_api.records.models import RecordKind, RecordPublic
from ledger_api.vocabulary import CategoryName, PurposeName, category_of, purpose_of

ReadsRecordsDep = Annotated[Caller, Depends(Allowed(policy.PATIENT_DELEGATE_OR_MEMBER_READS_RECORDS))]
ReadsContentDep = Annotated[Caller, Depends(Allowed(policy.CUSTODIAN_OR_CONSENTED_MEMBER_READS_CONTENT))]
ErasesDep = Annotated[Caller, Depends(Allowed(policy.CUSTODIAN_OR_PATIENT_ERASES))]

router = APIRouter(prefix="/v1", tags=["records"])
RecordId = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="hex record id")]
Address = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$")]
Clinician = Annotated[
    str,
    Query(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9._:@-]+$",
        description="pseudonymous id of the acting clinician",
    ),
]
PurposeQ = Annotated[PurposeName, Query(description="purpose of use")]
LastEncounter = Annotated[
    date | None,
    Query(description="date of the last encounter the record documents (default today): starts its retention"),
]
_ERRORS = responses(400, 401, 403, 404, 409, 413, 415, 422, 503)


def _octet_stream(request: Request) -> None:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/octet-stream":
        raise UnsupportedMediaType("upload the record body as application/octet-stream", code="unsupported-media-type")


_RECORD = "$response.body#/id"
#: the upload body, declared so clients (and generated tests) know to send the plaintext as bytes
_BYTES_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary", "maxLength": 1 << 20}}
        },
    }
}


@router.post(
    "/records",
    status_code=201,
    response_model=RecordPublic,
    responses=linked(
        _ERRORS,
        201,
        GetRecord=("get_record_v1_records__record_id__get", {"record_id": _RECORD}),
        FetchContent=("fetch_record_v1_records__record_id__content_get", {"record_id": _RECORD}),
        AddVersion=("add_version_v1_records__record_id__versions_post", {"record_id": _RECORD}),
        EraseRecord=("erase_record_v1_records__record_id__delete", {"record_id": _RECORD}),
        PatientRecords=("list_records_v1_patients__patient__records_get", {"patient": "$response.body#/patient"}),
    ),
    openapi_extra=_BYTES_BODY,
)
async def upload_record(
    request: Request,
    node: NodeDep,
    caller: LocalMemberDep,
    patient: PatientRefQuery,
    category: Annotated[CategoryName, Query()],
    media_type: Annotated[str, Query(min_length=3, max_length=127, pattern=r"^[\w.+-]+/[\w.+-]+$")],
    fhir_resource_type: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Z][A-Za-z]+$")] = None,
    record_kind: Annotated[
        RecordKind, Query(description="the care it comes from: sets how many years it must be kept")
    ] = RecordKind.OTHER,
    last_encounter: LastEncounter = None,
) -> RecordPublic:
    """Encrypts and stores a new record for a patient (the body is the plaintext) and anchors its hash.

    Its retention end (``retention_until``) is ``last_encounter`` plus the consortium's years for
    ``record_kind`` (outpatient 15, inpatient 30, other 30 by default); no one may erase it before."""

    _octet_stream(request)
    new = service.NewRecord(
        patient=resolve_patient(node, caller, patient),
        category=category_of(category),
        media_type=media_type,
        fhir_resource_type=fhir_resource_type,
        record_kind=record_kind,
    )
    record = await service.upload(
        node,
        request.stream(),
        declared_sha256=request.headers.get(signing.DIGEST),
        new=new,
        last_encounter=last_encounter,
    )
    return service.get_record(node, caller, record.id)


@router.post(
    "/records/{record_id}/versions",
    status_code=201,
    response_model=RecordPublic,
    responses=_ERRORS,
    openapi_extra=_BYTES_BODY,
)
async def add_version(
    request: Request, node: NodeDep, caller: LocalMemberDep, record_id: RecordId, last_encounter: LastEncounter = None
) -> RecordPublic:
    """Appends a new version (new data key, new anchor); earlier versions stay. A later
    ``last_encounter`` extends the record's retention end (it never shortens)."""
    _octet_stream(request)
    await service.upload(
        node,
        request.stream(),
        declared_sha256=request.headers.get(signing.DIGEST),
        record_id=record_id,
        last_encounter=last_encounter,
    )
    return service.get_record(node, caller, record_id)


@router.get("/records/{record_id}", response_model=RecordPublic, responses=_ERRORS)
def get_record(node: NodeDep, caller: ReadsRecordsDep, record_id: RecordId) -> RecordPublic:
    """A record's metadata (never content)."""
    return service.get_record(node, caller, record_id)


@router.get("/patients/{patient}/records", response_model=list[RecordPublic], responses=_ERRORS)
def list_records(
    node: NodeDep,
    caller: ReadsRecordsDep,
    patient: PatientRefPath,
    purpose: Annotated[PurposeName | None, Query()] = None,
) -> list[RecordPublic]:
    """A patient's records held here, metadata only; other members see only categories they may read."""

    return service.list_records(
        node, caller, resolve_patient(node, caller, patient), purpose_of(purpose) if purpose else None
    )


@router.get("/records/{record_id}/content", responses={200: {"content": {"application/octet-stream": {}}}, **_ERRORS})
async def fetch_record(
    node: NodeDep,
    caller: ReadsContentDep,
    record_id: RecordId,
    purpose: PurposeQ,
    clinician: Clinician,
    version: Annotated[int | None, Query(ge=1, le=DB_INT_MAX)] = None,
) -> Response:
    """Releases the ciphertext and its data key wrapped for the requester, if the chain allows it now.

    Headers carry the wrapped key, the context needed to decrypt, and the access-log sequence.
    (One worker-thread hop does the chain check, the logging and the read: this is the hot path.)
    """
    release = await run_sync(
        service.release, node, caller, record_id, version, purpose_of(purpose), clinician, limiter=node.request_threads
    )
    stored = release.stored
    headers = {
        header_names.RECORD_ID: stored.id,
        header_names.VERSION: str(stored.version),
        header_names.CUSTODIAN: stored.custodian,
        header_names.SEALED_BY: release.sealed_by,
        header_names.PATIENT: stored.patient,
        header_names.CATEGORY: str(stored.category),
        header_names.MEDIA_TYPE: stored.media_type,
        header_names.CONTENT_HASH: stored.content_hash,
        header_names.WRAPPED_KEY: base64.b64encode(release.wrapped_key).decode(),
        header_names.ACCESS_SEQUENCE: str(release.sequence),
        header_names.BASIS: release.basis,
        "Cache-Control": "no-store",
    }
    if release.content is not None:
        return Response(release.content, media_type="application/octet-stream", headers=headers)
    return FileResponse(release.path, media_type="application/octet-stream", headers=headers)


@router.delete("/records/{record_id}", response_model=AccessEntryPublic, responses=_ERRORS)
def erase_record(node: NodeDep, caller: ErasesDep, record_id: RecordId) -> AccessEntryPublic:
    """Crypto-shreds a record past its retention end: every wrapped key and ciphertext deleted; the erasure
    itself is logged (``action`` erase). Within the retention period the custodian is refused (409
    ``retention-period``, with ``retention_until``), and the patient's request restricts the record
    instead (``action`` restrict): the law says it must be kept, and PIPL Art. 47 says a deletion
    request then means no processing but storage."""
    entry = erasure.erase(node, caller, record_id)
    return to_public(entry, {})


__all__ = ["router", "get_caller"]
