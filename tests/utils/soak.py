"""The soak: mixed traffic against a real 3-member consortium (``consortium up``) for a while, then
the auditor's verification of everything it produced. ``tests/reliability`` runs a short one;
``make bench`` a longer one (``soak.*`` figures).

Traffic, by weight: uploads at A and B; B reading A's lab reports through B's node (patients who
keep their consent: must be 200); reads of patients whose consent churns (200 or 403, both
right); patients granting and revoking (relayed by A's node); C's fan-out across the consortium;
C's break-glass then read; A's system reading its own access log. An answer outside the set its
action may give (or no answer) is an error.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount
from medledger_crypto import ConsentRevocation, MemberIdentity, sign_typed

from ledger_api.chain.backends import free_port
from ledger_api.chain.devnet import dev_passphrase
from ledger_api.cli.client import member_client
from tests.utils.consents import grant_message, signed_grant_body
from tests.utils.consortium import Supervised

SLUGS = ("dapeng", "kuichong", "nanao")


@dataclass
class SoakResult:
    requests: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    unexpected: dict[str, int] = field(default_factory=dict)
    audit_passed: bool = False
    audit_output: str = ""

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 1.0

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


class Soak:
    def __init__(self, data: Path) -> None:
        state = json.loads((data / "consortium.json").read_text())
        self.data, self.nodes = data, state["nodes"]
        self.identities = {
            s: MemberIdentity.load(data / "chain" / "keys" / f"{s}.json", dev_passphrase()) for s in SLUGS
        }
        self.chain_id = state["chain_id"]
        self.result = SoakResult()
        self.lock = threading.Lock()
        self.steady = [Account.create() for _ in range(4)]  # keep their consent to B
        self.churning = [Account.create() for _ in range(4)]  # grant and revoke all along
        self.records: dict[str, list[str]] = {p.address: [] for p in self.steady + self.churning}
        self.consent_registry = ""

    # -- plumbing --------------------------------------------------------------------------------
    def client(self, slug: str) -> httpx.Client:
        return member_client(self.nodes[slug]["url"], self.identities[slug], timeout=30)

    def timed(self, action: str, expected: set[int], call) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            response = call()
            status: int | None = response.status_code
        except httpx.HTTPError:
            response, status = None, None
        elapsed = (time.perf_counter() - started) * 1000
        with self.lock:
            self.result.requests += 1
            self.result.latencies_ms.append(elapsed)
            if status not in expected:
                self.result.errors += 1
                key = f"{action}:{status}"
                self.result.unexpected[key] = self.result.unexpected.get(key, 0) + 1
        return response

    def grant_body(self, patient: LocalAccount, nonce: int) -> dict:
        message = grant_message(patient.address, self.nodes["kuichong"]["account"], nonce=nonce, lasts_s=86_400)
        return signed_grant_body(patient, message, chain_id=self.chain_id, contract=self.consent_registry)

    # -- set-up ------------------------------------------------------------------------------------
    def prepare(self) -> None:
        with self.client("dapeng") as a:
            domain = a.get(f"/v1/patients/{self.steady[0].address}/signing-domain").json()
            self.consent_registry = domain["verifying_contract"]
            for patient in self.steady + self.churning:
                assert a.post("/v1/consents", json=self.grant_body(patient, 0)).status_code == 202
                for _ in range(2):
                    response = a.post(
                        "/v1/records",
                        content=random.randbytes(4096),
                        headers={"content-type": "application/octet-stream"},
                        params={"patient": patient.address, "category": "labs", "media_type": "text/plain"},
                    )
                    assert response.status_code == 201, response.text
                    self.records[patient.address].append(response.json()["id"])
        self.wait_drained()

    def wait_drained(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        for slug in SLUGS:
            while time.monotonic() < deadline:
                text = httpx.get(f"{self.nodes[slug]['url']}/metrics", timeout=10).text
                waiting = sum(
                    float(line.rsplit(" ", 1)[1])
                    for line in text.splitlines()
                    if line.startswith("medledger_outbox_items{") and ('"pending"' in line or '"sent"' in line)
                )
                if waiting == 0:
                    break
                time.sleep(0.25)

    # -- traffic ------------------------------------------------------------------------------------
    def worker(self, stop: threading.Event, seed: int) -> None:
        rng = random.Random(seed)
        clients = {slug: self.client(slug) for slug in SLUGS}
        a, b, c = (clients[s] for s in SLUGS)
        account_a = self.nodes["dapeng"]["account"]
        try:
            while not stop.is_set():
                roll = rng.random()
                if roll < 0.25:
                    patient = rng.choice(self.steady + self.churning)
                    uploader, name = rng.choice([(a, "dapeng"), (b, "kuichong")])
                    response = self.timed(
                        "upload",
                        {201},
                        lambda u=uploader, p=patient: u.post(
                            "/v1/records",
                            content=rng.randbytes(rng.choice([512, 4096, 65536])),
                            headers={"content-type": "application/octet-stream"},
                            params={"patient": p.address, "category": "labs", "media_type": "text/plain"},
                        ),
                    )
                    if response is not None and response.status_code == 201 and name == "dapeng":
                        with self.lock:
                            self.records[patient.address].append(response.json()["id"])
                elif roll < 0.55:
                    patient = rng.choice(self.steady)
                    record = rng.choice(self.records[patient.address][:2])  # anchored before the soak began
                    self.timed("read (consented)", {200}, _consortium_read(b, record, account_a, "dr-soak"))
                elif roll < 0.65:
                    patient = rng.choice(self.churning)
                    record = self.records[patient.address][0]
                    self.timed("read (churning consent)", {200, 403}, _consortium_read(b, record, account_a, "dr-soak"))
                elif roll < 0.72:
                    self.churn(a, rng)
                elif roll < 0.82:
                    patient = rng.choice(self.steady)
                    self.timed(
                        "fan-out",
                        {200},
                        lambda p=patient: c.get(
                            f"/v1/consortium/patients/{p.address}/records", params={"purpose": "treatment"}
                        ),
                    )
                elif roll < 0.85:
                    patient = rng.choice(self.steady)
                    declared = self.timed(
                        "break-glass",
                        {201},
                        lambda p=patient: c.post(
                            "/v1/emergency",
                            json={
                                "patient": p.address,
                                "reason_code": 1,
                                "clinician": "dr-er",
                                "justification": "unconscious on arrival, soak test",
                            },
                        ),
                    )
                    if declared is not None and declared.status_code == 201:
                        record = self.records[patient.address][0]
                        self.timed("read (break-glass)", {200}, _consortium_read(c, record, account_a, "dr-er"))
                else:
                    self.timed("own log", {200}, lambda: a.get("/v1/access-log", params={"limit": 50}))
        finally:
            for client in clients.values():
                client.close()

    def churn(self, a: httpx.Client, rng: random.Random) -> None:
        """A churning patient revokes their active consent, or grants a new one (the node relays it)."""
        patient = rng.choice(self.churning)
        with self.lock:  # one change per patient in flight: each is signed for the patient's next nonce
            listed = a.get(f"/v1/patients/{patient.address}/consents").json()
            if any(x["status"] == "pending" for x in listed):
                return
            domain = a.get(f"/v1/patients/{patient.address}/signing-domain").json()
            active = [x for x in listed if x["status"] == "active"]
        if active:
            now = int(time.time())
            consent_id = int(active[0]["consent_id"])
            revocation = ConsentRevocation(
                patient=patient.address, consent_id=consent_id, nonce=domain["nonce"], deadline=now + 600
            )
            v, r, s = sign_typed(patient, revocation.document(chain_id=self.chain_id, contract=self.consent_registry))
            self.timed(
                "revoke",
                {202, 409},
                lambda: a.post(
                    "/v1/consents/revocations",
                    json={
                        "consent_id": str(consent_id),
                        "nonce": domain["nonce"],
                        "deadline": now + 600,
                        "signature": {"v": v, "r": r.hex(), "s": s.hex()},
                    },
                ),
            )
        else:
            self.timed(
                "grant", {202, 409}, lambda: a.post("/v1/consents", json=self.grant_body(patient, domain["nonce"]))
            )

    def audit(self) -> None:
        """Runs the auditor's CLI; keeps its verdict line and every finding above info (the table's
        tail is hundreds of routine break-glass rows, which would hide why an audit failed)."""
        report_path = self.data / "audit-report.json"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "ledger_api.cli",
                "audit",
                "verify",
                "--data-dir",
                str(self.data),
                "--json",
                str(report_path),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        self.result.audit_passed = done.returncode == 0
        verdict = next((line for line in done.stdout.splitlines() if line.startswith("audit ")), "")
        findings = json.loads(report_path.read_text())["findings"] if report_path.exists() else []
        serious = [f for f in findings if f["severity"] != "info"]
        self.result.audit_output = "\n".join([verdict, *map(json.dumps, serious), done.stderr[-2000:]])


def run_soak(data: Path, duration_s: float, workers: int = 6) -> SoakResult:
    """Starts a 3-member consortium in ``data``, soaks it, drains it, verifies it; returns the result."""
    # an emergency department's day in minutes: the soak declares break-glass far above the default limit
    running = Supervised(data, free_port(), free_port(3), 3, "--break-glass-limit", "100000")
    try:
        running.wait_for("press Ctrl-C")
        soak = Soak(data)
        soak.prepare()
        stop = threading.Event()
        threads = [threading.Thread(target=soak.worker, args=(stop, seed)) for seed in range(workers)]
        for thread in threads:
            thread.start()
        time.sleep(duration_s)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        soak.wait_drained()
        soak.audit()
        return soak.result
    finally:
        running.stop()


def _consortium_read(client: httpx.Client, record: str, custodian: str, clinician: str) -> Callable[[], httpx.Response]:
    """A read of ``record`` through the client's node from its custodian, for treatment."""
    params = {"custodian": custodian, "purpose": "treatment", "clinician": clinician}
    return lambda: client.get(f"/v1/consortium/records/{record}", params=params)
