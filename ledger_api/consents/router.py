"""Routes for consents: relay patient-signed grants, revocations and delegate changes; list; ask."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel
from web3 import Web3

from ledger_api.auth import policy
from ledger_api.auth.caller import Caller
from ledger_api.auth.dependencies import Allowed, MemberOrAuditorDep, NodeDep, SignedInDep, VerifiedBody
from ledger_api.auth.patient_numbers import PatientRefPath, PatientRefQuery, resolve_patient
from ledger_api.consents import relays, schemas, service
from ledger_api.core.bodies import json_body, parse_json
from ledger_api.core.db import DB_INT_MAX
from ledger_api.core.problems import linked, responses
from ledger_api.outbox.models import OutboxItemPublic
from ledger_api.vocabulary import CategoryName, PurposeName, category_of, purpose_of

router = APIRouter(prefix="/v1", tags=["consents"])
RelaysDep = Annotated[Caller, Depends(Allowed(policy.PATIENT_DELEGATE_OR_MEMBER_RELAYS))]
FollowsRelayDep = Annotated[Caller, Depends(Allowed(policy.PATIENT_DELEGATE_MEMBER_OR_AUDITOR_FOLLOWS_RELAY))]
ReadsConsentsDep = Annotated[Caller, Depends(Allowed(policy.PATIENT_DELEGATE_OR_ANY_MEMBER_READS_CONSENTS))]
ListsDelegatesDep = Annotated[Caller, Depends(Allowed(policy.PATIENT_DELEGATE_OR_OWN_SYSTEM_LISTS_DELEGATES))]
Address = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$")]
_ERRORS = responses(400, 401, 403, 404, 409, 413, 415, 422, 503)
_RELAYED = linked(_ERRORS, 202, RelayStatus=("relay_status_v1_relays__item_id__get", {"item_id": "$response.body#/id"}))


def _relay_route(path: str, body: type[BaseModel]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A relay's route: a signed message as JSON in, 202 and the relay to follow out."""
    return router.post(
        path, status_code=202, response_model=OutboxItemPublic, responses=_RELAYED, openapi_extra=json_body(body)
    )


@_relay_route("/consents", schemas.GrantIn)
def relay_grant(request: Request, node: NodeDep, body: VerifiedBody, caller: RelaysDep) -> OutboxItemPublic:
    """Checks a patient-signed EIP-712 grant and relays it to the chain (202: pending until anchored)."""
    return relays.relay_grant(node, caller, parse_json(request, body, schemas.GrantIn))


@_relay_route("/consents/revocations", schemas.RevocationIn)
def relay_revocation(request: Request, node: NodeDep, body: VerifiedBody, caller: RelaysDep) -> OutboxItemPublic:
    """Checks a patient-signed revocation and relays it; it takes effect in the block it lands in."""
    return relays.relay_revocation(node, caller, parse_json(request, body, schemas.RevocationIn))


@_relay_route("/consents/confirmations", schemas.RevocationIn)
def relay_confirmation(request: Request, node: NodeDep, body: VerifiedBody, caller: RelaysDep) -> OutboxItemPublic:
    """Relays the patient's own signed confirmation (EIP-712 ``ConsentConfirmation(address patient,uint256
    consentId,uint256 nonce,uint256 deadline)``) of a consent a guardian or delegate gave in their name: for a
    child who claimed their account, each consent the guardian gave is theirs to confirm or revoke."""
    return relays.relay_confirmation(node, caller, parse_json(request, body, schemas.RevocationIn))


@_relay_route("/delegates", schemas.DelegationIn)
def relay_delegation(request: Request, node: NodeDep, body: VerifiedBody, caller: RelaysDep) -> OutboxItemPublic:
    """Relays a patient-signed appointment, change or removal of a delegate (guardian): their scope (view or
    manage), end and excluded categories."""
    return relays.relay_delegation(node, caller, parse_json(request, body, schemas.DelegationIn))


@_relay_route("/patients/{patient}/restriction", schemas.SharingRestrictionIn)
def relay_sharing_restriction(
    request: Request, node: NodeDep, body: VerifiedBody, caller: RelaysDep, patient: Address
) -> OutboxItemPublic:
    """Relays a patient-signed restriction (or lifting) of the sharing of all their records: an erasure
    request where the law says the records must be kept. While it stands no consent permits anything
    (consents stay, overridden); the custodian reads only for purpose legal; break-glass still applies."""
    return relays.relay_sharing_restriction(
        node, caller, Web3.to_checksum_address(patient), parse_json(request, body, schemas.SharingRestrictionIn)
    )


@router.get("/patients/{patient}/restriction", response_model=schemas.SharingRestrictionView, responses=_ERRORS)
def sharing_restriction(
    node: NodeDep, caller: ReadsConsentsDep, patient: PatientRefPath
) -> schemas.SharingRestrictionView:
    """Whether the patient's records are restricted as a whole, as the chain says now."""
    return relays.sharing_restriction(node, caller, resolve_patient(node, caller, patient))


@router.get("/relays/{item_id}", response_model=OutboxItemPublic, responses=_ERRORS)
def relay_status(
    node: NodeDep, caller: FollowsRelayDep, item_id: Annotated[int, Path(ge=1, le=DB_INT_MAX)]
) -> OutboxItemPublic:
    """Where a relayed consent stands: pending, sent, confirmed (on chain) or failed."""
    return relays.outbox_item(node, caller, item_id)


@router.get("/patients/{patient}/consents", response_model=list[schemas.ConsentView], responses=_ERRORS)
def list_consents(node: NodeDep, caller: ReadsConsentsDep, patient: PatientRefPath) -> list[schemas.ConsentView]:
    """A patient's consents with their status (active, expired, revoked, pending on chain)."""
    return service.list_consents(node, caller, resolve_patient(node, caller, patient))


@router.get("/permissions", response_model=schemas.PermissionView, responses=_ERRORS)
def check_permission(
    node: NodeDep,
    caller: MemberOrAuditorDep,
    patient: PatientRefQuery,
    requester: Annotated[str, Query(pattern=r"^0x[0-9a-fA-F]{40}$")],
    category: Annotated[CategoryName, Query()],
    purpose: Annotated[PurposeName, Query()],
    care_on: Annotated[
        date | None,
        Query(description="the day of care of the record in question (consents may cover only some days of care)"),
    ] = None,
) -> schemas.PermissionView:
    """May ``requester`` read ``category`` of ``patient`` for ``purpose`` right now (consent or break-glass)?"""
    return service.check_permission(
        node,
        resolve_patient(node, caller, patient),
        Web3.to_checksum_address(requester),
        int(category_of(category)),
        int(purpose_of(purpose)),
        care_on,
    )


class SigningDomain(BaseModel):
    """What a patient's wallet needs to sign a consent message for this consortium."""

    chain_id: int
    verifying_contract: str
    patient: str
    nonce: int


@router.get("/patients/{patient}/signing-domain", response_model=SigningDomain, responses=_ERRORS)
def signing_domain(node: NodeDep, caller: SignedInDep, patient: Address) -> SigningDomain:
    """Chain id, ConsentRegistry address and the patient's next nonce, for EIP-712 signing."""
    patient = Web3.to_checksum_address(patient)
    return SigningDomain(
        chain_id=node.chain_id,
        verifying_contract=node.manifest.address("ConsentRegistry"),
        patient=patient,
        nonce=node.chain.consents.nonce(patient),
    )


ReadsAccountHistoryDep = Annotated[Caller, Depends(Allowed(policy.PATIENT_OR_DELEGATE_READS_ACCOUNT_HISTORY))]


@router.get("/patients/{patient}/account-history", response_model=list[schemas.AccountChangeView], responses=_ERRORS)
def account_history(
    node: NodeDep,
    caller: ReadsAccountHistoryDep,
    patient: PatientRefPath,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[schemas.AccountChangeView]:
    """Who granted and revoked the patient's consents, appointed, changed and removed their delegates, and
    restricted their records, and when (newest first): the patient's own acts and their delegates'."""
    patient = resolve_patient(node, caller, patient)
    return service.account_history(node, caller, patient, limit)


@router.get("/delegations", response_model=list[schemas.DelegationOfMine], responses=responses(401, 503))
def my_delegations(node: NodeDep, caller: SignedInDep) -> list[schemas.DelegationOfMine]:
    """The accounts the signed-in patient is a delegate (guardian) of now, with what they may do for each: the
    portal lets a guardian act for them (a member or auditor has none)."""
    return service.delegations_of(node, caller)


class DelegatesView(BaseModel):
    patient: str
    delegates: list[schemas.DelegateView]


@router.get("/patients/{patient}/delegates", response_model=DelegatesView, responses=_ERRORS)
def list_delegates(node: NodeDep, caller: ListsDelegatesDep, patient: PatientRefPath) -> DelegatesView:
    """The patient's current delegates (guardians), as the chain's delegate changes leave them: each one's
    scope, end and excluded categories (an ended delegation is left out)."""
    patient = resolve_patient(node, caller, patient)
    return DelegatesView(
        patient=patient, delegates=[schemas.DelegateView.of(d) for d in node.chain.consents.delegates_of(patient)]
    )
