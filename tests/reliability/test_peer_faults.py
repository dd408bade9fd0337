"""Another member's node is slow or down during a cross-member fetch and the fan-out: the deadline
holds, the answer says which member failed, and the rest of the consortium's answer stands."""

from __future__ import annotations

import hashlib
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from eth_account import Account

from ledger_api.chain.backends import AnvilBackend, free_port
from ledger_api.chain.deployment import Consortium
from ledger_api.chain.transactions import TransactionSender
from ledger_api.consents.wire import terms_under_notice
from ledger_api.core.config import PeerSettings
from ledger_api.vocabulary import Category, Purpose, bitset
from tests.utils.nodes import Identities, deploy, loopback_listener, start_node
from tests.utils.proxy import Proxy

pytestmark = pytest.mark.slow
LAB = b"potassium 4.1 mmol/L\n" * 50


def test_a_slow_or_down_custodian_costs_a_deadline_not_the_request(tmp_path: Path) -> None:
    listeners = {slug: loopback_listener() for slug in ("a", "b")}
    b_proxy = Proxy(listeners["b"].getsockname()[1])
    ids = Identities(
        {
            "a": f"http://127.0.0.1:{listeners['a'].getsockname()[1]}",
            "b": f"http://127.0.0.1:{b_proxy.port}",
            "c": f"http://127.0.0.1:{free_port()}",
        }
    )  # c is registered, never started
    with AnvilBackend() as backend, ExitStack() as stack:
        manifest = deploy(backend, ids, Account.create())
        b_proxy.up()
        stack.callback(b_proxy.close)
        a = stack.enter_context(
            start_node(
                backend,
                manifest,
                ids.members["a"],
                tmp_path / "a",
                f"sqlite:///{tmp_path / 'a.db'}",
                listener=listeners["a"],
                peers=PeerSettings(timeout_s=1.5),
            )
        )
        b = stack.enter_context(
            start_node(
                backend,
                manifest,
                ids.members["b"],
                tmp_path / "b",
                f"sqlite:///{tmp_path / 'b.db'}",
                listener=listeners["b"],
            )
        )
        patient = Account.create()
        backend.fund(patient.address, 10**19)
        with b.member_client(ids.members["b"].account) as b_system:
            uploaded = b_system.post(
                "/v1/records",
                content=LAB,
                headers={"content-type": "application/octet-stream"},
                params={"patient": patient.address, "category": "labs", "media_type": "text/plain"},
            )
        assert uploaded.status_code == 201, uploaded.text
        b.drain()
        now = int(backend.w3.eth.get_block("latest")["timestamp"])
        Consortium(backend.w3, manifest, TransactionSender(backend.w3, patient)).consents.grant(
            patient.address,
            terms_under_notice(
                grantees=(ids.members["a"].address,),
                categories=bitset([Category.LABS]),
                purposes=bitset([Purpose.TREATMENT]),
                valid_from=now - 1,
                valid_until=now + 3600,
            ),
        )
        record = uploaded.json()["id"]
        hospital = stack.enter_context(a.member_client(ids.members["a"].account))

        def fetch():
            started = time.monotonic()
            response = hospital.get(
                f"/v1/consortium/records/{record}",
                params={"custodian": ids.members["b"].address, "purpose": "treatment", "clinician": "dr-wu"},
            )
            return response, time.monotonic() - started

        def fan_out():
            response = hospital.get(
                f"/v1/consortium/patients/{patient.address}/records",
                params={"purpose": "treatment", "deadline_ms": 1000},
            )
            assert response.status_code == 200, response.text
            return {m["member"]: m for m in response.json()["members"]}, response.json()["elapsed_ms"]

        healthy, _ = fetch()
        assert healthy.status_code == 200 and hashlib.sha256(healthy.content).digest() == hashlib.sha256(LAB).digest()

        b_proxy.delay_s = 5.0  # B answers, but far too late
        slow, took = fetch()
        assert slow.status_code == 503 and slow.json()["code"] == "peer-unavailable", slow.text
        assert took < 4.0, f"the 1.5 s peer timeout held for {took:.1f} s"
        members, elapsed = fan_out()
        assert members[ids.members["b"].address]["status"] == "unreachable"
        # whichever fires first: the request's own timeout or the fan-out's deadline
        assert members[ids.members["b"].address]["detail"] in ("ReadTimeout", "no answer within 1.0s")
        assert members[ids.members["a"].address]["status"] == "returned" and elapsed < 2500  # 1 s deadline + slack

        b_proxy.delay_s = 0.0
        b_proxy.down()  # B's node gone: connections refused
        down, took = fetch()
        assert down.status_code == 503 and down.json()["code"] == "peer-unavailable" and took < 2.0
        members, _ = fan_out()
        assert {m["status"] for k, m in members.items() if k != ids.members["a"].address} == {"unreachable"}

        b_proxy.up()  # B back: the same request works again, nothing to restart
        again, _ = fetch()
        assert again.status_code == 200 and again.content == LAB
