"""One place that turns errors into RFC 9457 problem+json responses.

Domain errors carry their status and stable code; request validation errors become 422 with the
offending fields named; anything unexpected is a 500 with no internals shown (and logged).
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from ledger_api.errors import LedgerError

log = structlog.get_logger("medledger.api")
PROBLEM = "application/problem+json"


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    field: str | None = None
    errors: list[dict[str, Any]] | None = None
    #: a relay refused for a nonce still on its way (``nonce-pending``): the relay to follow instead
    relay_id: int | None = None
    #: a consent signature made under another EIP-712 domain (``signature-wrong-signer``): the expected one
    expected_chain_id: int | None = None
    expected_verifying_contract: str | None = None


def type_uri(code: str, base: str | None) -> str:
    """Where the problem is explained: ``/problems/<code>`` on the node itself (absolute when the node's
    public URL is known; RFC 9457 resolves a relative reference against the request URL otherwise)."""
    return f"{(base or '').rstrip('/')}/problems/{code}"


def public_base(app: Any) -> str | None:
    """The node's public URL, from the app serving the request (None outside a node's app)."""
    node = getattr(getattr(app, "state", None), "node", None)
    return node.settings.public_url if node is not None else None


def problem_body(
    status: int, code: str, title: str, detail: str, *, base: str | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "type": type_uri(code, base),
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **{k: v for k, v in extra.items() if v is not None},
    }


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    retry_after_s: int | None = None,
    base: str | None = None,
    **extra: Any,
) -> JSONResponse:
    if retry_after_s is None and status == 503:
        retry_after_s = 5
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else None
    return JSONResponse(
        problem_body(status, code, title, detail, base=base, **extra),
        status_code=status,
        media_type=PROBLEM,
        headers=headers,
    )


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations of the problem responses a route can give."""
    return {status: {"model": Problem, "content": {PROBLEM: {}}} for status in statuses}


def install(app: FastAPI) -> None:
    @app.exception_handler(LedgerError)
    async def _domain(request: Request, exc: LedgerError) -> JSONResponse:
        if exc.status >= 500:
            log.warning("request_failed", code=exc.code, detail=exc.detail)
        return problem(
            exc.status,
            exc.code,
            exc.title,
            exc.detail,
            retry_after_s=getattr(exc, "retry_after_s", None),
            base=public_base(request.app),
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        first = errors[0] if errors else {"field": None, "message": "invalid request"}
        return problem(
            422,
            "validation-error",
            "Invalid value",
            f"{first['field']}: {first['message']}",
            field=first["field"],
            errors=errors,
            base=public_base(request.app),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        return problem(exc.status_code, code, str(exc.detail), str(exc.detail), base=public_base(request.app))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected_error", error=type(exc).__name__)
        return problem(
            500,
            "internal-error",
            "Internal error",
            "the node failed unexpectedly; it was logged",
            base=public_base(request.app),
        )


def linked(
    errors: dict[int | str, dict[str, Any]], status: int, **targets: tuple[str, dict[str, str]]
) -> dict[int | str, dict[str, Any]]:
    """``errors`` plus OpenAPI links on the success response: where its values lead next.

    ``targets``: link name -> (operationId, {parameter: runtime expression}). Clients (and the
    stateful fuzzing in the tests) follow them, e.g. from an upload to the record it created.
    """
    links = {
        name: {"operationId": operation, "parameters": parameters} for name, (operation, parameters) in targets.items()
    }
    return {**errors, status: {"description": "Success", "links": links}}
