"""PostgreSQL goes away (connections cut, then refused) and comes back: the node answers clear 503s
meanwhile, stores nothing half-way, and recovers by itself, without a restart."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from eth_account import Account

from ledger_api.chain.backends import AnvilBackend
from tests.utils.nodes import Identities, database, deploy, start_node
from tests.utils.postgres import server_port
from tests.utils.proxy import proxy

pytestmark = pytest.mark.slow


def test_database_down_gives_503s_and_the_node_recovers_without_restart(tmp_path: Path) -> None:
    ids = Identities()
    with AnvilBackend() as backend, database("postgresql", tmp_path) as url, proxy(server_port()) as pg:
        manifest = deploy(backend, ids, Account.create())
        via_proxy = url.replace(f"127.0.0.1:{server_port()}", pg.url_host)
        patient = Account.create().address
        with (
            start_node(backend, manifest, ids.members["a"], tmp_path, via_proxy, run_outbox_worker=True) as node,
            node.member_client(ids.members["a"].account) as hospital,
        ):

            def upload():
                return hospital.post(
                    "/v1/records",
                    content=b"HbA1c 6.1 %",
                    params={"patient": patient, "category": "labs", "media_type": "text/plain"},
                    headers={"content-type": "application/octet-stream"},
                )

            first = upload()
            assert first.status_code == 201, first.text
            blobs_before = sorted(p for p in node.node.blob_dir.rglob("*") if p.is_file())

            pg.down()  # open connections cut, new ones refused
            for response in (
                upload(),
                hospital.get(f"/v1/records/{first.json()['id']}"),
                hospital.get(f"/v1/patients/{patient}/records"),
                hospital.get("/v1/access-log"),
            ):
                assert response.status_code == 503, response.text
                assert response.json()["code"] == "database-unavailable"
                assert "Traceback" not in response.text and "psycopg" not in response.text
            assert hospital.get("/readyz").status_code == 503
            assert hospital.get("/healthz").status_code == 200  # alive: do not restart it, it is waiting
            assert sorted(p for p in node.node.blob_dir.rglob("*") if p.is_file()) == blobs_before

            pg.up()
            deadline = time.monotonic() + 20
            while (answer := upload()).status_code != 201 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert answer.status_code == 201, answer.text
            listed = hospital.get(f"/v1/patients/{patient}/records").json()
            assert {r["id"] for r in listed} == {first.json()["id"], answer.json()["id"]}  # nothing from the outage
            while any(r["versions"][0]["anchoring"] != "anchored" for r in listed) and time.monotonic() < deadline:
                time.sleep(0.2)
                listed = hospital.get(f"/v1/patients/{patient}/records").json()
            assert all(r["versions"][0]["anchoring"] == "anchored" for r in listed)
            assert hospital.get("/readyz").status_code == 200
