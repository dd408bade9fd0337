"""Routes for the succession of a patient account's key: planned rotation, recovery, minors."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from ledger_api.auth import policy
from ledger_api.auth.caller import Caller
from ledger_api.auth.dependencies import Allowed, NodeDep, VerifiedBody
from ledger_api.auth.patient_numbers import PatientRefPath, resolve_patient
from ledger_api.core.bodies import json_body, parse_json
from ledger_api.core.problems import responses
from ledger_api.errors import NotFound
from ledger_api.succession import schemas, service

router = APIRouter(prefix="/v1", tags=["succession"])
ReadsDep = Annotated[Caller, Depends(Allowed(policy.PATIENT_DELEGATE_OR_OWN_SYSTEM_READS_SUCCESSION))]
RelaysDep = Annotated[Caller, Depends(Allowed(policy.PATIENT_DELEGATE_OR_MEMBER_RELAYS))]
DeskDep = Annotated[Caller, Depends(Allowed(policy.OWN_SYSTEM))]
SignedInDep = Annotated[Caller, Depends(Allowed(policy.ANYONE_SIGNED_IN))]
_ERRORS = responses(401, 403, 404, 409, 422, 503)


@router.get("/patients/{patient}/succession", response_model=schemas.SuccessionView, responses=_ERRORS)
def succession(node: NodeDep, caller: ReadsDep, patient: PatientRefPath) -> schemas.SuccessionView:
    """The key that signs for the account now, the recovery under way (approvals, time lock) and, for a minor's
    account, the first day the child may claim it."""
    account = resolve_patient(node, caller, patient)
    policy.require(policy.PATIENT_DELEGATE_OR_OWN_SYSTEM_READS_SUCCESSION, node, caller, account)
    return service.view(node, account)


@router.post(
    "/patients/{patient}/key-rotation",
    response_model=schemas.SuccessionView,
    responses=_ERRORS,
    openapi_extra=json_body(schemas.KeyRotationIn),
)
def rotate_key(
    request: Request, node: NodeDep, body: VerifiedBody, caller: RelaysDep, patient: PatientRefPath
) -> schemas.SuccessionView:
    """A planned key rotation the account's current key signed, sent to the chain by this member: the account
    keeps everything; from now on the new key signs for it."""
    account = resolve_patient(node, caller, patient)
    policy.require(policy.PATIENT_DELEGATE_OR_MEMBER_RELAYS, node, caller, account)
    return service.rotate_key(node, account, parse_json(request, body, schemas.KeyRotationIn))


@router.post(
    "/patients/{patient}/recovery/approvals",
    response_model=schemas.SuccessionView,
    responses=_ERRORS,
    openapi_extra=json_body(schemas.DeskApprovalIn),
)
def approve_at_desk(
    request: Request, node: NodeDep, body: VerifiedBody, caller: DeskDep, patient: PatientRefPath
) -> schemas.SuccessionView:
    """This hospital's approval that a new key replaces the patient's lost one, after its desk checked the
    patient's identity in person (only for a patient enrolled here). With enough approvals the time lock
    starts, during which the old key can cancel."""
    account = resolve_patient(node, caller, patient)
    return service.approve_at_desk(node, account, parse_json(request, body, schemas.DeskApprovalIn))


@router.post(
    "/patients/{patient}/recovery/guardian-approvals",
    response_model=schemas.SuccessionView,
    responses=_ERRORS,
    openapi_extra=json_body(schemas.GuardianApprovalIn),
)
def approve_as_guardian(
    request: Request, node: NodeDep, body: VerifiedBody, caller: RelaysDep, patient: PatientRefPath
) -> schemas.SuccessionView:
    """A guardian's signed approval of the recovery under way, relayed by this member."""
    account = resolve_patient(node, caller, patient)
    policy.require(policy.PATIENT_DELEGATE_OR_MEMBER_RELAYS, node, caller, account)
    return service.approve_as_guardian(node, account, parse_json(request, body, schemas.GuardianApprovalIn))


@router.post(
    "/patients/{patient}/recovery/cancellation",
    response_model=schemas.SuccessionView,
    responses=_ERRORS,
    openapi_extra=json_body(schemas.RecoveryCancellationIn),
)
def cancel_recovery(
    request: Request, node: NodeDep, body: VerifiedBody, caller: RelaysDep, patient: PatientRefPath
) -> schemas.SuccessionView:
    """The account's current key cancels the recovery under way (it was not lost, or someone else is trying)."""
    account = resolve_patient(node, caller, patient)
    policy.require(policy.PATIENT_DELEGATE_OR_MEMBER_RELAYS, node, caller, account)
    return service.cancel_recovery(node, account, parse_json(request, body, schemas.RecoveryCancellationIn))


@router.post("/patients/{patient}/recovery/completion", response_model=schemas.SuccessionView, responses=_ERRORS)
def complete_recovery(node: NodeDep, caller: SignedInDep, patient: PatientRefPath) -> schemas.SuccessionView:
    """Completes a recovery whose time lock has run out: asked by a member, the patient's side, or the new key
    itself (signed in as itself); anyone else finds no recovery."""
    account = resolve_patient(node, caller, patient)
    pending = node.chain.consents.recovery(account).new_key
    if not (caller.kind == "member" or caller.address == pending) and not policy.allows(
        policy.PATIENT_DELEGATE_OR_OWN_SYSTEM_READS_SUCCESSION, node, caller, account
    ):
        raise NotFound("no recovery of this account is yours to complete", code="recovery-not-found")
    return service.complete_recovery(node, account)


@router.get("/recoveries/mine", response_model=schemas.SuccessionView, responses=_ERRORS)
def my_recovery(node: NodeDep, caller: SignedInDep) -> schemas.SuccessionView:
    """For a patient signed in with a new key: the account whose recovery to this key is under way."""
    account = service.recovering_for(node, caller.address) if caller.kind == "patient" else None
    if account is None:
        raise NotFound("no recovery to this key is under way", code="recovery-not-found")
    return service.view(node, account)


@router.post(
    "/minors",
    status_code=201,
    response_model=schemas.MinorView,
    responses=responses(401, 403, 409, 422, 503),
    openapi_extra=json_body(schemas.MinorIn),
)
def enrol_minor(request: Request, node: NodeDep, body: VerifiedBody, caller: DeskDep) -> schemas.MinorView:
    """This hospital's desk enrols a child's account held by their guardian: the date of birth stays here,
    the chain holds only the first day the child may claim the account."""
    return service.enrol_minor(node, caller, parse_json(request, body, schemas.MinorIn))


@router.post(
    "/minors/{patient}/claim",
    response_model=schemas.SuccessionView,
    responses=_ERRORS,
    openapi_extra=json_body(schemas.MinorClaimIn),
)
def claim_minor(
    request: Request, node: NodeDep, body: VerifiedBody, caller: DeskDep, patient: PatientRefPath
) -> schemas.SuccessionView:
    """The child, of age and identified in person at this desk, claims their account with their own key and
    says what their guardian may do from now on."""
    account = resolve_patient(node, caller, patient)
    return service.claim_minor(node, account, parse_json(request, body, schemas.MinorClaimIn))
