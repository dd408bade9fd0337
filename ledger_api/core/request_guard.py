"""Rules every request meets before any route sees it: a bounded body, and each query key once.

Bodies are bounded while they stream, never after they have been buffered. Two layers, because
either alone leaves a gap:

- ``RequestGuard``, an ASGI middleware in front of the whole app, refuses a declared ``Content-Length``
  over the node's largest body (an upload) before reading a byte, and stops any body (chunked or
  lying about its length) the moment it passes that size. No route can forget it.
- ``read_body`` is what a route uses for its own, much smaller limit (a sign-in message, a JSON
  command): the declared length first, then a running count as chunks arrive.

uvicorn reads at most a small window ahead of the app (flow control), so refusing early means the
rest of a hostile gigabyte is never taken off the socket: the connection is closed after the 413.

A query key given twice (``?purpose=treatment&purpose=research``) is refused with 400: frameworks
pick one of the values (the last), a signer may have meant the other, and what is logged as the
purpose of an access must be exactly what was signed. No route takes a repeated key.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger_api.core.problems import PROBLEM, problem_body, public_base
from ledger_api.errors import BadRequest, PayloadTooLarge


def declared_length(headers: list[tuple[bytes, bytes]] | dict[str, str]) -> int | None:
    """The request's ``Content-Length`` as a number, None when absent; ``BadRequest`` if not a number."""
    if isinstance(headers, dict):
        raw = headers.get("content-length")
    else:
        raw = next((v.decode("latin-1") for k, v in headers if k == b"content-length"), None)
    if raw is None:
        return None
    if not raw.strip().isdigit():
        raise BadRequest("Content-Length is not a number", code="content-length-invalid")
    return int(raw)


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it is known to exceed ``limit`` bytes."""
    declared = declared_length(dict(request.headers))
    if declared is not None and declared > limit:
        raise PayloadTooLarge(
            f"body of {declared} bytes exceeds this route's {limit}-byte limit", code="payload-too-large"
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"body exceeds this route's {limit}-byte limit")
    return bytes(body)


def query_problem(query: bytes) -> tuple[str, str] | None:
    """(code, detail) when the query string is not one the signature rules can read, else None:
    not ASCII, not UTF-8 once percent-decoded, or a key given twice (docs/request-signature.md)."""
    try:
        pairs = parse_qsl(query.decode("ascii"), keep_blank_values=True, errors="strict")
    except UnicodeDecodeError:
        return "query-not-utf8", "the query string must be ASCII, percent-encoding UTF-8"
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return "query-repeated-key", f"query parameter {key!r} is given more than once"
        seen.add(key)
    return None


class RequestGuard:
    """Refuses a repeated query key, and any request body larger than ``limit`` bytes, on every route."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused = query_problem(scope.get("query_string", b""))
        if refused is not None:
            await self._refuse(scope, send, 400, refused[0], "Bad request", refused[1])
            return
        try:
            declared = declared_length(scope["headers"])
        except BadRequest as exc:
            await self._refuse(scope, send, 400, exc.code, "Bad request", exc.detail)
            return
        if declared is not None and declared > self.limit:
            await self._refuse(
                scope,
                send,
                413,
                "payload-too-large",
                "Payload too large",
                f"body of {declared} bytes exceeds the node's {self.limit}-byte limit",
            )
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise PayloadTooLarge(f"body exceeds the node's {self.limit}-byte limit")
            return message

        await self.app(scope, counted, send)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, status: int, code: str, title: str, detail: str) -> None:
        body = json.dumps(problem_body(status, code, title, detail, base=public_base(scope.get("app")))).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", PROBLEM.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class PublicDocumentCors:
    """``/openapi.json`` is public: any origin may read it (the sandboxed docs page has an opaque one).

    Only that document: no other route answers a cross-origin reader, so a page elsewhere can never
    read a patient's or a member's data with the visitor's session.
    """

    PATH = "/openapi.json"

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") != self.PATH:
            await self.app(scope, receive, send)
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"access-control-allow-origin", b"*")]}
            await send(message)

        await self.app(scope, receive, with_cors)
