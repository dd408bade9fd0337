"""Routes for consent requests: the hospital raises, lists, withdraws; the patient sees and refuses
(a grant, relayed as any grant, is the patient's yes)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from ledger_api.audit.fhir import FHIR_JSON, consent_request_resource
from ledger_api.auth import policy
from ledger_api.auth.caller import Caller
from ledger_api.auth.dependencies import Allowed, LocalMemberDep, NodeDep, VerifiedBody
from ledger_api.auth.patient_numbers import PATIENT_REF_DESCRIPTION, PATIENT_REF_PATTERN, resolve_patient
from ledger_api.consent_requests import service
from ledger_api.consent_requests.models import PatientRequests, RefusalIn, RequestIn, RequestView
from ledger_api.core.bodies import json_body, parse_json
from ledger_api.core.problems import responses

router = APIRouter(prefix="/v1", tags=["consent requests"])
ReadsRequestsDep = Annotated[Caller, Depends(Allowed(policy.PATIENT_DELEGATE_OR_OWN_SYSTEM_READS_REQUESTS))]
AnswersDep = Annotated[Caller, Depends(Allowed(policy.PATIENT_DELEGATE_OR_MEMBER_ANSWERS_REQUEST))]
SeesOverviewDep = Annotated[Caller, Depends(Allowed(policy.PATIENT_OR_DELEGATE_SEES_OVERVIEW))]
RequestId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="the request's id (16 bytes, hex)")]
PatientRef = Annotated[str, Path(pattern=PATIENT_REF_PATTERN, description=PATIENT_REF_DESCRIPTION)]
Address = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$")]
_ERRORS = responses(400, 401, 403, 404, 409, 413, 415, 422, 503)


@router.post(
    "/consent-requests",
    status_code=201,
    response_model=RequestView,
    responses=_ERRORS,
    openapi_extra=json_body(RequestIn),
)
def raise_request(request: Request, node: NodeDep, body: VerifiedBody, caller: LocalMemberDep) -> RequestView:
    """Asks a patient of this hospital (by account or ``mrn:``) for consent: purposes, categories, the care
    whose records are wanted, for how long, and why. The patient sees it in the portal of any member and
    grants (on chain), refuses, or lets it expire; it stays at this node only."""
    return service.raise_request(node, caller, parse_json(request, body, RequestIn))


@router.get("/consent-requests", response_model=list[RequestView], responses=_ERRORS)
def requests_raised(
    node: NodeDep,
    caller: LocalMemberDep,
    state: Annotated[Literal["requested", "granted", "denied", "expired", "withdrawn"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[RequestView]:
    """This hospital's requests, newest first, with where each stands."""
    return service.requests_raised(node, caller, state=state, limit=limit)


@router.get("/consent-requests/{request_id}", response_model=RequestView, responses=_ERRORS)
def one_request(node: NodeDep, caller: ReadsRequestsDep, request_id: RequestId) -> RequestView:
    """One request and its state's times (for this hospital's system, or the patient it asks)."""
    return service.one_request(node, caller, request_id)


@router.get(
    "/consent-requests/{request_id}/fhir",
    responses={200: {"content": {FHIR_JSON: {}}}, **_ERRORS},
    response_class=JSONResponse,
)
def request_as_fhir(node: NodeDep, caller: ReadsRequestsDep, request_id: RequestId) -> JSONResponse:
    """The request as a FHIR R4 Consent: ``proposed`` while it waits, then ``active``, ``rejected`` or ``inactive``."""
    resource = consent_request_resource(service.one_request(node, caller, request_id))
    return JSONResponse(resource, media_type=FHIR_JSON)


@router.post("/consent-requests/{request_id}/withdrawal", response_model=RequestView, responses=_ERRORS)
def withdraw(node: NodeDep, caller: LocalMemberDep, request_id: RequestId) -> RequestView:
    """The hospital takes back an open request."""
    return service.withdraw(node, caller, request_id)


@router.post(
    "/consent-requests/{request_id}/refusal",
    response_model=RequestView,
    responses=_ERRORS,
    openapi_extra=json_body(RefusalIn),
)
def refuse(
    request: Request, node: NodeDep, body: VerifiedBody, caller: AnswersDep, request_id: RequestId
) -> RequestView:
    """The patient's signed refusal, at the node they are signed in at (passed on to the hospital that asked)."""
    return service.refuse(node, caller, request_id, parse_json(request, body, RefusalIn))


@router.get("/patients/{patient}/consent-requests", response_model=list[RequestView], responses=_ERRORS)
def requests_for(node: NodeDep, caller: ReadsRequestsDep, patient: PatientRef) -> list[RequestView]:
    """The requests this hospital raised for the patient, newest first."""
    return service.requests_for(node, caller, resolve_patient(node, caller, patient))


@router.get(
    "/patients/{patient}/overview/consent-requests",
    response_model=PatientRequests,
    responses=_ERRORS,
    tags=["patients: overview"],
)
async def requests_everywhere(
    node: NodeDep,
    caller: SeesOverviewDep,
    patient: Address,
    deadline_ms: Annotated[int, Query(ge=100, le=30_000, description="how long to wait for the other members")] = 3000,
) -> PatientRequests:
    """The signed-in patient's consent requests from every member, newest first."""
    from web3 import Web3

    return await service.requests_everywhere(
        node, caller, Web3.to_checksum_address(patient), deadline_s=deadline_ms / 1000
    )
