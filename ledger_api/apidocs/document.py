"""The node's OpenAPI 3.1 document, finished so tools not written here accept it.

FastAPI generates the paths from the routes; this module adds what it cannot know and fixes what it
gets wrong for this API, once, after generation:

- **Security.** Who may call an operation is decided by the route's caller dependency
  (``auth.dependencies``); each operation gets the matching security requirements: a signed member
  request (five ``X-MedLedger-*`` headers, all required together, see docs/request-signature.md), a
  patient's bearer session, or a member relaying a patient's proof. Public operations say so with
  ``security: []``.
- **Schemas referenced, not inlined.** Bodies read by hand after the signature check
  (``core.bodies.json_body``) carry pydantic's ``$defs``; they are moved to ``components/schemas``
  so every ``$ref`` resolves from the document root.
- **Errors as sent.** Every 4xx/5xx answer is ``application/problem+json`` (RFC 9457), with
  ``Retry-After`` documented on 429 and 503.
- **Response headers** of the content downloads, which a client needs to decrypt and to audit.
- **The upload limit** is the node's configured one, and ``servers`` names the node's public URL.
"""

from __future__ import annotations

import json
from typing import Any, cast

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from ledger_api.auth import dependencies, policy
from ledger_api.core import headers as header_names
from ledger_api.core.config import Settings
from ledger_api.core.problems import PROBLEM, Problem

SPEC = "docs/request-signature.md in the MedLedger repository"
#: the five headers of a signed member request, each an apiKey scheme so tools list them all
MEMBER_HEADERS = {
    "memberSigner": (header_names.SIGNER, "The signer's account (EIP-55 checksummed address)."),
    "memberTimestamp": (header_names.TIMESTAMP, "Unix seconds when the request was signed."),
    "memberNonce": (header_names.NONCE, "32 to 128 lowercase hex characters, never used before by this signer."),
    "memberContentDigest": (
        header_names.CONTENT_SHA256,
        "Lowercase hex SHA-256 of the exact body bytes (of the empty string when there is no body).",
    ),
    "memberSignature": (header_names.SIGNATURE, "EIP-191 signature (65 bytes, hex) over the signature base."),
}
MEMBER: dict[str, list[str]] = {name: [] for name in MEMBER_HEADERS}
PATIENT_SESSION: dict[str, list[str]] = {"patientSession": []}
PATIENT_PROOF: dict[str, list[str]] = {**MEMBER, "patientProof": []}

#: headers of a released record: what a client needs to check, decrypt and cite the release
RELEASE_HEADERS = {
    header_names.RECORD_ID: ("string", "The record id (64 hex characters)."),
    header_names.VERSION: ("integer", "The version released."),
    header_names.CUSTODIAN: ("string", "The custodian member's account."),
    header_names.PATIENT: ("string", "The patient's account."),
    header_names.CONTENT_HASH: ("string", "Hex hash of the ciphertext as anchored on chain."),
    header_names.BASIS: (
        "string",
        "The grounds of the release: `consent:<id>`, `break-glass:<id>`, `patient` or `custodian`.",
    ),
}
DECRYPT_HEADERS = {
    header_names.SEALED_BY: (
        "string",
        "The member whose key context sealed the data key (part of the decryption context).",
    ),
    header_names.CATEGORY: ("integer", "The record's category code (part of the decryption context)."),
    header_names.MEDIA_TYPE: ("string", "The plaintext's media type."),
    header_names.WRAPPED_KEY: ("string", "Base64 of the data key wrapped for the requester's HPKE key."),
    header_names.ACCESS_SEQUENCE: ("integer", "This release's sequence in the custodian's access log."),
}
ACROSS_HEADERS = {
    header_names.CUSTODIAN_ACCESS_SEQUENCE: ("integer", "The release's sequence in the custodian's access log.")
}
#: sent when the ciphertext is served from its file (large records): standard caching validators
FILE_HEADERS = {
    "ETag": {
        "description": "Validator of the stored ciphertext file (large records only).",
        "required": False,
        "schema": {"type": "string"},
    },
    "Last-Modified": {
        "description": "When the stored ciphertext file was written (large records only).",
        "required": False,
        "schema": {"type": "string"},
    },
    "Accept-Ranges": {
        "description": "`bytes` when the ciphertext is served from its file.",
        "required": False,
        "schema": {"type": "string"},
    },
}
#: the recipient's copy of another member's record is data, never a page of this origin
SANDBOX_HEADERS = {
    "X-Content-Type-Options": {"description": "Always `nosniff`.", "schema": {"type": "string"}},
    "Content-Security-Policy": {"description": "Always `sandbox; default-src 'none'`.", "schema": {"type": "string"}},
}
RETRY_AFTER = {"description": "Seconds to wait before retrying.", "schema": {"type": "integer", "minimum": 1}}
NO_STORE = {"description": "Always `no-store`: released records are never cached.", "schema": {"type": "string"}}


def declared_rule(route: APIRoute) -> policy.Rule | None:
    """The authorisation rule a route declares (its ``Allowed`` caller dependency), if any."""
    stack = [route.dependant]
    while stack:
        current = stack.pop()
        if isinstance(current.call, dependencies.Allowed):
            return current.call.rule
        stack.extend(current.dependencies)
    return None


def _uses(route: APIRoute, dependency: object) -> bool:
    stack = [route.dependant]
    while stack:
        current = stack.pop()
        if current.call is dependency:
            return True
        stack.extend(current.dependencies)
    return False


def security_for(route: APIRoute) -> list[dict[str, list[str]]]:
    """The security requirements of one route, from the rule it declares: the signed-member headers, and
    a patient's session or proof where the rule lets patients through."""
    rule = declared_rule(route)
    if rule is not None:
        return [MEMBER, PATIENT_SESSION, PATIENT_PROOF] if rule.patients_may else [MEMBER]
    if _uses(route, dependencies.get_caller):
        return [MEMBER, PATIENT_SESSION, PATIENT_PROOF]
    return []


def api_routes(routes: list[Any]) -> list[APIRoute]:
    """The app's API routes, looking inside included routers (FastAPI keeps them wrapped)."""
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif (included := getattr(route, "original_router", None)) is not None:
            found.extend(api_routes(included.routes))
    return found


def _headers(spec: dict[str, tuple[str, str]]) -> dict[str, Any]:
    return {
        name: {"description": text, "required": True, "schema": {"type": kind}} for name, (kind, text) in spec.items()
    }


def _security_schemes() -> dict[str, Any]:
    schemes: dict[str, Any] = {
        name: {
            "type": "apiKey",
            "in": "header",
            "name": header,
            "description": f"{text} One of the five headers of a signed member request; see {SPEC}.",
        }
        for name, (header, text) in MEMBER_HEADERS.items()
    }
    schemes["patientSession"] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "MedLedger session",
        "description": "A patient's session token from POST /v1/auth/session (Sign-In with Ethereum, EIP-4361).",
    }
    schemes["patientProof"] = {
        "type": "apiKey",
        "in": "header",
        "name": header_names.ON_BEHALF_OF,
        "description": "A patient's signed proof, relayed by a member system together with its own signed request.",
    }
    return schemes


def _hoist_defs(node: Any, found: dict[str, Any]) -> Any:
    """Moves pydantic ``$defs`` out of inline schemas into ``found`` (they become component schemas)."""
    if isinstance(node, dict):
        for name, schema in node.pop("$defs", {}).items():
            found[name] = _hoist_defs(schema, found)
        return {k: _hoist_defs(v, found) for k, v in node.items()}
    if isinstance(node, list):
        return [_hoist_defs(v, found) for v in node]
    return node


def _problem_responses(operation: dict[str, Any]) -> None:
    for status, response in operation.get("responses", {}).items():
        if status[0] not in "45":
            continue
        response["content"] = {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        response.setdefault("description", "Problem")
        if status in ("429", "503"):
            response["headers"] = {"Retry-After": RETRY_AFTER}


def _json_request_bodies(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Inline body schemas of named models become references to components."""
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content and "title" in content.get("schema", {}) and "$ref" not in content["schema"]:
        name = content["schema"]["title"]
        schemas.setdefault(name, content["schema"])
        content["schema"] = {"$ref": f"#/components/schemas/{name}"}


def build(app: FastAPI, settings: Settings) -> dict[str, Any]:
    """The finished document for ``app`` (cached on the app, as FastAPI does)."""
    if app.openapi_schema:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version="3.1.0",
        description=app.description,
        routes=app.routes,
        servers=[{"url": settings.public_url.rstrip("/") or "/", "description": "this member node"}],
        license_info={"name": "Apache-2.0", "identifier": "Apache-2.0"},
    )
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for name in ("HTTPValidationError", "ValidationError"):  # replaced by problem+json
        schemas.pop(name, None)
    routes = {
        (method.lower(), route.path_format): route for route in api_routes(app.routes) for method in route.methods or ()
    }
    upload_limit = settings.limits.max_upload_bytes
    for path, item in document["paths"].items():
        for method, operation in item.items():
            route = routes.get((method, path))
            operation["security"] = security_for(route) if route else []
            # every request passes the request guard first: a repeated query key or an oversized body is refused
            operation["responses"].setdefault("400", {"description": "Bad request"})
            operation["responses"].setdefault("413", {"description": "Payload too large"})
            if operation["security"]:
                operation["responses"].setdefault("401", {"description": "Unauthenticated"})
            _problem_responses(operation)
            _json_request_bodies(operation, schemas)
            binary = operation.get("requestBody", {}).get("content", {}).get("application/octet-stream")
            if binary:
                binary["schema"]["maxLength"] = upload_limit
    hoisted: dict[str, Any] = {}
    document = _hoist_defs(document, hoisted)
    for name, schema in hoisted.items():
        document["components"]["schemas"].setdefault(name, schema)
    document = json.loads(json.dumps(document).replace('"#/$defs/', '"#/components/schemas/'))
    _release_headers(document)
    document["components"]["securitySchemes"] = _security_schemes()
    app.openapi_schema = document
    return cast(dict[str, Any], document)


def _release_headers(document: dict[str, Any]) -> None:
    paths = document["paths"]
    own = paths["/v1/records/{record_id}/content"]["get"]["responses"]["200"]
    own["headers"] = {
        **_headers(RELEASE_HEADERS),
        **_headers(DECRYPT_HEADERS),
        "Cache-Control": NO_STORE,
        **FILE_HEADERS,
    }
    own["description"] = "The ciphertext; the headers carry what decrypting it needs."
    across = paths["/v1/consortium/records/{record_id}"]["get"]["responses"]["200"]
    across["headers"] = {
        **_headers(RELEASE_HEADERS),
        **_headers(ACROSS_HEADERS),
        "Cache-Control": NO_STORE,
        **SANDBOX_HEADERS,
    }
    across["description"] = "The plaintext, checked against the hash anchored on chain."
