"""FastAPI dependencies for who is calling, as ``Annotated`` aliases so routes stay short."""

from __future__ import annotations

import hashlib
from functools import partial
from typing import Annotated

from anyio.to_thread import run_sync
from fastapi import Depends, Request
from web3 import Web3

from ledger_api.auth import patient_proof, policy, signing
from ledger_api.auth.caller import Caller
from ledger_api.auth.service import reject, resolve_patient_proof, resolve_session, verify_signed_request
from ledger_api.core.request_guard import read_body
from ledger_api.errors import Unauthenticated
from ledger_api.node import Node

# Dependencies are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in the thread
# pool, and every such hop costs a GIL hand-off per request. Blocking work (database, chain) goes
# to one of the node's few request threads once, inside ``get_caller`` (see ``LimitSettings``).


async def get_node(request: Request) -> Node:
    node: Node = request.app.state.node
    return node


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


class Allowed:
    """A route's declared rule (``auth.policy``), as its caller dependency: the caller's role is checked
    before the route runs (a patient's towards the ``patient`` the path names, if any), and the route
    gets the caller. ``rule`` is what the OpenAPI document and the authorisation-matrix test read.

    A route that takes a signed body names ``VerifiedBody`` before this: authentication (the body's
    digest is part of the signature) comes before authorisation, so an altered body is a 401 for anyone."""

    def __init__(self, rule: policy.Rule) -> None:
        self.rule = rule

    async def __call__(self, request: Request, caller: CallerDep, node: NodeDep) -> Caller:
        patient = request.path_params.get("patient")
        if caller.kind == "patient" and isinstance(patient, str) and Web3.is_address(patient):
            check = partial(policy.require, self.rule, node, caller, Web3.to_checksum_address(patient))
            await run_sync(check, limiter=node.request_threads)  # a delegate is told apart on chain
        else:
            policy.require(self.rule, node, caller)
        return caller


#: the callers of the commonest rules (a route with another rule names it: ``Annotated[Caller, Depends(Allowed(...))]``)
LocalMemberDep = Annotated[Caller, Depends(Allowed(policy.OWN_SYSTEM))]
MemberOrAuditorDep = Annotated[Caller, Depends(Allowed(policy.MEMBER_OR_AUDITOR))]
SignedInDep = Annotated[Caller, Depends(Allowed(policy.ANYONE_SIGNED_IN))]


async def read_verified_body(request: Request, caller: CallerDep, node: NodeDep) -> bytes:
    """The request body, size-limited, and for signed requests checked against the signed digest."""
    body = await read_body(request, node.settings.limits.max_json_bytes)
    signed = caller.kind != "patient" or caller.via is not None
    if signed and hashlib.sha256(body).hexdigest() != request.headers.get(signing.DIGEST):
        reject("body-altered", caller.via or caller.address)
        raise Unauthenticated("body does not match the signed content digest", code="body-digest-mismatch")
    return bytes(body)


VerifiedBody = Annotated[bytes, Depends(read_verified_body)]
