"""Serves the patient portal: one server-rendered page (in the browser's language) and its scripts.

The portal is served by every member node, on the same origin as its API, so the page's script
calls the API with no cross-origin rules to relax, and a strict Content-Security-Policy allows
scripts, styles and connections from this origin only (hospitals run closed networks: nothing is
fetched from a CDN). The page holds no patient data; the script fetches it after sign-in.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ledger_api.auth.dependencies import NodeDep
from ledger_api.core.static_files import asset_response
from ledger_api.errors import LedgerError
from ledger_api.node import Node
from ledger_api.portal import i18n

router = APIRouter(include_in_schema=False)
_HERE = Path(__file__).parent
STATIC = _HERE / "static"
#: every file the portal serves (anything else is a 404: no directory listing, no path to walk)
ASSETS = {
    "portal.js": "text/javascript; charset=utf-8",
    "own-records.js": "text/javascript; charset=utf-8",
    "hospital-workflows.js": "text/javascript; charset=utf-8",
    "vendor/qrcode.mjs": "text/javascript; charset=utf-8",
    "portal.css": "text/css; charset=utf-8",
    "vendor/ethers.min.js": "text/javascript; charset=utf-8",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "frame-src blob:; connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@cache
def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(_HERE / "templates"), autoescape=select_autoescape(["html"]))


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/portal/", status_code=307)


@router.get("/portal")
def portal_no_slash() -> RedirectResponse:
    return RedirectResponse("/portal/", status_code=307)


@router.get("/portal/", response_class=HTMLResponse)
def portal(request: Request, node: NodeDep) -> HTMLResponse:
    """The page, in the language the browser asks for (Chinese or English)."""
    language = i18n.negotiate(request.headers.get("accept-language"))
    node_name = _member_name(node, language)
    messages = i18n.MESSAGES[language]
    config = {
        "language": language,
        "messages": messages,
        **i18n.vocabulary(language),
        "node": {"name": node_name, "account": node.address, "chain_id": node.chain_id},
        # every member under its name in the page's language, where the consortium gave one
        "names": {
            account.lower(): names.get(language) or names.get("en")
            for account, names in node.settings.member_names.items()
            if names.get(language) or names.get("en")
        },
    }
    html = (
        _environment()
        .get_template("portal.html")
        .render(lang="zh-CN" if language == "zh" else "en", t=messages, config=config, node_name=node_name)
    )
    return HTMLResponse(
        html,
        headers={
            **SECURITY_HEADERS,
            "Content-Language": language,
            "Vary": "Accept-Language",
            "Cache-Control": "no-store",
        },
    )


def _member_name(node: Node, language: str) -> str:
    """The hospital's name in the page's language, else as the consortium registered it (the page still
    renders if the chain is down)."""
    local = node.settings.member_names.get(node.address.lower(), {})
    if local.get(language):
        return str(local[language])
    try:
        return node.chain.registry.member(node.address).name or node.settings.node_name
    except LedgerError:
        return node.settings.node_name


@router.get("/portal/static/{name:path}")
def asset(name: str) -> FileResponse:
    return asset_response(STATIC, ASSETS, name, {**SECURITY_HEADERS, "Cache-Control": "no-cache"}, "portal")
