"""Routes for webhook subscriptions (patients, delegates, auditors) and the notifications they get."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from ledger_api.auth import policy
from ledger_api.auth.caller import Caller
from ledger_api.auth.dependencies import Allowed, NodeDep, SignedInDep, VerifiedBody
from ledger_api.auth.patient_numbers import PatientRefPath, resolve_patient
from ledger_api.core.bodies import json_body, parse_json
from ledger_api.core.db import DB_INT_MAX
from ledger_api.core.problems import linked, responses
from ledger_api.notifications import service
from ledger_api.notifications.models import NotificationPublic, SubscriptionCreated, SubscriptionPublic

router = APIRouter(prefix="/v1", tags=["notifications"])
SubscribesDep = Annotated[Caller, Depends(Allowed(policy.PATIENT_OR_DELEGATE_SUBSCRIBES))]
ReadsNotificationsDep = Annotated[Caller, Depends(Allowed(policy.PATIENT_DELEGATE_OR_OWN_SYSTEM_READS_NOTIFICATIONS))]
_ERRORS = responses(400, 401, 403, 404, 413, 415, 422, 503)
Patient = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{40}$")]
SubscriptionId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]
After = Annotated[int, Query(ge=0, le=DB_INT_MAX)]
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.post(
    "/subscriptions",
    status_code=201,
    response_model=SubscriptionCreated,
    responses=linked(
        _ERRORS,
        201,
        Unsubscribe=(
            "unsubscribe_v1_subscriptions__subscription_id__delete",
            {"subscription_id": "$response.body#/id"},
        ),
        Deliveries=(
            "subscription_notifications_v1_subscriptions__subscription_id__notifications_get",
            {"subscription_id": "$response.body#/id"},
        ),
    ),
    openapi_extra=json_body(service.SubscriptionIn),
)
def subscribe(request: Request, node: NodeDep, body: VerifiedBody, caller: SubscribesDep) -> SubscriptionCreated:
    """Subscribes a webhook to events about a patient's account (access, grant, revocation, break_glass,
    review), read from the chain from the next block on. Auditors may subscribe to every patient's
    break_glass and review events. The response carries the HMAC secret, once: each delivery is signed
    ``X-MedLedger-Signature: t=<unix>,v1=HMAC-SHA256(secret, "<t>." + body)``."""
    return service.subscribe(node, caller, parse_json(request, body, service.SubscriptionIn))


@router.get("/subscriptions", response_model=list[SubscriptionPublic], responses=_ERRORS)
def my_subscriptions(node: NodeDep, caller: SignedInDep) -> list[SubscriptionPublic]:
    """The caller's subscriptions at this node (never their secrets)."""
    return service.subscriptions_of(node, caller)


@router.delete("/subscriptions/{subscription_id}", status_code=204, responses=_ERRORS)
def unsubscribe(node: NodeDep, caller: SignedInDep, subscription_id: SubscriptionId) -> Response:
    """Stops a subscription; its pending deliveries are cancelled."""
    service.unsubscribe(node, caller, subscription_id)
    return Response(status_code=204)


@router.get(
    "/subscriptions/{subscription_id}/notifications", response_model=list[NotificationPublic], responses=_ERRORS
)
def subscription_notifications(
    node: NodeDep, caller: SignedInDep, subscription_id: SubscriptionId, after: After = 0, limit: Limit = 200
) -> list[NotificationPublic]:
    """What was sent (or is still being retried) for one of the caller's subscriptions."""
    return service.notifications_of(node, caller, subscription_id=subscription_id, after=after, limit=limit)


@router.get("/patients/{patient}/notifications", response_model=list[NotificationPublic], responses=_ERRORS)
def patient_notifications(
    node: NodeDep, caller: ReadsNotificationsDep, patient: PatientRefPath, after: After = 0, limit: Limit = 200
) -> list[NotificationPublic]:
    """Every notification about the patient's account, with its delivery state: part of their history."""
    account = resolve_patient(node, caller, patient)
    return service.notifications_of(node, caller, patient=account, after=after, limit=limit)
