"""Errors precise enough to act on: one stable code per cause, each explained at its ``type`` URI on the
node itself, in English and Chinese; 400 for what cannot be read, 422 for a value that is not acceptable."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ledger_api import errors
from ledger_api.core.problem_catalogue import CATALOGUE
from tests.api.conftest import World

ROOT = Path(__file__).resolve().parents[2]
CLASSES = {
    name: cls for name, cls in vars(errors).items() if isinstance(cls, type) and issubclass(cls, errors.LedgerError)
}


def _raised_codes() -> set[tuple[str, str, int]]:
    """(file:line, code, status) of every ``SomeError(..., code="...")`` in the node's code (not the CLI's)."""
    found = set()
    for path in (ROOT / "ledger_api").rglob("*.py"):
        if "cli" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in CLASSES:
                for keyword in node.keywords:
                    if keyword.arg == "code" and isinstance(keyword.value, ast.Constant):
                        where = f"{path.relative_to(ROOT)}:{node.lineno}"
                        found.add((where, keyword.value.value, CLASSES[node.func.id].status))
    return found


def test_every_code_the_node_raises_is_in_the_catalogue_with_the_same_status() -> None:
    raised = _raised_codes()
    assert len(raised) > 80
    for where, code, status in raised:
        assert code in CATALOGUE, f"{where}: {code} is not in the catalogue"
        assert CATALOGUE[code].status == status, f"{where}: {code} is raised as {status}"
    for cls in CLASSES.values():
        if cls.code != "internal-error" or cls is errors.LedgerError:
            assert cls.code in CATALOGUE and CATALOGUE[cls.code].status == cls.status, cls.__name__


def test_every_entry_says_what_happened_and_how_to_fix_it_in_both_languages() -> None:
    for code, entry in CATALOGUE.items():
        assert all((entry.title, entry.what, entry.fix, entry.title_zh, entry.what_zh, entry.fix_zh)), code
        assert any("\u4e00" <= ch <= "\u9fff" for ch in entry.what_zh + entry.fix_zh), code


def test_a_problems_type_resolves_on_the_node_to_a_page_in_english_and_chinese(world: World) -> None:
    with world.node.member_client(world.a.account) as client:
        problem = client.get("/v1/records/" + "ab" * 32).json()
    assert problem["code"] == "record-not-found"
    assert problem["type"] == f"{world.node.node.settings.public_url}/problems/record-not-found"
    with world.node.anonymous() as client:  # public: the caller may not be able to sign anything
        english = client.get("/problems/record-not-found")
        chinese = client.get("/problems/record-not-found", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
        unknown = client.get("/problems/no-such-thing")
        index = client.get("/problems")
        catalogue = client.get("/problems.json").json()
    assert english.status_code == 200 and english.headers["content-type"].startswith("text/html")
    page = english.text
    assert "No such record here" in page and "无此记录" in page
    assert page.index("What happened") < page.index("发生了什么")
    assert chinese.text.index("发生了什么") < chinese.text.index("What happened")
    assert english.headers["content-security-policy"].startswith("default-src 'none'")  # no script runs there
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
    assert index.status_code == 200 and all(f"/problems/{code}" in index.text for code in CATALOGUE)
    assert set(catalogue) == set(CATALOGUE)


@pytest.mark.parametrize(
    ("request_", "status", "code"),
    [
        (
            lambda c: c.post("/v1/consents", content=b"{", headers={"content-type": "application/json"}),
            400,
            "json-malformed",
        ),
        (
            lambda c: c.post("/v1/consents", content=b'{"a":1,"a":2}', headers={"content-type": "application/json"}),
            400,
            "json-duplicate-key",
        ),
        (lambda c: c.get("/v1/access-log", params=[("after", "1"), ("after", "2")]), 400, "query-repeated-key"),
        (lambda c: c.post("/v1/consents", json={"patient": "0x12"}), 422, "validation-error"),
        (lambda c: c.get("/v1/access-log", params={"after": "minus one"}), 422, "validation-error"),
        (lambda c: c.get("/v1/records/not-hex"), 422, "validation-error"),
    ],
)
def test_400_is_for_what_cannot_be_read_and_422_for_a_value_that_is_not_acceptable(
    world: World, request_, status: int, code: str
) -> None:
    with world.node.member_client(world.a.account) as client:
        response = request_(client)
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    if status == 422:
        assert response.json()["field"]
