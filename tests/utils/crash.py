"""Crash drills on a real node process: SIGKILL at each step of the upload and fetch paths, restart,
then reconcile the database with the chain. Used by tests/reliability and by ``make bench``.

A lab is one anvil chain with the consortium deployed, member A's node as its own process
(``medledger serve``, so the kill takes only it), its database and blob store kept across
restarts (a node's life: many crashes, one history), member B reading with the patient's consent.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from eth_account import Account
from medledger_crypto import DEV_SCRYPT
from sqlmodel import Session, create_engine, select

from ledger_api.access.models import AccessEntry
from ledger_api.auth.signing import MemberAuth
from ledger_api.chain.backends import AnvilBackend, free_port
from ledger_api.chain.deployment import Consortium
from ledger_api.chain.transactions import TransactionSender
from ledger_api.cli.consortium import wait_ready
from ledger_api.consents.wire import terms_under_notice
from ledger_api.core import headers as header_names
from ledger_api.core.crash_drill import POINTS
from ledger_api.outbox.models import OutboxItem
from ledger_api.records.models import Record, RecordVersion
from ledger_api.vocabulary import Category, Purpose, bitset
from tests.utils.nodes import Identities, deploy

PASSPHRASE = "crash drill keystore passphrase"


def load_for(point: str) -> str:
    """The load that reaches ``point``: uploads (record anchors) or reads (access entries)."""
    return "upload" if point.startswith("upload.") or point.endswith(".anchor_record") else "fetch"


@dataclass
class Tally:
    """What the drills saw, over every run."""

    runs: int = 0
    acknowledged_uploads: int = 0
    acknowledged_reads: int = 0
    lost: int = 0
    duplicates: int = 0
    problems: list[str] = field(default_factory=list)


class CrashLab:
    def __init__(self, work: Path, database_url: str) -> None:
        self.work = work
        self.port = free_port()
        self.backend = AnvilBackend(work / "chain")
        self.ids = Identities({"a": f"http://127.0.0.1:{self.port}", "b": "http://b.invalid", "c": "http://c.invalid"})
        self.manifest = deploy(self.backend, self.ids, Account.create())
        self.manifest.save(work / "deployment.json")
        self.ids.members["a"].save(work / "a-identity.json", PASSPHRASE, dev_mode=True, params=DEV_SCRYPT)
        self.database_url = database_url
        self.engine = create_engine(database_url)
        self.patient = Account.create()
        self.backend.fund(self.patient.address, 10**19)
        now = int(self.backend.w3.eth.get_block("latest")["timestamp"])
        patient_chain = Consortium(self.backend.w3, self.manifest, TransactionSender(self.backend.w3, self.patient))
        patient_chain.consents.grant(
            self.patient.address,
            terms_under_notice(
                grantees=(self.ids.members["b"].address,),
                categories=bitset([Category.LABS]),
                purposes=bitset([Purpose.TREATMENT]),
                valid_from=now - 1,
                valid_until=now + 86_400,
            ),
        )
        self.chain = Consortium(self.backend.w3, self.manifest, None)
        self.process: subprocess.Popen | None = None
        self.readable: list[str] = []  # anchored records B may read
        self.tally = Tally()
        self.uploaded: set[str] = set()
        self.read_sequences: set[int] = set()

    # -- the node process ------------------------------------------------------------------------
    def start(self, crash_at: str | None = None, crash_after: int = 1, workers: int = 1) -> None:
        env = {
            **os.environ,
            "MEDLEDGER_MODE": "dev",
            "MEDLEDGER_NODE_NAME": "a",
            "MEDLEDGER_DATA_DIR": str(self.work / "node"),
            "MEDLEDGER_DATABASE_URL": self.database_url,
            "MEDLEDGER_KEYSTORE_PATH": str(self.work / "a-identity.json"),
            "MEDLEDGER_KEYSTORE_PASSPHRASE": PASSPHRASE,
            "MEDLEDGER_PUBLIC_URL": f"http://127.0.0.1:{self.port}",
            "MEDLEDGER_CHAIN": f'{{"rpc_url": "{self.backend.url}", '
            f'"manifest_path": "{self.work / "deployment.json"}"}}',
            "MEDLEDGER_OUTBOX": '{"poll_interval_s": 0.05, "backoff_base_s": 0.05, "backoff_max_s": 0.5}',
        }
        env.pop("MEDLEDGER_CRASH_AT", None)
        if crash_at is not None:
            env.update(MEDLEDGER_CRASH_AT=crash_at, MEDLEDGER_CRASH_AFTER=str(crash_after))
        log = open(self.work / "node.log", "ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ledger_api.cli",
                "serve",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_ready({"a": f"http://127.0.0.1:{self.port}"}, {"a": self.process}, timeout=60)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def close(self) -> None:
        self.stop()
        self.engine.dispose()
        self.backend.close()

    def client(self, slug: str) -> httpx.Client:
        auth = MemberAuth(
            account=self.ids.members[slug].account,
            chain_id=self.manifest.chain_id,
            audience=self.ids.members["a"].address,
        )
        return httpx.Client(base_url=f"http://127.0.0.1:{self.port}", auth=auth, timeout=10)

    # -- load --------------------------------------------------------------------------------------
    def upload_once(self, client: httpx.Client) -> str | None:
        response = client.post(
            "/v1/records",
            content=os.urandom(2048),
            headers={"content-type": "application/octet-stream"},
            params={"patient": self.patient.address, "category": "labs", "media_type": "text/plain"},
        )
        if response.status_code != 201:
            self.tally.problems.append(f"upload answered {response.status_code}: {response.text[:200]}")
            return None
        return response.json()["id"]

    def read_once(self, client: httpx.Client, record_id: str) -> int | None:
        response = client.get(
            f"/v1/records/{record_id}/content", params={"purpose": "treatment", "clinician": "dr-drill"}
        )
        if response.status_code != 200:
            self.tally.problems.append(f"read answered {response.status_code}: {response.text[:200]}")
            return None
        return int(response.headers[header_names.ACCESS_SEQUENCE])

    def load_until_dead(self, load: str, timeout: float = 60) -> None:
        """Uploads or reads, one after another, until the node dies; counts what it acknowledged."""
        deadline = time.monotonic() + timeout
        with self.client("a" if load == "upload" else "b") as client:
            while self.process is not None and self.process.poll() is None:
                if time.monotonic() > deadline:
                    self.tally.problems.append(f"the drill never fired within {timeout:.0f}s")
                    self.stop()
                    return
                try:
                    if load == "upload":
                        record = self.upload_once(client)
                        if record is not None:
                            self.uploaded.add(record)
                            self.tally.acknowledged_uploads += 1
                    else:
                        sequence = self.read_once(client, self.readable[len(self.read_sequences) % len(self.readable)])
                        if sequence is not None:
                            self.read_sequences.add(sequence)
                            self.tally.acknowledged_reads += 1
                except httpx.HTTPError:
                    time.sleep(0.05)  # the kill landed mid-request: no answer, so nothing acknowledged
        self.process.wait(timeout=30)
        if self.process.returncode != -9:
            self.tally.problems.append(f"the node ended with {self.process.returncode}, not SIGKILL")

    def wait_drained(self, timeout: float = 60) -> None:
        """Waits until every outbox row is confirmed (a failed or stuck row is a problem)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with Session(self.engine) as session:
                states = Counter(session.exec(select(OutboxItem.state)).all())
            if set(states) <= {"confirmed"}:
                return
            if states.get("failed"):
                self.tally.problems.append(f"outbox rows failed: {dict(states)}")
                return
            time.sleep(0.1)
        self.tally.problems.append(f"outbox not drained within {timeout:.0f}s: {dict(states)}")

    def prepare_reads(self, count: int = 3) -> None:
        with self.client("a") as client:
            for _ in range(count):
                record = self.upload_once(client)
                assert record is not None
                self.uploaded.add(record)
                self.readable.append(record)
        self.wait_drained()

    # -- one drill ----------------------------------------------------------------------------------
    def drill(self, point: str, crash_after: int) -> None:
        """Kill at ``point`` on its ``crash_after``-th pass under load, restart, drain, reconcile."""
        self.start(crash_at=point, crash_after=crash_after)
        self.load_until_dead(load_for(point))
        self.start()
        self.wait_drained()
        self.reconcile()
        self.stop()
        self.tally.runs += 1

    # -- the checks ---------------------------------------------------------------------------------
    def reconcile(self) -> None:
        """The database and the chain agree: nothing acknowledged is missing, nothing is there twice."""
        a = self.ids.members["a"].address
        with Session(self.engine) as session:
            versions = {(v.record_id, v.version): v.content_hash for v in session.exec(select(RecordVersion))}
            records = {r.id for r in session.exec(select(Record))}
            entries = {e.sequence: e.entry_hash for e in session.exec(select(AccessEntry))}
        anchored = self.chain.records.contract.events.RecordAnchored.get_logs(
            from_block=0, argument_filters={"custodian": a}
        )
        per_version = Counter((e["args"]["recordId"].hex(), e["args"]["version"]) for e in anchored)
        accesses = self.chain.trail.contract.events.AccessRecorded.get_logs(
            from_block=0, argument_filters={"member": a}
        )
        per_sequence = Counter(e["args"]["sequence"] for e in accesses)
        duplicates = sum(n - 1 for n in per_version.values() if n > 1) + sum(
            n - 1 for n in per_sequence.values() if n > 1
        )
        lost = len(self.uploaded - records) + len(self.read_sequences - set(entries))
        for key, content_hash in versions.items():
            if per_version.get(key, 0) == 0:
                lost += 1
                self.tally.problems.append(f"record {key[0][:12]} v{key[1]} stored but never anchored")
            elif self.chain.records.content_hash(bytes.fromhex(key[0]), key[1]).hex() != content_hash:
                self.tally.problems.append(f"record {key[0][:12]} v{key[1]}: the chain holds another hash")
        for key in per_version:
            if key not in versions:
                self.tally.problems.append(f"record {key[0][:12]} v{key[1]} anchored but not held (orphan anchor)")
        chain_hashes = {e["args"]["sequence"]: e["args"]["entryHash"].hex() for e in accesses}
        if sorted(entries) != list(range(1, len(entries) + 1)):
            self.tally.problems.append("the access log has gaps")
        for sequence, entry_hash in entries.items():
            if chain_hashes.get(sequence) != entry_hash:
                lost += 1
                self.tally.problems.append(
                    f"access entry {sequence} not anchored as logged (chain: "
                    f"{chain_hashes.get(sequence, 'nothing')[:16]}, log: {entry_hash[:16]}, "
                    f"events {per_sequence.get(sequence, 0)})"
                )
        if self.chain.trail.last_sequence(a) != len(entries):
            self.tally.problems.append(f"chain sequence {self.chain.trail.last_sequence(a)} != log {len(entries)}")
        blobs = {(p.parent.name, p.name) for p in (self.work / "node" / "blobs").rglob("*") if p.is_file()}
        with Session(self.engine) as session:
            referenced = {(v.record_id, v.blob_name) for v in session.exec(select(RecordVersion))}
        if blobs - referenced:
            self.tally.problems.append(f"{len(blobs - referenced)} blob files no record refers to")
        self.tally.lost += lost
        self.tally.duplicates += duplicates


def run_drills(
    work: Path, database_url: str, runs: int, points: tuple[str, ...] = POINTS, first_pass: int = 1
) -> Tally:
    """Every point ``runs`` times (the n-th run kills on the ((n + first_pass - 1) mod 3 + 1)-th pass, so a
    later first pass lets the load acknowledge some writes before the kill); returns the tally."""
    lab = CrashLab(work, database_url)
    try:
        lab.start()
        lab.prepare_reads()
        lab.stop()
        for run in range(runs):
            for point in points:
                lab.drill(point, crash_after=(run + first_pass - 1) % 3 + 1)
        return lab.tally
    finally:
        lab.close()
