"""Routes for a patient's own records at any member: their copy, and restricting or lifting one."""

from __future__ import annotations

import base64
from typing import Annotated

from anyio.to_thread import run_sync
from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask
from web3 import Web3

from ledger_api.auth import policy
from ledger_api.auth.caller import Caller
from ledger_api.auth.dependencies import Allowed, NodeDep, VerifiedBody
from ledger_api.consortium import own_records
from ledger_api.core import headers as header_names
from ledger_api.core.bodies import json_body, parse_json
from ledger_api.core.db import DB_INT_MAX
from ledger_api.core.problems import responses
from ledger_api.records.restriction import RecordHidingIn, RecordRestrictionIn, RestrictionView

router = APIRouter(prefix="/v1", tags=["patients"])
ReadsOwnDep = Annotated[Caller, Depends(Allowed(policy.PATIENT_OR_DELEGATE_READS_OWN_CONTENT))]
RestrictsDep = Annotated[Caller, Depends(Allowed(policy.PATIENT_DELEGATE_OR_MEMBER_RESTRICTS))]
Address = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$")]
RecordId = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="hex record id")]
_ERRORS = responses(400, 401, 403, 404, 409, 413, 415, 422, 503)


@router.get(
    "/patients/{patient}/records/{record_id}/content",
    responses={200: {"content": {"application/octet-stream": {}}}, **_ERRORS},
)
async def own_copy(
    node: NodeDep,
    caller: ReadsOwnDep,
    patient: Address,
    record_id: RecordId,
    reader_key: Annotated[
        str,
        Header(
            alias=header_names.READER_KEY,
            min_length=40,
            max_length=2048,
            description="base64 of the HPKE public key (X25519, or ML-KEM-768+X25519) to wrap the data key for",
        ),
    ],
    version: Annotated[int | None, Query(ge=1, le=DB_INT_MAX)] = None,
) -> Response:
    """The patient's (or a delegate's) own copy of a record, from whichever member holds it: the
    ciphertext, with its data key wrapped for the reader key the caller sent (only its holder decrypts
    it; no node in between can). Headers as for a member's release; logged as ``self_access``."""
    copy = await run_sync(
        own_records.own_copy,
        node,
        caller,
        Web3.to_checksum_address(patient),
        record_id,
        version,
        reader_key,
        limiter=node.request_threads,
    )
    if isinstance(copy, own_records.ForwardedCopy):
        headers = {**copy.headers, "Cache-Control": "no-store"}
        path = copy.path
        return FileResponse(
            path,
            media_type="application/octet-stream",
            headers=headers,
            background=BackgroundTask(path.unlink, missing_ok=True),
        )
    stored = copy.stored
    headers = {
        header_names.RECORD_ID: stored.id,
        header_names.VERSION: str(stored.version),
        header_names.CUSTODIAN: stored.custodian,
        header_names.SEALED_BY: copy.sealed_by,
        header_names.PATIENT: stored.patient,
        header_names.CATEGORY: str(stored.category),
        header_names.MEDIA_TYPE: stored.media_type,
        header_names.CONTENT_HASH: stored.content_hash,
        header_names.WRAPPED_KEY: base64.b64encode(copy.wrapped_key).decode(),
        header_names.ACCESS_SEQUENCE: str(copy.sequence),
        header_names.BASIS: copy.basis,
        "Cache-Control": "no-store",
    }
    if stored.fhir_resource_type:
        headers[header_names.FHIR_RESOURCE_TYPE] = stored.fhir_resource_type
    if copy.content is not None:
        return Response(copy.content, media_type="application/octet-stream", headers=headers)
    return FileResponse(copy.path, media_type="application/octet-stream", headers=headers)


@router.post(
    "/records/{record_id}/restriction",
    response_model=RestrictionView,
    responses=_ERRORS,
    openapi_extra=json_body(RecordRestrictionIn),
)
def change_restriction(
    request: Request, node: NodeDep, body: VerifiedBody, caller: RestrictsDep, record_id: RecordId
) -> RestrictionView:
    """Restricts (or lifts the restriction of) one record at its patient's signed request, at whichever
    member holds it: from then on it is released to nobody but the patient, its custodian for purpose
    legal, and a declared break-glass. Consents stay, overridden."""
    return own_records.change_record(node, caller, record_id, parse_json(request, body, RecordRestrictionIn))


@router.post(
    "/records/{record_id}/hiding",
    response_model=RestrictionView,
    responses=_ERRORS,
    openapi_extra=json_body(RecordHidingIn),
)
def change_hiding(
    request: Request, node: NodeDep, body: VerifiedBody, caller: RestrictsDep, record_id: RecordId
) -> RestrictionView:
    """Hides one record from every consent (or shows it again) at its patient's signed request (EIP-712
    ``RecordHiding``), at whichever member holds it: no grant releases it while hidden; this hospital's own
    care and a declared break-glass still reach it. Consents stay as they are."""
    return own_records.change_record(node, caller, record_id, parse_json(request, body, RecordHidingIn))
