"""Consortium benchmarks: `medledger consortium up` start-up, B reading from A through both nodes
(64 KiB), and the fan-out over three members — all real processes, load from this one."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import httpx
from eth_account import Account
from medledger_crypto import MemberIdentity

from ledger_api.auth.signing import MemberAuth
from ledger_api.chain.backends import RpcBackend, free_port
from ledger_api.chain.deployment import Consortium, DeploymentManifest
from ledger_api.chain.devnet import dev_passphrase
from ledger_api.chain.transactions import TransactionSender
from ledger_api.cli.consortium import up_command
from ledger_api.consents.wire import terms_under_notice

ROUNDS = 200


def _p(values: list[float], q: int) -> float:
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 2)


def run() -> dict[str, float]:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="medledger-bench-consortium-") as tmp:
        data, rpc, base = Path(tmp), free_port(), free_port(3)  # consortium up: 3 members on base, base+1, base+2
        started = time.monotonic()
        up = subprocess.Popen(
            up_command(data, rpc_port=rpc, base_port=base), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        lines: list[str] = []
        threading.Thread(target=lambda: lines.extend(iter(up.stdout.readline, "")), daemon=True).start()
        try:
            while not any("press Ctrl-C" in line for line in lines):
                if up.poll() is not None or time.monotonic() - started > 120:
                    raise RuntimeError("consortium did not start:\n" + "".join(lines))
                time.sleep(0.05)
            figures["consortium.startup_s"] = round(time.monotonic() - started, 2)
            keys = data / "chain" / "keys"
            a, b = (MemberIdentity.load(keys / f"{slug}.json", dev_passphrase()) for slug in ("dapeng", "kuichong"))
            manifest = DeploymentManifest.load(data / "chain" / "deployment.json")
            chain = RpcBackend(f"http://127.0.0.1:{rpc}")
            patient = Account.create()
            chain.w3.provider.make_request("anvil_setBalance", [patient.address, hex(10**19)])  # type: ignore[arg-type]
            a_url, b_url = f"http://127.0.0.1:{base}", f"http://127.0.0.1:{base + 1}"
            with httpx.Client(
                base_url=a_url, timeout=30, auth=MemberAuth(a.account, manifest.chain_id, a.address)
            ) as client:
                record = client.post(
                    "/v1/records",
                    content=os.urandom(64 * 1024),
                    headers={"content-type": "application/octet-stream"},
                    params={"patient": patient.address, "category": "labs", "media_type": "application/pdf"},
                ).json()
            now = int(chain.w3.eth.get_block("latest")["timestamp"])
            Consortium(chain.w3, manifest, TransactionSender(chain.w3, patient)).consents.grant(
                patient.address,
                terms_under_notice(
                    grantees=(b.address,), categories=1, purposes=1, valid_from=now - 1, valid_until=now + 86_400
                ),
            )
            deadline = time.monotonic() + 60
            while not Consortium(chain.w3, manifest).records.exists(bytes.fromhex(record["id"])):
                if time.monotonic() > deadline:
                    raise RuntimeError("record not anchored")
                time.sleep(0.2)
            with httpx.Client(
                base_url=b_url, timeout=30, auth=MemberAuth(b.account, manifest.chain_id, b.address)
            ) as client:
                fetch, fanout = [], []
                params = {"custodian": a.address, "purpose": "treatment", "clinician": "bench"}
                for _ in range(ROUNDS):
                    t = time.perf_counter()
                    response = client.get(f"/v1/consortium/records/{record['id']}", params=params)
                    fetch.append((time.perf_counter() - t) * 1000)
                    assert response.status_code == 200 and len(response.content) == 64 * 1024, response.text
                for _ in range(ROUNDS // 4):
                    t = time.perf_counter()
                    response = client.get(
                        f"/v1/consortium/patients/{patient.address}/records", params={"purpose": "treatment"}
                    )
                    fanout.append((time.perf_counter() - t) * 1000)
                    assert response.status_code == 200 and all(
                        m["status"] == "returned" for m in response.json()["members"]
                    ), response.text
            figures["consortium.cross_member_fetch_p50_ms"] = _p(fetch, 50)
            figures["consortium.cross_member_fetch_p99_ms"] = _p(fetch, 99)
            figures["consortium.fanout_3_members_p50_ms"] = _p(fanout, 50)
        finally:
            up.send_signal(signal.SIGINT)
            up.wait(timeout=60)
    return figures


GOALS = {
    "consortium.cross_member_fetch_p50_ms": ("<=", 60.0),
    "consortium.fanout_3_members_p50_ms": ("<=", 120.0),
    "consortium.startup_s": ("<=", 20.0),
}

if __name__ == "__main__":
    print(run())
