"""Hospital-workflow benchmarks on a real `medledger consortium up` (3 members, anvil):

- ``api.consent_request_roundtrip_ms``: Dapeng raises a consent request by its own patient number; the
  patient, signed in at Kuichong, finds it (the consortium view), signs the pre-filled grant and has
  Kuichong relay it; once the relay is confirmed on chain Dapeng reads the patient's record held by
  Kuichong. From the request to the first consented read, with the portal's calls made by this script
  (the same HTTP calls, in the same order); p50 over the rounds, one fresh patient each;
- ``api.mrn_lookup_overhead_ms``: a record listing by ``mrn:<number>`` minus the same listing by
  account, measured interleaved (p50 of each, 300 rounds).
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import httpx
from eth_account import Account
from medledger_crypto import ConsentGrant, MemberIdentity, PatientNumberLink, sign_typed

from ledger_api.auth.patient_proof import CONSORTIUM_VIEW
from ledger_api.auth.signing import MemberAuth
from ledger_api.chain.backends import RpcBackend, free_port
from ledger_api.chain.days import day_number
from ledger_api.chain.deployment import Consortium, DeploymentManifest
from ledger_api.chain.devnet import dev_passphrase
from ledger_api.cli.client import patient_client
from ledger_api.cli.consortium import up_command
from ledger_api.consents.wire import grant_body, terms_under_notice

SLUGS = ("dapeng", "kuichong", "nanao")
ROUNDTRIPS = 10
LOOKUPS = 300


class _Patient:
    def __init__(self, account) -> None:  # type: ignore[no-untyped-def]
        self.account = account
        self.address = account.address


def _p50(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def _signature(account, document: dict) -> dict:  # type: ignore[no-untyped-def]
    v, r, s = sign_typed(account, document)
    return {"v": v, "r": r.hex(), "s": s.hex()}


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="medledger-bench-workflows-") as tmp:
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
            registry = Consortium(RpcBackend(f"http://127.0.0.1:{rpc}").w3, manifest).records
            urls = {slug: f"http://127.0.0.1:{base + i}" for i, slug in enumerate(SLUGS)}
            ids = {
                slug: MemberIdentity.load(data / "chain" / "keys" / f"{slug}.json", dev_passphrase()) for slug in SLUGS
            }
            clients = {
                slug: httpx.Client(
                    base_url=urls[slug],
                    timeout=30,
                    auth=MemberAuth(ids[slug].account, manifest.chain_id, ids[slug].address),
                )
                for slug in SLUGS
            }
            domain = {"chain_id": manifest.chain_id, "contract": manifest.address("ConsentRegistry")}
            try:
                return {**_lookups(clients, ids, domain), **_roundtrips(clients, ids, urls, domain, registry)}
            finally:
                for client in clients.values():
                    client.close()
        finally:
            up.send_signal(signal.SIGINT)
            up.wait(timeout=60)


def _link(client: httpx.Client, patient, hospital: str, mrn: str, domain: dict) -> None:  # type: ignore[no-untyped-def]
    message = PatientNumberLink(
        patient=patient.address,
        hospital=hospital,
        mrn=mrn,
        linked=True,
        issued_at=time.time_ns() // 1_000_000,
        deadline=int(time.time()) + 600,
    )
    statement = {
        "patient": patient.address,
        "hospital": hospital,
        "mrn": mrn,
        "linked": True,
        "issued_at": message.issued_at,
        "deadline": message.deadline,
        "signature": _signature(patient, message.document(**domain)),
    }
    response = client.post("/v1/patient-links", json={"statement": statement})
    assert response.status_code == 200, response.text


def _upload(client: httpx.Client, patient: str) -> str:
    response = client.post(
        "/v1/records",
        content=os.urandom(16 * 1024),
        headers={"content-type": "application/octet-stream"},
        params={"patient": patient, "category": "labs", "media_type": "application/pdf"},
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _lookups(clients: dict[str, httpx.Client], ids, domain: dict) -> dict[str, float]:  # type: ignore[no-untyped-def]
    patient = Account.create()
    dapeng = clients["dapeng"]
    _link(dapeng, patient, ids["dapeng"].address, "BENCH-MRN-1", domain)
    for _ in range(3):
        _upload(dapeng, patient.address)
    by_mrn, by_account = [], []
    for _ in range(LOOKUPS):  # interleaved: both see the same machine at the same moment
        for path, sink in (("mrn:BENCH-MRN-1", by_mrn), (patient.address, by_account)):
            t = time.perf_counter()
            response = dapeng.get(f"/v1/patients/{path}/records")
            sink.append((time.perf_counter() - t) * 1000)
            assert response.status_code == 200 and len(response.json()) == 3
    return {
        "api.mrn_lookup_overhead_ms": round(_p50(by_mrn) - _p50(by_account), 2),
        "api.records_by_mrn_p50_ms": _p50(by_mrn),
        "api.records_by_account_p50_ms": _p50(by_account),
    }


def _roundtrips(clients, ids, urls, domain: dict, registry) -> dict[str, float]:  # type: ignore[no-untyped-def]
    timings = []
    for round_ in range(ROUNDTRIPS):
        patient = _Patient(Account.create())
        record = _upload(clients["kuichong"], patient.address)
        mrn = f"BENCH-{round_:03d}"
        _link(clients["dapeng"], patient.account, ids["dapeng"].address, mrn, domain)
        deadline = time.monotonic() + 60
        while not registry.exists(bytes.fromhex(record)):
            assert time.monotonic() < deadline, "record not anchored"
            time.sleep(0.05)
        with patient_client(urls["kuichong"], patient, resources=(CONSORTIUM_VIEW,)) as portal:  # type: ignore[arg-type]
            t = time.perf_counter()
            asked = clients["dapeng"].post(
                "/v1/consent-requests",
                json={
                    "patient": f"mrn:{mrn}",
                    "purposes": ["treatment"],
                    "categories": ["labs"],
                    "access_days": 30,
                    "reason": "Referral",
                    "raised_by": "dr-bench",
                },
            )
            assert asked.status_code == 201, asked.text
            found = portal.get(f"/v1/patients/{patient.address}/overview/consent-requests").json()["requests"]
            terms = found[0]["suggested_grant"]
            nonce = portal.get(f"/v1/patients/{patient.address}/signing-domain").json()["nonce"]
            suggested = terms_under_notice(
                grantees=tuple(terms["grantees"]),
                categories=terms["categories"],
                purposes=terms["purposes"],
                valid_from=terms["valid_from"],
                valid_until=terms["valid_until"],
                care_from=day_number(date.fromisoformat(terms["care_from"])) if terms["care_from"] else 0,
                care_to=day_number(date.fromisoformat(terms["care_to"])) if terms["care_to"] else 0,
            )
            message = ConsentGrant.of(patient.address, suggested, nonce=nonce, deadline=int(time.time()) + 600)
            relay = portal.post(
                "/v1/consents", json=grant_body(message, sign_typed(patient.account, message.document(**domain)))
            )
            assert relay.status_code == 202, relay.text
            while portal.get(f"/v1/relays/{relay.json()['id']}").json()["state"] != "confirmed":
                assert time.perf_counter() - t < 60, "the grant was not confirmed"
                time.sleep(0.02)
            read = clients["dapeng"].get(
                f"/v1/consortium/records/{record}",
                params={"custodian": ids["kuichong"].address, "purpose": "treatment", "clinician": "dr-bench"},
            )
            timings.append((time.perf_counter() - t) * 1000)
            assert read.status_code == 200, read.text
        request_id = asked.json()["id"]
        deadline = time.monotonic() + 30  # and the hospital's node hears the answer from the chain
        while clients["dapeng"].get(f"/v1/consent-requests/{request_id}").json()["state"] != "granted":
            assert time.monotonic() < deadline, "the grant never answered the request"
            time.sleep(0.1)
    return {"api.consent_request_roundtrip_ms": _p50(timings)}


GOALS = {"api.consent_request_roundtrip_ms": ("<=", 3000.0), "api.mrn_lookup_overhead_ms": ("<=", 2.0)}

if __name__ == "__main__":
    print(run())
