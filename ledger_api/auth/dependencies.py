"""FastAPI dependencies for who is calling, as ``Annotated`` aliases so routes stay short."""

from __future__ import annotations

import hashlib
from functools import partial
from typing import Annotated

from anyio.to_thread import run_sync
from fastapi import Depends, Request

from ledger_api.auth import patient_proof, signing
from ledger_api.auth.service import Caller, reject, resolve_patient_proof, resolve_session, verify_signed_request
from ledger_api.core.request_guard import read_body
from ledger_api.errors import Forbidden, Unauthenticated
from ledger_api.node import Node

# Dependencies are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in the thread
# pool, and every such hop costs a GIL hand-off per request. Blocking work (database, chain) goes
# to one of the node's few request threads once, inside ``get_caller`` (see ``LimitSettings``).


async def get_node(request: Request) -> Node:
    return request.app.state.node


NodeDep = Annotated[Node, Depends(get_node)]


async def get_caller(request: Request, node: NodeDep) -> Caller:
    """A patient (Bearer session token) or a member system / auditor (signed request)."""
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return await run_sync(resolve_session, node, authorization[7:].strip(), limiter=node.request_threads)
    if signing.SIGNATURE in request.headers:
        headers = {k.lower(): v for k, v in request.headers.items()}
        verify = partial(
            verify_signed_request,
            node,
            method=request.method,
            path=request.url.path,
            query=request.url.query,
            headers=headers,
        )
        caller = await run_sync(verify, limiter=node.request_threads)
        if patient_proof.HEADER in headers:
            return resolve_patient_proof(node, caller, request.method, headers[patient_proof.HEADER])
        return caller
    raise Unauthenticated("sign the request as a member, or sign in as a patient")


CallerDep = Annotated[Caller, Depends(get_caller)]


async def get_member(caller: CallerDep) -> Caller:
    if caller.kind != "member":
        raise Forbidden("only consortium members may do this", code="role-not-allowed")
    return caller


async def get_local_member(caller: CallerDep) -> Caller:
    if not (caller.kind == "member" and caller.local):
        raise Forbidden("only this node's own hospital system may do this", code="role-not-allowed")
    return caller


async def get_member_or_auditor(caller: CallerDep) -> Caller:
    if caller.kind not in ("member", "auditor"):
        raise Forbidden("only members and auditors may do this", code="role-not-allowed")
    return caller


MemberDep = Annotated[Caller, Depends(get_member)]
LocalMemberDep = Annotated[Caller, Depends(get_local_member)]
MemberOrAuditorDep = Annotated[Caller, Depends(get_member_or_auditor)]


async def read_verified_body(request: Request, caller: CallerDep, node: NodeDep) -> bytes:
    """The request body, size-limited, and for signed requests checked against the signed digest."""
    body = await read_body(request, node.settings.limits.max_json_bytes)
    signed = caller.kind != "patient" or caller.via is not None
    if signed and hashlib.sha256(body).hexdigest() != request.headers.get(signing.DIGEST):
        reject("body-altered", caller.via or caller.address)
        raise Unauthenticated("body does not match the signed content digest", code="body-digest-mismatch")
    return bytes(body)


VerifiedBody = Annotated[bytes, Depends(read_verified_body)]
