"""``make demo``: the MedLedger story on a local consortium, every step checked.

Uses a running local consortium (``make run``, data directory ``data``) or starts one for the
duration. Each step runs the real ``medledger`` CLI against the real nodes and asserts its
outcome; the demo exits non-zero at the first step whose outcome differs.

    python scripts/demo.py [--data-dir data] [--imaging-mb 200]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from ledger_api.chain.devnet import dev_passphrase
from ledger_api.cli.consortium import up_command

BOLD, GREEN, RED, RESET = "\033[1m", "\033[32m", "\033[31m", "\033[0m"


class StepFailed(Exception):
    pass


class Demo:
    def __init__(self, data_dir: Path, work: Path) -> None:
        self.data_dir, self.work = data_dir, work
        state = json.loads((data_dir / "consortium.json").read_text())
        self.nodes = state["nodes"]
        self.keys = data_dir / "chain" / "keys"
        self.env = {
            **os.environ,
            "MEDLEDGER_KEYSTORE_PASSPHRASE": dev_passphrase(),
            "MEDLEDGER_PATIENT_PASSPHRASE": "demo patient passphrase, development only",
        }
        self.number = 0

    def url(self, slug: str) -> str:
        return self.nodes[slug]["url"]

    def account(self, slug: str) -> str:
        return self.nodes[slug]["account"]

    def step(self, title: str) -> None:
        self.number += 1
        print(f"\n{BOLD}{self.number}. {title}{RESET}", flush=True)

    def cli(self, *args: str, expect_ok: bool = True, show: bool = True) -> str:
        """Runs ``medledger args``; checks success or failure as expected; returns its output."""
        done = subprocess.run(
            [sys.executable, "-m", "ledger_api.cli", *args],
            env=self.env,
            text=True,
            stdout=subprocess.PIPE if not show else None,
            stderr=subprocess.PIPE,
        )
        output = (done.stdout or "") + done.stderr
        if show and done.stderr:
            print(done.stderr.strip())
        if (done.returncode == 0) != expect_ok:
            raise StepFailed(
                f"`medledger {' '.join(args[:2])}` exited {done.returncode}; expected "
                f"{'success' if expect_ok else 'a refusal'}: {output.strip()[:400]}"
            )
        return output

    def json(self, *args: str) -> object:
        done = subprocess.run(
            [sys.executable, "-m", "ledger_api.cli", *args, "--json"], env=self.env, text=True, capture_output=True
        )
        if done.returncode != 0:
            raise StepFailed(f"`medledger {' '.join(args[:2])}` failed: {done.stderr.strip()[:400]}")
        return json.loads(done.stdout)

    def ok(self, message: str) -> None:
        print(f"   {GREEN}✓ {message}{RESET}", flush=True)


def _captured(demo: Demo, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "ledger_api.cli", *args], env=demo.env, text=True, capture_output=True)
    print((done.stdout + done.stderr).strip())
    if done.returncode != 0:
        raise StepFailed(f"`medledger {' '.join(args[:2])}` failed")
    return done.stdout


def _wait(predicate, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise StepFailed(f"timed out waiting for {what}")
        time.sleep(0.5)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def story(demo: Demo, imaging_mb: int) -> None:
    work, keys = demo.work, demo.keys
    a, b, c = "dapeng", "kuichong", "nanao"
    patient_key = work / "patient.json"
    consents = lambda: demo.json("patient", "consents", "--key", str(patient_key), "--node", demo.url(a))  # noqa: E731

    demo.step("A patient creates an account (the key stays on the patient's device)")
    out = _captured(demo, "patient", "new", "--key", str(patient_key), "--dev")
    patient = re.search(r"0x[0-9a-fA-F]{40}", out).group(0)  # type: ignore[union-attr]
    demo.ok(f"patient account {patient}")

    demo.step(f"{demo.nodes[a]['name']} uploads a lab report and a {imaging_mb} MB imaging study")
    labs_file, imaging_file = work / "lab-report.txt", work / "imaging-study.dcm"
    labs_file.write_text("HbA1c 6.1 %; fasting glucose 5.9 mmol/L; LDL 2.4 mmol/L\n" * 20)
    with open(imaging_file, "wb") as handle:
        for _ in range(imaging_mb):
            handle.write(os.urandom(1 << 20))
    ids = {}
    for name, path, category, media in (
        ("labs", labs_file, "labs", "text/plain"),
        ("imaging", imaging_file, "imaging", "application/dicom"),
    ):
        out = _captured(
            demo,
            "record",
            "put",
            str(path),
            "--patient",
            patient,
            "--category",
            category,
            "--media-type",
            media,
            "--identity",
            str(keys / f"{a}.json"),
            "--node",
            demo.url(a),
        )
        ids[name] = re.search(r"record (?:\x1b\[1m)?([0-9a-f]{64})", out).group(1)  # type: ignore[union-attr]
    demo.ok(f"stored encrypted and anchored: labs {ids['labs'][:12]}…, imaging {ids['imaging'][:12]}…")

    def read(slug: str, record: str, purpose: str = "treatment", expect_ok: bool = True) -> Path:
        target = work / f"{slug}-{record[:8]}-{purpose}.out"
        demo.cli(
            "record",
            "get",
            record,
            "--custodian",
            demo.account(a),
            "--purpose",
            purpose,
            "--clinician",
            f"dr-{slug}-01",
            "--identity",
            str(keys / f"{slug}.json"),
            "--node",
            demo.url(slug),
            "--out",
            str(target),
            expect_ok=expect_ok,
        )
        return target

    demo.step(f"{demo.nodes[b]['name']} asks for the lab report without consent")
    read(b, ids["labs"], expect_ok=False)
    demo.ok("denied")

    demo.step("The patient grants B treatment-only access to labs and imaging for 24 hours")
    _captured(
        demo,
        "patient",
        "grant",
        "--key",
        str(patient_key),
        "--to",
        demo.account(b),
        "--categories",
        "labs,imaging",
        "--purposes",
        "treatment",
        "--hours",
        "24",
        "--node",
        demo.url(a),
    )
    _wait(lambda: any(x["status"] == "active" for x in consents()), "the consent to land on chain")
    (consent,) = [x for x in consents() if x["status"] == "active"]
    demo.ok(f"consent {consent['consent_id'][:14]}… active on chain")

    demo.step("B reads both records (the imaging study streams through B's node)")
    assert _sha256(read(b, ids["labs"])) == _sha256(labs_file)
    assert _sha256(read(b, ids["imaging"])) == _sha256(imaging_file)
    demo.ok("both decrypted by B's node and identical to the originals")

    demo.step("B asks for the lab report for research")
    read(b, ids["labs"], purpose="research", expect_ok=False)
    demo.ok("denied: the consent covers treatment only")

    demo.step("The patient revokes the consent; B asks again")
    _captured(
        demo, "patient", "revoke", "--key", str(patient_key), "--consent", consent["consent_id"], "--node", demo.url(a)
    )
    _wait(lambda: any(x["status"] == "revoked" for x in consents()), "the revocation to land on chain")
    read(b, ids["labs"], expect_ok=False)
    demo.ok("denied on the very next request")

    demo.step(f"{demo.nodes[c]['name']} declares break-glass for the unconscious patient and reads")
    demo.cli(
        "emergency",
        "--patient",
        patient,
        "--reason-code",
        "1",
        "--justification",
        "unconscious on arrival, suspected diabetic emergency",
        "--clinician",
        "dr-nanao-er",
        "--identity",
        str(keys / f"{c}.json"),
        "--node",
        demo.url(c),
    )
    assert _sha256(read(c, ids["labs"])) == _sha256(labs_file)
    demo.ok("read under break-glass, flagged for review")

    demo.step("The patient's history shows all of it")
    history = demo.json("patient", "history", "--key", str(patient_key), "--node", demo.url(a))
    assert isinstance(history, list)
    readers = [(e["requester"], e["basis"]) for e in history if e["action"] == "read"]
    assert (demo.account(b), "consent") in readers and (demo.account(c), "break_glass") in readers, readers
    assert sum(1 for e in history if e["break_glass"]) == 1
    for entry in history:
        flag = f" {RED}BREAK-GLASS{RESET}" if entry["break_glass"] else ""
        print(
            f"   {entry['created_at'][:19]}  {entry['requester'][:10]}…  {entry['clinician']:<14} "
            f"purpose {entry['purpose']}  {entry['basis']}{flag}"
        )
    demo.ok(f"{len(history)} accesses, break-glass flagged")

    demo.step("The auditor verifies the whole trail against the chain")
    _wait(
        lambda: all(
            e["anchoring"] == "anchored"
            for e in demo.json("patient", "history", "--key", str(patient_key), "--node", demo.url(a))
        ),
        "every access to be anchored",
    )
    demo.cli("audit", "verify", "--data-dir", str(demo.data_dir), "--html", str(work / "audit-report.html"))
    demo.ok(f"verification passed; report in {work / 'audit-report.html'}")

    demo.step("The auditor exports the trail and the consents as FHIR R4 for the hospitals' systems")
    fhir_dir = demo.data_dir / "demo-fhir"
    demo.cli("audit", "fhir", "--data-dir", str(demo.data_dir), "--out", str(fhir_dir))
    events = [json.loads(line) for line in (fhir_dir / "AuditEvent.ndjson").read_text().splitlines()]
    consents_fhir = [json.loads(line) for line in (fhir_dir / "Consent.ndjson").read_text().splitlines()]
    history_ids = {e["entry_hash"] for e in history}
    assert history_ids <= {e["id"] for e in events}, "an access of the patient's history is missing from the export"
    emergency = [
        e
        for e in events
        if e["id"] in history_ids and any(c["code"] == "BTG" for p in e["purposeOfEvent"] for c in p["coding"])
    ]
    assert len(emergency) == 1, emergency
    revoked = [c for c in consents_fhir if c["identifier"][0]["value"] == consent["consent_id"]]
    assert revoked and revoked[0]["status"] == "inactive", revoked
    demo.ok(
        f"{len(events)} AuditEvent (break-glass coded BTG) and {len(consents_fhir)} Consent "
        f"(the revoked one inactive) in {fhir_dir}"
    )


def _running(data_dir: Path) -> bool:
    state = data_dir / "consortium.json"
    if not state.exists():
        return False
    try:
        nodes = json.loads(state.read_text())["nodes"]
        return len(nodes) >= 3 and all(
            httpx.get(f"{n['url']}/readyz", timeout=3).status_code == 200 for n in nodes.values()
        )
    except (httpx.HTTPError, ValueError, KeyError):
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data"))
    parser.add_argument("--imaging-mb", type=int, default=200)
    parser.add_argument("--rpc-port", type=int, default=8545)
    parser.add_argument("--base-port", type=int, default=8601)
    parser.add_argument("--network", choices=("anvil", "clique"), default="anvil")
    args = parser.parse_args()
    supervisor = None
    if not _running(args.data_dir):
        print(f"starting a local consortium in {args.data_dir} ...", flush=True)
        supervisor = subprocess.Popen(
            up_command(
                args.data_dir, rpc_port=args.rpc_port, base_port=args.base_port, extra=("--network", args.network)
            ),
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while not _running(args.data_dir):
            if supervisor.poll() is not None or time.monotonic() > deadline:
                print(f"{RED}the local consortium did not start{RESET}")
                return 3
            time.sleep(0.5)
    try:
        with tempfile.TemporaryDirectory(prefix="medledger-demo-") as tmp:
            work = Path(tmp)
            story(Demo(args.data_dir, work), args.imaging_mb)
            report = work / "audit-report.html"
            kept = args.data_dir / "demo-audit-report.html"
            kept.write_bytes(report.read_bytes())
        print(f"\n{GREEN}{BOLD}demo passed{RESET}: every step had its expected outcome (audit report: {kept})")
        return 0
    except (StepFailed, AssertionError) as exc:
        print(f"\n{RED}{BOLD}demo FAILED{RESET}: {exc}")
        return 1
    finally:
        if supervisor is not None:
            supervisor.send_signal(signal.SIGINT)
            supervisor.wait(timeout=60)


if __name__ == "__main__":
    sys.exit(main())
