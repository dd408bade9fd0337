"""500 chain writes from concurrent requests on one member key: no nonce gap, nothing stuck.

400 uploads (each anchored by the outbox) and 100 break-glass declarations (sent on chain from the
request itself) arrive from 16 clients at once (twice that took 100 s of the suite's 20 minutes; the
contention is the same from the first few dozen on). Afterwards every transaction of the member is
mined, their nonces are exactly 0..n-1, and the chain's transaction count for the key is n.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from eth_account import Account
from sqlmodel import Session, select

from ledger_api.chain.backends import AnvilBackend
from ledger_api.outbox.models import OutboxItem
from tests.utils.nodes import Identities, deploy, start_node

pytestmark = pytest.mark.slow
UPLOADS, DECLARATIONS, CLIENTS = 400, 100, 16


def test_five_hundred_concurrent_writes_leave_no_nonce_gap_and_nothing_stuck(tmp_path: Path) -> None:
    ids = Identities()
    with AnvilBackend() as backend:
        manifest = deploy(backend, ids, Account.create(), break_glass_limit=1000)  # 100 declarations below
        member = ids.members["a"].address
        start_nonce = backend.w3.eth.get_transaction_count(member)
        patients = [Account.create().address for _ in range(8)]
        with start_node(
            backend, manifest, ids.members["a"], tmp_path, f"sqlite:///{tmp_path / 'a.db'}", run_outbox_worker=True
        ) as node:
            clients = [node.member_client(ids.members["a"].account) for _ in range(CLIENTS)]

            def write(index: int) -> tuple[str, int, str | None]:
                client = clients[index % CLIENTS]
                if index % 5 == 4:  # every fifth: a break-glass declaration, on chain within the request
                    response = client.post(
                        "/v1/emergency",
                        json={
                            "patient": patients[index % 8],
                            "reason_code": 1,
                            "clinician": f"dr-{index}",
                            "justification": "unconscious on arrival, no relatives reachable",
                        },
                    )
                    return "declare", response.status_code, response.json().get("tx_hash")
                response = client.post(
                    "/v1/records",
                    content=index.to_bytes(4, "big") * 64,
                    headers={"content-type": "application/octet-stream"},
                    params={"patient": patients[index % 8], "category": "labs", "media_type": "text/plain"},
                )
                return "upload", response.status_code, None

            with ThreadPoolExecutor(CLIENTS) as pool:
                results = list(pool.map(write, range(UPLOADS + DECLARATIONS)))
            for client in clients:
                client.close()
            assert {(kind, status) for kind, status, _ in results} == {("upload", 201), ("declare", 201)}

            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                with Session(node.node.engine) as session:
                    rows = list(session.exec(select(OutboxItem)))
                if all(r.state == "confirmed" for r in rows):
                    break
                assert not [r for r in rows if r.state == "failed"], [r.last_error for r in rows if r.state == "failed"]
                time.sleep(0.25)
            assert len(rows) == UPLOADS and all(r.state == "confirmed" for r in rows), "outbox rows stuck"

        declared = [tx for kind, _, tx in results if kind == "declare"]
        nonces = sorted([r.nonce for r in rows] + [backend.w3.eth.get_transaction(tx)["nonce"] for tx in declared])
        sent = backend.w3.eth.get_transaction_count(member)
        assert nonces == list(range(start_nonce, start_nonce + UPLOADS + DECLARATIONS))  # no gap, none twice
        assert sent == start_nonce + UPLOADS + DECLARATIONS
        assert backend.w3.eth.get_transaction_count(member, "pending") == sent  # nothing waiting in the pool
