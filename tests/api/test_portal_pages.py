"""The portal's page and files as each node serves them: language, strict headers, no path to walk."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ledger_api.portal import i18n
from ledger_api.portal.router import STATIC
from tests.api.conftest import World

PORTAL = Path(i18n.__file__).parent


def test_the_root_leads_to_the_portal(world: World) -> None:
    with world.node.anonymous() as client:
        response = client.get("/")
    assert response.status_code == 307 and response.headers["location"] == "/portal/"


@pytest.mark.parametrize(
    ("accept", "language", "heading"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh", "MedLedger 患者门户"),
        ("en-GB,en;q=0.9", "en", "MedLedger patient portal"),
        ("en;q=0.2, zh-TW;q=0.8", "zh", "MedLedger 患者门户"),
        ("fr-FR, de;q=0.5", "en", "MedLedger patient portal"),
        ("", "en", "MedLedger patient portal"),
    ],
)
def test_the_page_speaks_the_browsers_language(world: World, accept: str, language: str, heading: str) -> None:
    with world.node.anonymous() as client:
        response = client.get("/portal/", headers={"Accept-Language": accept})
    assert response.status_code == 200 and response.headers["content-language"] == language
    assert f"<h1>{heading}</h1>" in response.text
    config = json.loads(
        re.search(r'<script type="application/json" id="portal-config">(.*?)</script>', response.text).group(1)
    )  # type: ignore[union-attr]
    assert config["language"] == language and config["node"]["account"] == world.node.node.address
    assert config["messages"] == i18n.MESSAGES[language]


def test_the_page_and_its_files_carry_a_strict_policy(world: World) -> None:
    with world.node.anonymous() as client:
        for path in ("/portal/", "/portal/static/portal.js", "/portal/static/vendor/ethers.min.js"):
            response = client.get(path)
            assert response.status_code == 200, path
            policy = response.headers["content-security-policy"]
            assert "script-src 'self'" in policy and "connect-src 'self'" in policy and "default-src 'none'" in policy
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["x-frame-options"] == "DENY"
        assert client.get("/portal/static/portal.js").headers["content-type"].startswith("text/javascript")
        page = client.get("/portal/").text
    # nothing is loaded from another origin (closed hospital networks) and no inline script runs
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert re.findall(r"<script(?![^>]*(src=\"/portal/static/|type=\"application/json\"))", page) == []


@pytest.mark.parametrize(
    "path",
    [
        "/portal/static/../router.py",
        "/portal/static/%2e%2e/router.py",
        "/portal/static/..%2Frouter.py",
        "/portal/static/templates/portal.html",
        "/portal/static/",
        "/portal/static/vendor/",
        "/portal/static/nothing.js",
    ],
)
def test_only_the_portals_own_files_are_served(world: World, path: str) -> None:
    with world.node.anonymous() as client:
        response = client.get(path)
    assert response.status_code == 404, (path, response.status_code)
    assert "def " not in response.text and "<html" not in response.text


def test_both_languages_say_everything_the_page_and_script_need() -> None:
    assert set(i18n.MESSAGES["en"]) == set(i18n.MESSAGES["zh"])
    script = (STATIC / "portal.js").read_text()
    template = (PORTAL / "templates" / "portal.html").read_text()
    used = set(re.findall(r'\bt\(\s*"([\w.\-]+)"', script)) | set(re.findall(r't\[["\']([\w.\-]+)["\']\]', template))
    # keys built at run time: statuses, anchoring states, reviews, member outcomes, history actions
    for prefix, values in (
        ("status", ["active", "not-yet-valid", "expired", "revoked", "pending"]),
        ("anchoring", ["anchored", "pending", "sent", "failed", "none"]),
        ("review", ["pending", "justified", "not-justified"]),
        ("member", ["unreachable", "denied", "error"]),
        ("history", ["read", "erase", "handover", "self_access", "restrict", "unrestrict"]),
    ):
        used |= {f"{prefix}.{value}" for value in values}
    assert used - set(i18n.MESSAGES["en"]) == set()
    placeholders = {key: set(re.findall(r"\{(\w+)\}", text)) for key, text in i18n.MESSAGES["en"].items()}
    assert {key: set(re.findall(r"\{(\w+)\}", text)) for key, text in i18n.MESSAGES["zh"].items()} == placeholders
