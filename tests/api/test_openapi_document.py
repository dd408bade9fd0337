"""The OpenAPI document integrators build on: valid for the tools they use, declaring what the node does.

Checked with three validators not written here (openapi-spec-validator, @apidevtools/swagger-parser,
@redocly/cli lint with its recommended rules), and by generating a TypeScript client from the document,
compiling it strictly and making signed calls with it to a running node."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from ledger_api.apidocs.document import DECRYPT_HEADERS, RELEASE_HEADERS
from tests.api.conftest import World
from tests.utils.openapi_lint import lint
from tests.utils.records import fetch, grant, upload

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "node_modules" / ".bin"


def _document(world: World) -> dict:
    with world.node.anonymous() as client:
        return client.get("/openapi.json").json()


def _once(world: World) -> None:
    """The document and the client do not depend on the chain or the database: checked on one of the two."""
    if world.db_kind != "sqlite":
        pytest.skip("checked on the eth-tester + SQLite node (the document is the same on both)")


def test_three_independent_validators_report_no_error(world: World) -> None:
    _once(world)
    results = lint(_document(world))
    for result in results:
        print(f"--- {result.tool}: {result.errors} errors\n{result.output}")  # the closing note quotes these
    assert {r.tool: r.errors for r in results} == {r.tool: 0 for r in results}


def test_every_error_is_declared_as_problem_json_with_retry_after_where_it_applies(world: World) -> None:
    document = _document(world)
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if status[0] in "45":
                    assert list(response["content"]) == ["application/problem+json"], (method, path, status)
                if status in ("429", "503"):
                    assert "Retry-After" in response["headers"], (method, path, status)
            assert "400" in operation["responses"], (method, path)


def test_the_download_headers_a_client_needs_are_documented_and_are_the_ones_sent(world: World) -> None:
    document = _document(world)
    declared = document["paths"]["/v1/records/{record_id}/content"]["get"]["responses"]["200"]["headers"]
    assert set(RELEASE_HEADERS) | set(DECRYPT_HEADERS) <= set(declared)
    record_id = upload(world).json()["id"]
    grant(world, world.b.address)
    sent = fetch(world, world.b, record_id)
    assert sent.status_code == 200
    custom = {name.lower() for name in sent.headers if name.lower().startswith("x-medledger-")}
    assert custom == {name.lower() for name in declared if name.lower().startswith("x-medledger-")}


def test_uploads_are_declared_with_the_nodes_real_limit(world: World) -> None:
    document = _document(world)
    body = document["paths"]["/v1/records"]["post"]["requestBody"]["content"]["application/octet-stream"]
    assert body["schema"]["maxLength"] == world.node.node.settings.limits.max_upload_bytes > 1 << 30
    assert document["servers"][0]["url"] == world.node.node.settings.public_url


def test_a_client_generated_from_the_document_compiles_and_makes_signed_calls(world: World) -> None:
    _once(world)
    build = ROOT / "tests" / "js" / f".build-{uuid.uuid4().hex[:8]}"  # inside the repo: node_modules resolve
    build.mkdir()
    try:
        (build / "openapi.json").write_text(json.dumps(_document(world)))
        subprocess.run(
            [str(BIN / "openapi-typescript"), "openapi.json", "-o", "api.d.ts"],
            cwd=build,
            check=True,
            capture_output=True,
            timeout=120,
        )
        shutil.copy(ROOT / "tests/js/generated_client.ts", build / "main.ts")
        signer = (ROOT / "clients/js/medledger-signer.mjs").as_posix()
        (build / "main.ts").write_text(
            (build / "main.ts").read_text().replace("../../clients/js/medledger-signer.mjs", signer)
        )
        (build / "tsconfig.json").write_text(
            json.dumps(
                {
                    "compilerOptions": {
                        "target": "es2022",
                        "module": "nodenext",
                        "moduleResolution": "nodenext",
                        "strict": True,
                        "skipLibCheck": True,
                        "outDir": "out",
                        "allowJs": False,
                    },
                    "files": ["main.ts"],
                }
            )
        )
        (build / "package.json").write_text('{"type": "module"}')
        compiled = subprocess.run(
            [str(BIN / "tsc"), "-p", "tsconfig.json"], cwd=build, capture_output=True, text=True, timeout=300
        )
        assert compiled.returncode == 0, compiled.stdout + compiled.stderr
        node = world.node.node
        run = subprocess.run(
            [
                "node",
                "out/main.js",
                world.node.url,
                str(node.chain_id),
                node.address,
                "0x" + world.a.account.key.hex(),
                world.patient.address,
            ],
            cwd=build,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        answer = json.loads(run.stdout)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    assert {m["account"] for m in answer["members"]} >= {world.a.address, world.b.address}
    assert answer["domain"]["chain_id"] == node.chain_id and answer["domain"]["patient"] == world.patient.address
    assert answer["refusedStatus"] == 404 and answer["refusedType"] == "application/problem+json"
    assert answer["refused"]["code"] == "record-not-found"
