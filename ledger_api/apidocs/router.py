"""The API's documentation page: Swagger UI from pinned local files, kept away from the portal's storage.

Why not FastAPI's default ``/docs``: it loads its scripts from a CDN without integrity checks, on the
same origin as the portal, whose browser storage holds patients' keystores; on a closed hospital
network it is blank. Here every script comes from ``swagger-ui-dist`` pinned in ``package.json``
and copied next to this module by ``make deps``, and the page is served with a
Content-Security-Policy ``sandbox`` without ``allow-same-origin``: the browser runs it as an opaque
origin, so even a compromised documentation script cannot read or write the portal's storage or
cookies. It fetches the public ``/openapi.json`` as a cross-origin reader (which that route allows).
"Try it out" is off: requests must be signed, which a browser page cannot do for a member. Production
nodes serve the page only when ``api_docs`` is switched on.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse

from ledger_api.auth.dependencies import NodeDep
from ledger_api.core.static_files import asset_response
from ledger_api.errors import NotFound

router = APIRouter(include_in_schema=False)
STATIC = Path(__file__).parent / "static"
PREFIX = "/api-docs/assets"
ASSETS = {
    "docs.js": "text/javascript; charset=utf-8",
    "vendor/swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "vendor/swagger-ui.css": "text/css; charset=utf-8",
}
HEADERS = {
    # opaque origin (no allow-same-origin): no access to the portal's storage, cookies or pages
    "Content-Security-Policy": "sandbox allow-scripts allow-popups; default-src 'none'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self'; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>MedLedger API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="{PREFIX}/vendor/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="{PREFIX}/vendor/swagger-ui-bundle.js"></script>
<script src="{PREFIX}/docs.js"></script></body></html>"""


def _enabled(node: NodeDep) -> None:
    if not node.settings.api_docs_enabled:
        raise NotFound("the API documentation page is off on this node (settings: api_docs)", code="api-docs-off")


@router.get("/docs", response_class=HTMLResponse)
def docs(node: NodeDep) -> HTMLResponse:
    _enabled(node)
    return HTMLResponse(PAGE, headers=HEADERS)


@router.get(PREFIX + "/{name:path}")
def asset(name: str, node: NodeDep) -> FileResponse:
    _enabled(node)
    return asset_response(STATIC, ASSETS, name, HEADERS, "documentation")
