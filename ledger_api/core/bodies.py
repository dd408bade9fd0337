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
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]} for e in exc.errors()]
        first = errors[0]
        raise InvalidValue(f"{first['field']}: {first['message']}", field=first["field"], errors=errors) from None
