"""Audit benchmark: full verification of 1,000,000 access entries across 3 members.

Set-up (not timed): a managed anvil with the consortium deployed; 300 patients each grant a
consent on chain; each member anchors 100 records; 1,000,000 entries are generated the way nodes
write them (canonical documents, per-member sequences, consent references, authorisation block),
written as each member's JSON-lines export, and anchored on chain in Merkle batches of 512 (one
transaction per batch, as the outbox does). Timed: ``medledger audit verify`` over the chain and the
three exports, as its own process, whose peak RSS is measured too.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from eth_account import Account
from medledger_crypto import merkle

from ledger_api.access.service import ENTRY_FORMAT, NONCE_BYTES, document_hash
from ledger_api.chain.backends import free_port
from ledger_api.chain.commitments import new_salt, record_subject
from ledger_api.chain.deployment import Consortium
from ledger_api.chain.devnet import DEFAULT_MEMBERS, start_devnet
from ledger_api.chain.ids import mint_record_id
from ledger_api.chain.transactions import TransactionSender
from ledger_api.consents.wire import terms_under_notice

ENTRIES = int(os.environ.get("MEDLEDGER_BENCH_AUDIT_ENTRIES", "1000000"))
PATIENTS, RECORDS_PER_MEMBER, BATCH = 300, 100, 512


def _generate(tmp: Path, devnet, consortium_for) -> dict[str, Path]:
    w3 = devnet.backend.w3
    now = int(w3.eth.get_block("latest")["timestamp"])
    rng = random.Random(7)
    patients, consent_of = [], {}
    for _ in range(PATIENTS):
        patient = Account.create()
        devnet.backend.fund(patient.address, 10**18)
        receipt = consortium_for(patient).consents.grant(
            patient.address,
            terms_under_notice(
                grantees=tuple(devnet.identities[slug].address for slug, _ in DEFAULT_MEMBERS),
                categories=0xFFFF,
                purposes=0xFF,
                valid_from=now - 10,
                valid_until=now + 10**7,
            ),
        )
        consent_of[patient.address] = receipt.event("ConsentGranted").args["consentId"]
        patients.append(patient.address)
    slugs = [slug for slug, _ in DEFAULT_MEMBERS]
    members = {slug: devnet.identities[slug] for slug in slugs}
    records: dict[str, list[tuple[str, str, str]]] = {}
    for slug, identity in members.items():
        chain = consortium_for(identity.account)
        records[slug] = []
        manifest = tmp / f"{slug}-records.jsonl"
        with open(manifest, "w") as out:
            for _ in range(RECORDS_PER_MEMBER):
                record_id, content, salt = mint_record_id(identity.address), os.urandom(32), new_salt()
                patient, category = rng.choice(patients), rng.randrange(16)
                chain.records.anchor_record(record_id, record_subject(record_id, patient, category, salt), content)
                records[slug].append((record_id.hex(), patient, category))
                line = {
                    "record_id": record_id.hex(),
                    "version": 1,
                    "erased": False,
                    "stored_hash": content.hex(),
                    "patient": patient,
                    "category": category,
                    "subject_salt": salt.hex(),
                }
                out.write(json.dumps(line) + "\n")
    chain_block = int(w3.eth.block_number)
    start = datetime.now(UTC) - timedelta(days=30)
    exports = {}
    for index, (slug, identity) in enumerate(members.items()):
        count = ENTRIES // 3 + (1 if index < ENTRIES % 3 else 0)
        others = [m.address for s, m in members.items() if s != slug]
        builder, roots = merkle.RootBuilder(), []
        path = tmp / f"{slug}-log.jsonl"
        with open(path, "w") as out:
            for sequence in range(1, count + 1):
                record_id, patient, category = rng.choice(records[slug])
                doc = {
                    "format": ENTRY_FORMAT,
                    "member": identity.address,
                    "sequence": sequence,
                    "record_id": record_id,
                    "record_version": 1,
                    "category": category,
                    "patient": patient,
                    "requester": rng.choice(others),
                    "clinician": f"dr-{rng.randrange(500):03d}",
                    "purpose": 0,
                    "basis": "consent",
                    "authorization": f"{consent_of[patient]:064x}",
                    "action": "read",
                    "chain_block": chain_block,
                    "created_at": (start + timedelta(seconds=sequence * 7)).isoformat(timespec="microseconds"),
                    "nonce": rng.randbytes(NONCE_BYTES).hex(),
                }
                entry_hash = document_hash(doc)
                out.write(json.dumps({**doc, "entry_hash": entry_hash}, sort_keys=True) + "\n")
                builder.append(merkle.leaf_hash(bytes.fromhex(entry_hash)))
                if sequence % BATCH == 0 or sequence == count:
                    roots.append((sequence - (sequence - 1) % BATCH, sequence, builder.root()))
        _anchor(w3, identity.account, consortium_for(identity.account), roots)
        exports[identity.address] = path
    return exports


def _anchor(w3, account, chain, roots: list[tuple[int, int, bytes]]) -> None:
    """One anchorAccessBatch transaction per batch, signed here and sent back to back."""
    nonce = w3.eth.get_transaction_count(account.address, "pending")
    gas_price, chain_id, last = w3.eth.gas_price, w3.eth.chain_id, None
    for first, last_sequence, root in roots:
        fn = chain.trail.contract.functions.anchorAccessBatch(root, first, last_sequence)
        tx = fn.build_transaction(
            {"from": account.address, "nonce": nonce, "gas": 150_000, "gasPrice": gas_price, "chainId": chain_id}
        )
        last = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        nonce += 1
    if last is not None:
        assert w3.eth.wait_for_transaction_receipt(last, timeout=120)["status"] == 1


class _HighWaterMark:
    """Polls a process's VmHWM (peak resident set, KiB) from /proc while it runs."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_kib = pid, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.peak_kib = max(self.peak_kib, int(line.split()[1]))
            except (OSError, ValueError):
                pass
            self._stop.wait(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="medledger-bench-audit-") as tmp_name:
        tmp = Path(tmp_name)
        devnet = start_devnet(tmp / "chain", port=free_port())
        try:
            w3 = devnet.backend.w3

            def consortium_for(account):
                return Consortium(w3, devnet.manifest, TransactionSender(w3, account))

            exports = _generate(tmp, devnet, consortium_for)
            slugs = {identity.address: slug for slug, identity in devnet.identities.items()}
            profile = (
                ["-m", "cProfile", "-o", os.environ["MEDLEDGER_BENCH_PROFILE"]]
                if os.environ.get("MEDLEDGER_BENCH_PROFILE")
                else []
            )
            # the verifier's own peak RSS, printed by itself at exit: VmHWM of its own memory map, not
            # getrusage's ru_maxrss, which Linux carries over from the parent at fork and across exec
            # (in a full run this benchmark process holds the crypto group's 1 GiB buffers: 2.1 GB)
            measured = [
                "-c",
                "import atexit, runpy, sys; atexit.register(lambda: print('PEAK_RSS_KIB=' + next("
                "l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')), "
                "file=sys.stderr)); sys.argv = ['medledger', *sys.argv[1:]]; "
                "runpy.run_module('ledger_api.cli', run_name='__main__')",
            ]
            runner = [*profile, "-m", "ledger_api.cli"] if profile else measured
            command = [
                sys.executable,
                *runner,
                "audit",
                "verify",
                "--rpc",
                devnet.backend.url,
                "--manifest",
                str(tmp / "chain" / "deployment.json"),
                "--json",
                str(tmp / "report.json"),
            ]
            for member, path in exports.items():
                command += ["--export", f"{member}={path},{tmp / f'{slugs[member]}-records.jsonl'}"]
            started = time.perf_counter()
            process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            watched = _HighWaterMark(process.pid)
            stdout, stderr = process.communicate(timeout=1800)
            elapsed = time.perf_counter() - started
            watched.stop()
            done = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
            peaks = [line.split("=", 1)[1] for line in done.stderr.splitlines() if line.startswith("PEAK_RSS_KIB=")]
            # the verifier's own figure; else the kernel's high-water mark of that very process (never
            # RUSAGE_CHILDREN: that is the largest child this whole benchmark run ever had)
            peak_kib = int(peaks[-1]) if peaks else watched.peak_kib
            report = json.loads((tmp / "report.json").read_text())
            if done.returncode != 0 or not report["passed"]:
                raise RuntimeError(f"the audit of honest data did not pass: {done.stdout[-2000:]}{done.stderr[-2000:]}")
            verified = sum(m["entries"] for m in report["members"])
            assert verified == ENTRIES, verified
        finally:
            devnet.backend.close()
    suffix = "1m" if ENTRIES == 1_000_000 else f"{ENTRIES}"
    return {
        f"audit.verify_{suffix}_s": round(elapsed, 1),
        f"audit.verify_{suffix}_peak_rss_mb": round(peak_kib / 1024, 1),
        "audit.verify_entries_per_s": round(ENTRIES / elapsed),
    }


GOALS = {"audit.verify_1m_s": ("<=", 60.0), "audit.verify_1m_peak_rss_mb": ("<=", 1024.0)}

if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
