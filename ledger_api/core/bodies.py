"""JSON request bodies read after the signature check (the digest covers the raw bytes)."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from ledger_api.core import jsontext
from ledger_api.errors import BadRequest, InvalidValue, UnsupportedMediaType

M = TypeVar("M", bound=BaseModel)


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI: this route reads a JSON body of ``model`` (parsed by hand after the signature check)."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


def parse_json(request: Request, body: bytes, model: type[M]) -> M:
    """Parses a JSON body into ``model``: 415 for another content type; 400 when the bytes are not JSON
    (syntax), 422 when the JSON breaks the model (a value), naming the field: the one rule for both,
    the same as for query and path values (see the problem catalogue)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise UnsupportedMediaType("send application/json")
    try:
        data = jsontext.loads(body)
    except jsontext.JsonTooDeep as exc:
        raise BadRequest(f"body: {exc}", code="json-too-deep") from None
    except jsontext.DuplicateKey as exc:
        raise BadRequest(f"body: {exc}", code="json-duplicate-key") from None
    except ValueError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}", code="json-malformed") from None
    where = _nul_at(data)
    if where is not None:
        raise InvalidValue(
            f"{where}: text may not contain the NUL character (U+0000)", field=where, code="nul-character"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]} for e in exc.errors()]
        first = errors[0]
        raise InvalidValue(f"{first['field']}: {first['message']}", field=first["field"], errors=errors) from None


def _nul_at(value: Any, path: str = "") -> str | None:
    """Where a JSON value holds U+0000 in a string or a key, if anywhere. No database text type stores it
    (PostgreSQL refuses it outright), and nothing a person writes contains it: refused before anything
    is done, rather than failing half-way after a step that cannot be undone (a chain write)."""
    if isinstance(value, str):
        return (path or "body") if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            at = f"{path}.{key}" if path else str(key)
            if "\x00" in key:
                return at
            found = _nul_at(item, at)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_at(item, f"{path}.{index}" if path else str(index))
            if found is not None:
                return found
    return None
