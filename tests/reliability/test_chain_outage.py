"""The chain node goes down under a load of uploads, reads and consent relays, then comes back.

While it is down no record is released (503, fail closed: consent cannot be checked), nothing is
half-written, and nothing errs with a 500; after it is back, every pending outbox row is anchored
exactly once and the node's database and the chain reconcile (the same checks as the crash drills).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from eth_account import Account

from ledger_api.chain.backends import AnvilBackend
from ledger_api.core import headers as header_names
from tests.utils.consents import grant_message, signed_grant_body
from tests.utils.crash import CrashLab
from tests.utils.nodes import database

pytestmark = pytest.mark.slow


@dataclass
class Answer:
    kind: str
    started: float
    ended: float
    status: int | None  # None: no answer at all
    code: str | None = None
    relayed: str | None = None  # the patient of a relayed grant


def _grant_body(lab: CrashLab, patient) -> dict:
    now = int(time.time())
    message = grant_message(patient.address, lab.ids.members["b"].address, nonce=0, deadline=now + 3600)
    contract = lab.manifest.address("ConsentRegistry")
    return signed_grant_body(patient, message, chain_id=lab.manifest.chain_id, contract=contract)


def _load(lab: CrashLab, kind: str, answers: list[Answer], stop: threading.Event) -> None:
    with lab.client("b" if kind == "read" else "a") as client:
        while not stop.is_set():
            started, relayed = time.monotonic(), None
            try:
                if kind == "upload":
                    response = client.post(
                        "/v1/records",
                        content=b"x" * 1024,
                        params={"patient": lab.patient.address, "category": "labs", "media_type": "text/plain"},
                        headers={"content-type": "application/octet-stream"},
                    )
                    if response.status_code == 201:
                        lab.uploaded.add(response.json()["id"])
                elif kind == "read":
                    response = client.get(
                        f"/v1/records/{lab.readable[0]}/content",
                        params={"purpose": "treatment", "clinician": "dr-outage"},
                    )
                    if response.status_code == 200:
                        lab.read_sequences.add(int(response.headers[header_names.ACCESS_SEQUENCE]))
                else:
                    patient = Account.create()
                    response = client.post("/v1/consents", json=_grant_body(lab, patient))
                    relayed = patient.address if response.status_code == 202 else None
                code = response.json().get("code") if response.status_code >= 400 else None
                answers.append(Answer(kind, started, time.monotonic(), response.status_code, code, relayed))
            except httpx.HTTPError:
                answers.append(Answer(kind, started, time.monotonic(), None))
            time.sleep(0.02)


@pytest.mark.parametrize("db_kind", ["sqlite", "postgresql"])
def test_chain_down_under_load_fails_closed_and_anchors_everything_once_after(tmp_path: Path, db_kind: str) -> None:
    with database(db_kind, tmp_path) as url:
        lab = CrashLab(tmp_path, url)
        try:
            lab.start()
            lab.prepare_reads(1)
            answers: list[Answer] = []
            stop = threading.Event()
            threads = [
                threading.Thread(target=_load, args=(lab, kind, answers, stop)) for kind in ("upload", "read", "grant")
            ]
            for thread in threads:
                thread.start()
            time.sleep(1.5)
            down_at = time.monotonic()
            port = lab.backend.port
            lab.backend.close()  # the chain node stops (its state is kept, as a validator's blocks are)
            time.sleep(3)
            up_at = time.monotonic()
            lab.backend = AnvilBackend(tmp_path / "chain", port=port)
            time.sleep(2)
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
            lab.wait_drained()
            lab.reconcile()
            relayed = {a.relayed for a in answers if a.relayed}
            granted = lab.chain.consents.contract.events.ConsentGranted.get_logs(from_block=0)
            per_patient = Counter(e["args"]["patient"] for e in granted)
        finally:
            lab.close()
    during = [a for a in answers if a.started > down_at + 0.3 and a.ended < up_at]
    reads_during = [a for a in during if a.kind == "read"]
    assert reads_during, "no read was attempted while the chain was down"
    assert {(a.status, a.code) for a in reads_during} == {(503, "chain-unavailable")}  # never released
    assert all(a.status is not None and a.status != 500 for a in answers), [
        a for a in answers if a.status in (None, 500)
    ]
    assert {a.status for a in during if a.kind == "upload"} <= {201, 503}
    assert any(a.status == 201 for a in answers if a.kind == "upload" and a.started > up_at + 0.5)
    assert any(a.status == 200 for a in answers if a.kind == "read" and a.started > up_at + 0.5)
    # every relayed grant landed exactly once; every upload and read reconciles with the chain
    assert relayed and {p: per_patient[p] for p in relayed if per_patient[p] != 1} == {}
    assert (lab.tally.lost, lab.tally.duplicates, lab.tally.problems) == (0, 0, [])
