"""The API documentation page: pinned local scripts only, and sandboxed away from the portal's storage
(issue: hostile patients and members, 15). Real HTTP and real headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from eth_account import Account
from playwright.sync_api import Browser

from ledger_api.chain.backends import EthTesterBackend
from tests.utils.nodes import Identities, deploy, start_node


@pytest.fixture(scope="module")
def docs_node(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("docs")
    backend = EthTesterBackend()
    ids = Identities()
    manifest = deploy(backend, ids, Account.create())
    with start_node(backend, manifest, ids.members["a"], tmp, f"sqlite:///{tmp / 'a.db'}") as node:
        yield node
    backend.close()


def test_the_docs_page_loads_nothing_from_outside_and_runs_sandboxed(docs_node) -> None:
    with docs_node.anonymous() as client:
        page = client.get("/docs")
        scripts = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assets = [client.get(url) for url in scripts]
        spec = client.get("/openapi.json", headers={"origin": "null"})
        redoc = client.get("/redoc")
    assert page.status_code == 200
    assert scripts and all(url.startswith("/api-docs/assets/") for url in scripts)  # no CDN, nothing remote
    assert all(a.status_code == 200 and len(a.content) > 100 for a in assets)
    policy = page.headers["content-security-policy"]
    assert policy.startswith("sandbox allow-scripts") and "allow-same-origin" not in policy
    assert "script-src 'self'" in policy and "https:" not in policy
    assert spec.headers["access-control-allow-origin"] == "*"  # the public document, for the opaque origin
    assert redoc.status_code == 404
    with docs_node.member_client(Account.create()) as client:  # no other route answers a cross-origin reader
        assert "access-control-allow-origin" not in client.get("/healthz", headers={"origin": "null"}).headers


def test_in_a_browser_the_docs_render_and_cannot_touch_the_portals_storage(
    docs_node, browser: Browser, artifacts: Path
) -> None:
    page = browser.new_page()
    try:
        page.goto(docs_node.url + "/portal/")
        page.evaluate("localStorage.setItem('medledger.keystore', 'secret keystore')")
        page.goto(docs_node.url + "/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=20_000)  # the operations, from /openapi.json
        assert "/v1/records" in page.inner_text("#swagger-ui")
        assert page.evaluate("self.origin") == "null"  # an opaque origin: the sandbox holds
        reached = page.evaluate(
            "(() => { try { return localStorage.getItem('medledger.keystore'); }"
            " catch (e) { return 'refused: ' + e.name; } })()"
        )
        assert reached.startswith("refused")
        page.screenshot(path=str(artifacts / "api-docs.png"))
    finally:
        page.close()


def test_production_nodes_serve_no_docs_page_unless_switched_on(docs_node) -> None:
    settings = docs_node.node.settings
    settings.api_docs = False
    try:
        with docs_node.anonymous() as client:
            assert client.get("/docs").status_code == 404
            assert client.get("/api-docs/assets/docs.js").status_code == 404
            assert client.get("/openapi.json").status_code == 200  # integrators still read the document
    finally:
        settings.api_docs = None
