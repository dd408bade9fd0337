"""JSON request bodies read after the signature check (the digest covers the raw bytes)."""

from __future__ import annotations

from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from ledger_api.core import jsontext
from ledger_api.errors import BadRequest, UnsupportedMediaType

M = TypeVar("M", bound=BaseModel)


def json_body(model: type[BaseModel]) -> dict:
    """OpenAPI: this route reads a JSON body of ``model`` (parsed by hand after the signature check)."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}


def parse_json(request: Request, body: bytes, model: type[M]) -> M:
    """Parses a JSON body into ``model``: 415 for another content type, 400/422 naming the problem."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise UnsupportedMediaType("send application/json")
    try:
        data = jsontext.loads(body)
    except (jsontext.JsonTooDeep, jsontext.DuplicateKey) as exc:
        raise BadRequest(f"body: {exc}") from None
    except ValueError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "body"
        raise BadRequest(f"{field}: {first['msg']}", field=field) from None
