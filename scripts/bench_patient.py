"""Patient-rights benchmarks on a real `medledger consortium up` (3 members, anvil):

- ``api.self_access_p50_ms``: a patient signed in at one member takes their own 64 KiB record held by
  another: the request through the node they signed in at (which forwards it to the custodian and
  checks the ciphertext against the chain), and the unwrapping and decryption on the patient's side;
- ``portal.export_100_records_s``: "Download all my records" in the portal, in headless Chromium, for
  100 records of 64 KiB across the three members (decrypted in the browser, zipped there), from the
  click to the saved archive; ``cli.export_100_records_s``: the same archive by `medledger patient export`.
"""

from __future__ import annotations

import base64
import io
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from eth_account import Account
from medledger_crypto import (
    HpkePrivateKey,
    HpkeSuite,
    MemberIdentity,
    RecordContext,
    WrapContext,
    decrypt_record,
    unwrap_data_key,
)

from ledger_api.auth.patient_proof import CONSORTIUM_VIEW
from ledger_api.auth.signing import MemberAuth
from ledger_api.chain.backends import RpcBackend, free_port
from ledger_api.chain.deployment import Consortium, DeploymentManifest
from ledger_api.chain.devnet import dev_passphrase
from ledger_api.cli.client import patient_client
from ledger_api.cli.consortium import up_command
from ledger_api.cli.patient_export import export_records
from ledger_api.core import headers as header_names
from ledger_api.records.export_archive import passed, verify_archive

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the portal tests' browser settings and wallet shim
ROUNDS = 100
RECORDS = 100
SLUGS = ("dapeng", "kuichong", "nanao")


class _Patient:
    """The CLI's patient identity needs only an account here (no key file)."""

    def __init__(self, account) -> None:  # type: ignore[no-untyped-def]
        self.account = account
        self.address = account.address


def _p(values: list[float], q: int) -> float:
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 2)


def run() -> dict[str, float]:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="medledger-bench-patient-") as tmp:
        data, rpc, base = Path(tmp), free_port(), free_port(3)
        up = subprocess.Popen(
            up_command(data, rpc_port=rpc, base_port=base), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        lines: list[str] = []
        threading.Thread(target=lambda: lines.extend(iter(up.stdout.readline, "")), daemon=True).start()
        started = time.monotonic()
        try:
            while not any("press Ctrl-C" in line for line in lines):
                if up.poll() is not None or time.monotonic() - started > 120:
                    raise RuntimeError("consortium did not start:\n" + "".join(lines))
                time.sleep(0.05)
            manifest = DeploymentManifest.load(data / "chain" / "deployment.json")
            chain = RpcBackend(f"http://127.0.0.1:{rpc}")
            urls = {slug: f"http://127.0.0.1:{base + i}" for i, slug in enumerate(SLUGS)}
            members = {
                slug: MemberIdentity.load(data / "chain" / "keys" / f"{slug}.json", dev_passphrase()) for slug in SLUGS
            }
            patient = _Patient(Account.create())
            ids = []
            for i in range(RECORDS):  # 64 KiB each, spread over the three members
                slug = SLUGS[i % 3]
                with httpx.Client(
                    base_url=urls[slug],
                    timeout=30,
                    auth=MemberAuth(members[slug].account, manifest.chain_id, members[slug].address),
                ) as client:
                    response = client.post(
                        "/v1/records",
                        content=os.urandom(64 * 1024),
                        headers={"content-type": "application/octet-stream"},
                        params={"patient": patient.address, "category": "labs", "media_type": "application/pdf"},
                    )
                    assert response.status_code == 201, response.text
                    ids.append((slug, response.json()["id"]))
            registry = Consortium(chain.w3, manifest).records
            deadline = time.monotonic() + 120
            while not all(registry.exists(bytes.fromhex(record_id)) for _, record_id in ids[-3:]):
                if time.monotonic() > deadline:
                    raise RuntimeError("records not anchored")
                time.sleep(0.2)

            # one own record held by Dapeng, taken through Kuichong, decrypted on the patient's side
            held_elsewhere = next(record_id for slug, record_id in ids if slug == "dapeng")
            reader = HpkePrivateKey.generate(HpkeSuite.X25519)  # the browser's kind of key
            key_header = base64.b64encode(reader.public_key().to_bytes()).decode()
            timings = []
            with patient_client(urls["kuichong"], patient, resources=(CONSORTIUM_VIEW,)) as client:  # type: ignore[arg-type]
                for _ in range(ROUNDS):
                    t = time.perf_counter()
                    response = client.get(
                        f"/v1/patients/{patient.address}/records/{held_elsewhere}/content",
                        headers={header_names.READER_KEY: key_header},
                    )
                    h = response.headers
                    record_id, version = bytes.fromhex(held_elsewhere), int(h[header_names.VERSION])
                    data_key = unwrap_data_key(
                        base64.b64decode(h[header_names.WRAPPED_KEY]),
                        reader,
                        WrapContext(record_id, version, patient.address),
                    )
                    out = io.BytesIO()
                    decrypt_record(
                        RecordContext(record_id, version, h[header_names.SEALED_BY], h[header_names.PATIENT]),
                        data_key,
                        io.BytesIO(response.content),
                        out,
                    )
                    timings.append((time.perf_counter() - t) * 1000)
                    assert len(out.getvalue()) == 64 * 1024
            figures["api.self_access_p50_ms"] = _p(timings, 50)
            figures["api.self_access_p99_ms"] = _p(timings, 99)

            # the whole archive by the CLI's code, and by the portal in Chromium
            with patient_client(urls["kuichong"], patient, resources=(CONSORTIUM_VIEW,)) as client:  # type: ignore[arg-type]
                t = time.perf_counter()
                sink = io.BytesIO()
                export_records(client, patient.address, sink)
                figures["cli.export_100_records_s"] = round(time.perf_counter() - t, 2)
            assert passed(verify_archive(sink.getvalue(), registry))
            figures["portal.export_100_records_s"] = _portal_export(urls["nanao"], patient, manifest.chain_id, registry)
        finally:
            up.send_signal(signal.SIGINT)
            up.wait(timeout=60)
    return figures


def _portal_export(url: str, patient: _Patient, chain_id: int, registry) -> float:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect, sync_playwright

    from tests.portal.conftest import CHROMIUM, FLAGS
    from tests.utils.wallet import wallet_script

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        try:
            context = browser.new_context(accept_downloads=True, locale="en-US")
            context.set_default_timeout(120_000)
            context.add_init_script(wallet_script(patient.account.key.hex(), chain_id))
            page = context.new_page()
            page.goto(f"{url}/portal/")
            page.locator("#wallet-connect").click()
            expect(page.locator("#records-body tr")).to_have_count(RECORDS)
            t = time.perf_counter()
            with page.expect_download(timeout=300_000) as saved:
                page.locator("#export-all").click()
            archive = Path(saved.value.path()).read_bytes()
            elapsed = round(time.perf_counter() - t, 2)
            checks = verify_archive(archive, registry)
            assert len(checks) == RECORDS and passed(checks)
            return elapsed
        finally:
            browser.close()


GOALS = {"api.self_access_p50_ms": ("<=", 60.0), "portal.export_100_records_s": ("<=", 30.0)}

if __name__ == "__main__":
    print(run())
