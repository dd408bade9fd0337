"""Routes for enrolment: a patient's signed link to this hospital's number, and its removal."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from web3 import Web3

from ledger_api.auth import policy
from ledger_api.auth.caller import Caller
from ledger_api.auth.dependencies import Allowed, LocalMemberDep, NodeDep, VerifiedBody
from ledger_api.auth.patient_numbers import PatientRefPath, resolve_patient
from ledger_api.core.bodies import json_body, parse_json
from ledger_api.core.problems import responses
from ledger_api.enrolment import service
from ledger_api.enrolment.models import (
    IdCardLookupIn,
    LinkIn,
    LinkOfferView,
    LinkRemoved,
    LinkStatementIn,
    LinkView,
    PatientLinks,
)

router = APIRouter(prefix="/v1", tags=["enrolment"])
OffersDep = Annotated[Caller, Depends(Allowed(policy.PATIENT_OR_DELEGATE_OFFERS_LINK))]
RemovesDep = Annotated[Caller, Depends(Allowed(policy.PATIENT_DELEGATE_OR_MEMBER_REMOVES_LINK))]
ReadsLinksDep = Annotated[Caller, Depends(Allowed(policy.PATIENT_DELEGATE_OR_OWN_SYSTEM_READS_LINKS))]
SeesOverviewDep = Annotated[Caller, Depends(Allowed(policy.PATIENT_OR_DELEGATE_SEES_OVERVIEW))]
Address = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$")]
_ERRORS = responses(400, 401, 403, 404, 409, 413, 415, 422, 503)


@router.post("/patient-links", response_model=LinkView, responses=_ERRORS, openapi_extra=json_body(LinkIn))
def link_patient(request: Request, node: NodeDep, body: VerifiedBody, caller: LocalMemberDep) -> LinkView:
    """Links a patient's account to this hospital's medical record number, from the statement the patient
    showed at the desk (the QR's text, or the short code typed from the screen). From then on every route
    this hospital's system calls with a patient also takes ``mrn:<number>``. Kept here only."""
    return service.link(node, caller, parse_json(request, body, LinkIn))


@router.post(
    "/patient-links/offers",
    status_code=201,
    response_model=LinkOfferView,
    responses=_ERRORS,
    openapi_extra=json_body(LinkStatementIn),
)
def offer_link(request: Request, node: NodeDep, body: VerifiedBody, caller: OffersDep) -> LinkOfferView:
    """The patient, signed in at this hospital, leaves a signed link statement here under a short code the
    desk can type instead of scanning the QR; it lapses with the statement."""
    return service.offer(node, caller, parse_json(request, body, LinkStatementIn))


@router.post(
    "/patient-links/removals", response_model=LinkRemoved, responses=_ERRORS, openapi_extra=json_body(LinkStatementIn)
)
def remove_link(request: Request, node: NodeDep, body: VerifiedBody, caller: RemovesDep) -> LinkRemoved:
    """Removes a patient's link at the hospital the signed statement names (``linked`` false), passed on to
    that hospital when it is another member. The hospital keeps its records; it loses only the shortcut."""
    return service.remove(node, caller, parse_json(request, body, LinkStatementIn))


@router.post(
    "/patient-links/lookup", response_model=LinkView, responses=_ERRORS, openapi_extra=json_body(IdCardLookupIn)
)
def find_by_id_card(request: Request, node: NodeDep, body: VerifiedBody, caller: LocalMemberDep) -> LinkView:
    """This hospital's link for an ID card number (its master patient index; the number travels in the body,
    never in a URL, and is kept only as a hash under this member's own key)."""
    return service.find_by_id_card(node, caller, parse_json(request, body, IdCardLookupIn).id_card_number)


@router.get("/patients/{patient}/links", response_model=list[LinkView], responses=_ERRORS)
def links_here(node: NodeDep, caller: ReadsLinksDep, patient: PatientRefPath) -> list[LinkView]:
    """The patient's link to this hospital's number (none or one)."""
    return service.links_here(node, caller, resolve_patient(node, caller, patient))


@router.get(
    "/patients/{patient}/overview/links", response_model=PatientLinks, responses=_ERRORS, tags=["patients: overview"]
)
async def links_everywhere(
    node: NodeDep,
    caller: SeesOverviewDep,
    patient: Address,
    deadline_ms: Annotated[int, Query(ge=100, le=30_000, description="how long to wait for the other members")] = 3000,
) -> PatientLinks:
    """The signed-in patient's links at every member, each member answering for itself."""
    return await service.links_everywhere(
        node, caller, Web3.to_checksum_address(patient), deadline_s=deadline_ms / 1000
    )
