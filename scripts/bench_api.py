"""API benchmarks: a member node (its own ``medledger serve`` process, SQLite, anvil) loaded over
real HTTP from this process, with 64 KiB records and 1, 8 and 32 concurrent clients.

Requests are signed before the timed loop (the signature window is 60 s), so the figures are the
node's, not the load generator's signing. The node batches access-log anchors (up to 256 per
Merkle root, 1 s delay: the batch size the gas figures are measured at), as a hospital under load would configure it.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from eth_account import Account
from medledger_crypto import sign_typed, typed_data

from ledger_api.auth.signing import sign_headers
from ledger_api.chain.backends import free_port
from ledger_api.chain.clients import GrantTerms
from ledger_api.chain.deployment import Consortium
from ledger_api.chain.devnet import _passphrase, start_devnet
from ledger_api.chain.transactions import TransactionSender
from ledger_api.cli.consortium import ChainConfig, ConsortiumConfig, MemberConfig, _node_env, wait_ready

RECORD = os.urandom(64 * 1024)
LEVELS = {1: 150, 8: 600, 32: 1200}  # concurrent clients -> requests


def _percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _run(url: str, requests: list[tuple[str, str, dict, bytes | None]], clients: int) -> tuple[list[float], float, int]:
    """Sends pre-built requests from ``clients`` threads; returns latencies (ms), wall time, errors."""
    pools = [httpx.Client(base_url=url, timeout=30) for _ in range(clients)]
    latencies: list[float] = []
    errors = 0

    def send(i: int) -> tuple[float, bool]:
        method, path, headers, body = requests[i]
        started = time.perf_counter()
        response = pools[i % clients].request(method, path, headers=headers, content=body)
        return (time.perf_counter() - started) * 1000, response.status_code < 300

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as executor:
        for latency, ok in executor.map(send, range(len(requests))):
            latencies.append(latency)
            errors += not ok
    wall = time.perf_counter() - started
    for pool in pools:
        pool.close()
    return latencies, wall, errors


def run() -> dict[str, float]:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="medledger-bench-api-") as tmp:
        data, rpc_port, port = Path(tmp), free_port(), free_port()
        devnet = start_devnet(data / "chain", port=rpc_port)
        config = ConsortiumConfig(data_dir=data, chain=ChainConfig(rpc_port=rpc_port),
                                  members=[MemberConfig(slug="dapeng", port=port)])
        env = _node_env(config, config.members[0], f"http://127.0.0.1:{rpc_port}", data / "chain" / "deployment.json",
                        data / "chain" / "keys" / "dapeng.json", _passphrase())  # fmt: skip
        env["MEDLEDGER_OUTBOX"] = json.dumps({"batch_size": 256, "batch_delay_s": 1.0})
        log = open(data / "node.log", "wb")  # noqa: SIM115
        node = subprocess.Popen([sys.executable, "-m", "ledger_api.cli", "serve", "--port", str(port)], env=env,
                                stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready({"node": url}, {"node": node}, timeout=60)
            a, b = devnet.identities["dapeng"], devnet.identities["kuichong"]
            chain_id = devnet.manifest.chain_id

            def signed(account, method: str, path: str, body: bytes = b"") -> tuple[str, str, dict, bytes | None]:  # noqa: ANN001
                headers = sign_headers(account, chain_id=chain_id, audience=a.address, method=method, url=url + path,
                                       digest=hashlib.sha256(body).hexdigest())  # fmt: skip
                if body:
                    headers["content-type"] = "application/octet-stream"
                return method, path, headers, body or None

            patient = Account.create()
            devnet.backend.fund(patient.address, 10**19)
            upload_path = f"/v1/records?patient={patient.address}&category=labs&media_type=application/pdf"
            for clients in (8,):
                uploads = [signed(a.account, "POST", upload_path, RECORD) for _ in range(200)]
                latencies, wall, errors = _run(url, uploads, clients)
                figures["api.upload_rps"] = round(len(uploads) / wall, 1)
                figures["api.upload_p50_ms"] = round(_percentile(latencies, 50), 2)
                figures["api.upload_errors"] = errors
            listing = f"/v1/patients/{patient.address}/records"
            records = [r["id"] for r in httpx.get(f"{url}{listing}", headers=signed(a.account, "GET", listing)[2],
                                                  timeout=30).json()][:32]  # fmt: skip
            now = int(devnet.backend.w3.eth.get_block("latest")["timestamp"])
            own = Consortium(devnet.backend.w3, devnet.manifest, TransactionSender(devnet.backend.w3, patient))
            own.consents.grant(patient.address, GrantTerms(grantee=b.address, categories=1, purposes=1,
                                                           valid_from=now - 1, valid_until=now + 86_400))  # fmt: skip
            for clients, count in LEVELS.items():
                fetches = [signed(b.account, "GET", f"/v1/records/{records[i % len(records)]}/content"
                                  "?purpose=treatment&clinician=bench") for i in range(count)]  # fmt: skip
                latencies, wall, errors = _run(url, fetches, clients)
                figures[f"api.fetch_p50_ms_c{clients}"] = round(_percentile(latencies, 50), 2)
                figures[f"api.fetch_p99_ms_c{clients}"] = round(_percentile(latencies, 99), 2)
                figures[f"api.fetch_rps_c{clients}"] = round(count / wall, 1)
                figures[f"api.fetch_errors_c{clients}"] = errors
            figures["api.fetch_p50_ms"] = figures["api.fetch_p50_ms_c32"]
            figures["api.fetch_p99_ms"] = figures["api.fetch_p99_ms_c32"]
            figures["api.fetch_rps"] = figures["api.fetch_rps_c32"]
            grants = []
            deadline_ts = int(time.time()) + 600
            for _ in range(200):
                p = Account.create()
                message = {"patient": p.address, "grantee": b.address, "categories": 1, "purposes": 1,
                           "validFrom": now, "validUntil": now + 86_400, "nonce": 0, "deadline": deadline_ts}
                v, r, s = sign_typed(p, typed_data("ConsentGrant", message, chain_id=chain_id,
                                                   contract=devnet.manifest.address("ConsentRegistry")))
                body = json.dumps({"patient": p.address, "grantee": b.address, "categories": 1, "purposes": 1,
                                   "valid_from": now, "valid_until": now + 86_400, "nonce": 0,
                                   "deadline": deadline_ts, "signature": {"v": v, "r": r.hex(), "s": s.hex()}}).encode()
                method, path, headers, content = signed(a.account, "POST", "/v1/consents", body)
                headers["content-type"] = "application/json"
                grants.append((method, path, headers, content))
            latencies, wall, errors = _run(url, grants, 8)
            figures["api.grant_relay_rps"] = round(len(grants) / wall, 1)
            figures["api.grant_relay_errors"] = errors
        finally:
            node.terminate()
            node.wait(timeout=30)
            devnet.backend.close()
    return figures


GOALS = {
    "api.fetch_p50_ms": ("<=", 20.0),
    "api.fetch_p99_ms": ("<=", 100.0),
    "api.fetch_rps": (">=", 300.0),
    "api.fetch_errors_c32": ("<=", 0.0),
}

if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
