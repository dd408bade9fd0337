"""Routes for legal orders to erase a record before its retention end (see ``records.legal_orders``)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from ledger_api.auth import policy
from ledger_api.auth.caller import Caller
from ledger_api.auth.dependencies import Allowed, LocalMemberDep, NodeDep, VerifiedBody
from ledger_api.consents.schemas import Signature
from ledger_api.core.bodies import json_body, parse_json
from ledger_api.core.db import DB_INT_MAX
from ledger_api.core.problems import responses
from ledger_api.records import legal_orders
from ledger_api.records.models import ErasureOrderCreate, ErasureOrderPublic

router = APIRouter(prefix="/v1", tags=["records"])
OwnSystemOrAuditorDep = Annotated[Caller, Depends(Allowed(policy.OWN_SYSTEM_OR_AUDITOR))]
AuditorDep = Annotated[Caller, Depends(Allowed(policy.AUDITOR_APPROVES))]
RecordId = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="hex record id")]
OrderId = Annotated[int, Path(ge=1, le=DB_INT_MAX)]
_ERRORS = responses(400, 401, 403, 404, 409, 413, 415, 422, 503)


class CountersignatureIn(BaseModel):
    """A records officer's EIP-712 ``LegalErasure`` signature over the order (its ``digest``)."""

    officer: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")
    signature: Signature


class ApprovalIn(BaseModel):
    """An auditor's EIP-712 ``LegalErasure`` signature over the order, with the key of the account they
    sign requests with (the same document the records officer signs)."""

    signature: Signature


@router.post(
    "/records/{record_id}/erasure-orders",
    status_code=201,
    response_model=ErasureOrderPublic,
    responses=_ERRORS,
    openapi_extra=json_body(ErasureOrderCreate),
)
def file_order(
    request: Request, node: NodeDep, body: VerifiedBody, caller: LocalMemberDep, record_id: RecordId
) -> ErasureOrderPublic:
    """Files a legal order to erase a record before its retention end; carried out once a second person
    at this hospital has countersigned it and an auditor has approved it."""
    return legal_orders.file(node, caller, record_id, parse_json(request, body, ErasureOrderCreate))


@router.get("/records/{record_id}/erasure-orders", response_model=list[ErasureOrderPublic], responses=_ERRORS)
def list_orders(node: NodeDep, caller: OwnSystemOrAuditorDep, record_id: RecordId) -> list[ErasureOrderPublic]:
    """The legal erasure orders filed for a record, with their approvals."""
    return legal_orders.orders_of(node, caller, record_id)


@router.get("/erasure-orders", response_model=list[ErasureOrderPublic], responses=_ERRORS)
def list_all_orders(
    node: NodeDep,
    caller: OwnSystemOrAuditorDep,
    state: Annotated[Literal["pending", "executed"] | None, Query(description="only orders in this state")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[ErasureOrderPublic]:
    """This hospital's legal erasure orders, newest first: an auditor finds those waiting for approval."""
    return legal_orders.orders(node, caller, state=state, limit=limit)


@router.get("/erasure-orders/{order_id}", response_model=ErasureOrderPublic, responses=_ERRORS)
def get_order(node: NodeDep, caller: OwnSystemOrAuditorDep, order_id: OrderId) -> ErasureOrderPublic:
    """One legal erasure order (an auditor reads it before approving)."""
    return legal_orders.get(node, caller, order_id)


@router.post(
    "/erasure-orders/{order_id}/countersignature",
    response_model=ErasureOrderPublic,
    responses=_ERRORS,
    openapi_extra=json_body(CountersignatureIn),
)
def countersign(
    request: Request, node: NodeDep, body: VerifiedBody, caller: LocalMemberDep, order_id: OrderId
) -> ErasureOrderPublic:
    """A records officer (not the one who filed it) countersigns the order with their own key."""
    signed = parse_json(request, body, CountersignatureIn)
    return legal_orders.countersign(node, caller, order_id, signed.officer, signed.signature)


@router.post(
    "/erasure-orders/{order_id}/approval",
    response_model=ErasureOrderPublic,
    responses=_ERRORS,
    openapi_extra=json_body(ApprovalIn),
)
def approve(
    request: Request, node: NodeDep, body: VerifiedBody, caller: AuditorDep, order_id: OrderId
) -> ErasureOrderPublic:
    """An auditor approves the order with their own signature over it, which the order keeps."""
    signed = parse_json(request, body, ApprovalIn)
    return legal_orders.approve(node, caller, order_id, signed.signature)
