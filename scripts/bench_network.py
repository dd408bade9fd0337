"""Network benchmarks: the consortium on the 4-validator Clique network (1 s blocks), what
`make run NETWORK=clique` starts, against the same figures on anvil in the same run.

Figures:
- ``network.startup_s``: ``consortium up --network clique`` on a fresh data directory until every
  member node is ready (validators started, agreeing, contracts deployed through one of them);
- ``network.consent_relay_confirm_p50_ms``: a patient's signed grant accepted by a member (202) until
  the relay shows it confirmed (on Clique: two blocks deep, see ``cli.consortium.CLIQUE_CONFIRMATIONS``);
  ``network.consent_grant_effective_p50_ms``: until then the grantee's read at its own node succeeds (the
  grant sealed in a block: what "confirmed" means on QBFT, whose blocks are final);
- ``network.revocation_visible_all_members_ms``: a revocation confirmed until every member refuses the
  consent it revoked (p50 over a few), each member asking its own validator;
- ``network.fetch_rps`` and ``network.fetch_rps_anvil``: 32 clients reading records through one member
  node, on the network and on anvil, side by side;
- ``network.validator_kill_failed_requests``: under light load through every member, one validator is
  SIGKILLed and restarted; requests that failed for any reason other than the documented 503
  ``chain-unavailable`` of the member whose validator died;
- ``network.validator_disk_mb_archive`` / ``..._full``: a validator's chain data after the same
  transactions, keeping every block's state (what the validators here run) or only recent state.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from eth_account import Account
from medledger_crypto import ConsentGrant, ConsentRevocation, sign_typed

from ledger_api.auth.signing import MemberAuth
from ledger_api.chain.backends import free_port
from ledger_api.chain.clique import CliqueNetwork
from ledger_api.chain.devnet import dev_passphrase, load_or_create_identity, start_network
from ledger_api.cli.consortium import up_command
from ledger_api.consents.wire import grant_body, terms_under_notice

BLOCK_PERIOD_S = 1.0
GOALS = {
    "network.startup_s": ("<=", 60.0),
    "network.consent_relay_confirm_p50_ms": ("<=", 2 * BLOCK_PERIOD_S * 1000),
    "network.revocation_visible_all_members_ms": ("<=", BLOCK_PERIOD_S * 1000),
    "network.validator_kill_failed_requests": ("<=", 0.0),
}
MEMBERS = ("dapeng", "kuichong", "nanao")


def signature_json(signature: tuple[int, bytes, bytes]) -> dict[str, object]:
    v, r, s = signature
    return {"v": v, "r": r.hex(), "s": s.hex()}


class Consortium:
    """A running ``consortium up`` (anvil or clique) and the dev identities of its members."""

    def __init__(self, data: Path, network: str) -> None:
        self.data = data
        started = time.monotonic()
        self.process = subprocess.Popen(
            up_command(data, rpc_port=free_port(), base_port=free_port(3), extra=("--network", network)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: list[str] = []
        assert self.process.stdout is not None
        for line in self.process.stdout:
            lines.append(line)
            if "press Ctrl-C" in line:
                break
        else:
            raise RuntimeError("consortium did not start:\n" + "".join(lines))
        threading.Thread(target=lambda: [None for _ in self.process.stdout or []], daemon=True).start()
        self.startup_s = time.monotonic() - started
        self.state = json.loads((data / "consortium.json").read_text())
        keys = data / "chain" / "keys"
        self.identities = {s: load_or_create_identity(keys / f"{s}.json") for s in (*MEMBERS, "auditor")}
        self.chain_id = self.state["chain_id"]
        self.consent_registry = json.loads((data / "chain" / "deployment.json").read_text())["contracts"][
            "ConsentRegistry"
        ]["address"]

    def url(self, slug: str) -> str:
        return str(self.state["nodes"][slug]["url"])

    def client(self, slug: str, account: str | None = None) -> httpx.Client:
        """``account``'s system (default: the member's own) signing its requests to ``slug``'s node."""
        signer = self.identities[account or slug].account
        auth = MemberAuth(account=signer, chain_id=self.chain_id, audience=self.identities[slug].address)
        return httpx.Client(base_url=self.url(slug), auth=auth, timeout=60)

    def relay_grant(self, patient, grantees: tuple[str, ...], nonce: int) -> int:
        """The patient's grant naming ``grantees`` (member slugs), relayed by dapeng's node: its outbox item."""
        now = int(time.time())
        terms = terms_under_notice(
            grantees=tuple(self.identities[slug].address for slug in grantees),
            categories=1,
            purposes=1,
            valid_from=now - 60,
            valid_until=now + 86_400,
        )
        message = ConsentGrant.of(patient.address, terms, nonce=nonce, deadline=now + 600)
        signature = sign_typed(patient, message.document(chain_id=self.chain_id, contract=self.consent_registry))
        body = grant_body(message, signature)
        with self.client("dapeng") as client:
            response = client.post("/v1/consents", json=body)
        assert response.status_code == 202, response.text
        return int(response.json()["id"])

    def relay_revocation(self, patient, consent_id: int, nonce: int) -> int:
        deadline = int(time.time()) + 600
        message = ConsentRevocation(patient=patient.address, consent_id=consent_id, nonce=nonce, deadline=deadline)
        signature = sign_typed(patient, message.document(chain_id=self.chain_id, contract=self.consent_registry))
        body = {"consent_id": str(consent_id), "nonce": nonce, "deadline": deadline}
        with self.client("dapeng") as client:
            response = client.post("/v1/consents/revocations", json={**body, "signature": signature_json(signature)})
        assert response.status_code == 202, response.text
        return int(response.json()["id"])

    def confirmed(self, relay: int, timeout: float = 120) -> dict:
        deadline = time.monotonic() + timeout
        with self.client("dapeng") as client:
            while time.monotonic() < deadline:
                status = client.get(f"/v1/relays/{relay}").json()
                if status["state"] == "confirmed":
                    return dict(status)
                assert status["state"] != "failed", status
                time.sleep(0.01)
        raise RuntimeError(f"relay {relay} not confirmed in {timeout:.0f}s")

    def upload(self, patient: str) -> str:
        with self.client("dapeng") as client:
            response = client.post(
                "/v1/records",
                content=os.urandom(16 * 1024),
                headers={"content-type": "application/octet-stream"},
                params={"patient": patient, "category": "labs", "media_type": "text/plain"},
            )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def read(self, reader: str, record: str) -> httpx.Response:
        params = {"custodian": self.identities["dapeng"].address, "purpose": "treatment", "clinician": "bench"}
        with self.client(reader) as client:
            return client.get(f"/v1/consortium/records/{record}", params=params)

    def settle(self) -> None:
        """Waits until every member's outbox has sent everything (the fetch figures are the fetch path's own)."""
        from bench_api import _settle

        for slug in MEMBERS:
            _settle(self.url(slug))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=120)


def _fetch_rps(consortium: Consortium) -> float:
    """32 clients in a closed loop reading dapeng's records (as kuichong, under its consent) at dapeng's node."""
    from bench_api import LoadClients

    from ledger_api.auth.signing import sign_headers

    patient = Account.create()
    records = [consortium.upload(patient.address) for _ in range(16)]
    consortium.confirmed(consortium.relay_grant(patient, ("kuichong",), 0))
    consortium.settle()
    url = consortium.url("dapeng")
    reader = consortium.identities["kuichong"].account

    def fetches(count: int) -> list:
        requests = []
        for i in range(count):
            path = f"/v1/records/{records[i % len(records)]}/content?purpose=treatment&clinician=bench"
            headers = sign_headers(
                reader,
                chain_id=consortium.chain_id,
                audience=consortium.identities["dapeng"].address,
                method="GET",
                url=url + path,
            )
            requests.append(("GET", path, headers, None))
        return requests

    with LoadClients(url, 32) as clients:
        clients.run(fetches(64))
        consortium.settle()
        run = clients.run(fetches(600))
    return run.rps


def _relay_and_revocation(consortium: Consortium, figures: dict[str, float]) -> None:
    confirm_ms: list[float] = []
    visible_ms: list[float] = []
    effective_ms: list[float] = []
    record_patient = Account.create()
    record = consortium.upload(record_patient.address)
    readers = ("kuichong", "nanao")  # the grant names both: a grant names members, never "any member"
    for round_ in range(5):
        patient = Account.create() if round_ else record_patient
        if round_:
            record = consortium.upload(patient.address)
        nonce = 0
        start = time.monotonic()
        relay = consortium.relay_grant(patient, readers, nonce)
        while consortium.read("kuichong", record).status_code != 200:  # sealed in a block: effective
            assert time.monotonic() - start < 60, "a grant did not take effect within a minute"
        effective_ms.append((time.monotonic() - start) * 1000)
        status = consortium.confirmed(relay)
        confirm_ms.append((time.monotonic() - start) * 1000)
        consent_id = int(status["consent_id"])
        for reader in readers:
            assert consortium.read(reader, record).status_code == 200
        consortium.confirmed(consortium.relay_revocation(patient, consent_id, nonce + 1))
        confirmed_at = time.monotonic()
        pending = set(readers)
        while pending:
            for reader in list(pending):
                if consortium.read(reader, record).status_code == 403:
                    pending.discard(reader)
            assert time.monotonic() - confirmed_at < 60, "a revocation was not honoured within a minute"
        visible_ms.append((time.monotonic() - confirmed_at) * 1000)
    for _ in range(5):  # more grant confirmations for the p50
        patient = Account.create()
        start = time.monotonic()
        consortium.confirmed(consortium.relay_grant(patient, readers, 0))
        confirm_ms.append((time.monotonic() - start) * 1000)
    figures["network.consent_relay_confirm_p50_ms"] = statistics.median(confirm_ms)
    figures["network.consent_grant_effective_p50_ms"] = statistics.median(effective_ms)
    figures["network.revocation_visible_all_members_ms"] = statistics.median(visible_ms)
    figures["network.revocation_visible_all_members_max_ms"] = max(visible_ms)


def _validator_kill(consortium: Consortium, figures: dict[str, float]) -> None:
    patient = Account.create()
    record = consortium.upload(patient.address)
    consortium.confirmed(consortium.relay_grant(patient, ("kuichong",), 0))
    failures: Counter[str] = Counter()
    counted: Counter[str] = Counter()
    stop = threading.Event()

    def load(action: str) -> None:
        while not stop.is_set():
            if action == "upload":
                with consortium.client("dapeng") as client:
                    response = client.post(
                        "/v1/records",
                        content=os.urandom(4096),
                        headers={"content-type": "application/octet-stream"},
                        params={"patient": patient.address, "category": "labs", "media_type": "text/plain"},
                    )
                member = "dapeng"
            else:
                response = consortium.read("kuichong", record)
                member = "kuichong"
            counted[action] += 1
            documented = response.status_code == 503 and member == "dapeng" and "chain-unavailable" in response.text
            if response.status_code >= 400 and not documented:
                failures[f"{action} {response.status_code}"] += 1
            stop.wait(0.1)

    threads = [threading.Thread(target=load, args=(a,), daemon=True) for a in ("upload", "read")]
    for thread in threads:
        thread.start()
    network = CliqueNetwork(consortium.data / "chain" / "network", passphrase=dev_passphrase())
    time.sleep(3)
    os.kill(consortium.state["validators"]["dapeng"]["pid"], 9)
    time.sleep(8)
    network.start(["dapeng"])
    network.wait_until_agreeing(90)
    time.sleep(3)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    figures["network.validator_kill_failed_requests"] = float(sum(failures.values()))
    figures["network.validator_kill_requests"] = float(sum(counted.values()))
    if failures:
        print(f"  requests failed during the validator kill: {dict(failures)}", flush=True)
    consortium.restarted = network  # type: ignore[attr-defined]


def _disk(figures: dict[str, float], base: Path) -> None:
    """The same transactions on a network whose kuichong validator keeps recent state only."""
    from ledger_api.chain.deployment import Consortium as Contracts
    from ledger_api.chain.transactions import TransactionSender

    devnet = start_network(base / "chain", full_nodes=("kuichong",))
    try:
        member = devnet.identities["dapeng"]
        contracts = Contracts(devnet.backend.w3, devnet.manifest, TransactionSender(devnet.backend.w3, member.account))
        now = int(time.time())
        terms = terms_under_notice(
            grantees=(devnet.identities["kuichong"].address,),
            categories=1,
            purposes=1,
            valid_from=now - 1,
            valid_until=now + 3600,
        )
        for _ in range(20):  # the member's account as a patient of its own: it has gas on this network
            contracts.consents.grant(member.address, terms)
        blocks = devnet.backend.w3.eth.block_number
    finally:
        devnet.close()

    def size(name: str) -> float:
        root = base / "chain" / "network" / name / "geth" / "chaindata"
        return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 1e6

    figures["network.validator_disk_blocks"] = float(blocks)
    figures["network.validator_disk_mb_archive"] = size("dapeng")
    figures["network.validator_disk_mb_full"] = size("kuichong")


def run() -> dict[str, float]:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="medledger-bench-network-") as tmp:
        base = Path(tmp)
        network = Consortium(base / "clique", "clique")
        try:
            figures["network.startup_s"] = network.startup_s
            _relay_and_revocation(network, figures)
            figures["network.fetch_rps"] = _fetch_rps(network)
            _validator_kill(network, figures)
        finally:
            network.stop()
            restarted = getattr(network, "restarted", None)
            if restarted is not None:
                restarted.close()
        anvil = Consortium(base / "anvil", "anvil")
        try:
            figures["network.startup_s_anvil"] = anvil.startup_s
            figures["network.fetch_rps_anvil"] = _fetch_rps(anvil)
        finally:
            anvil.stop()
        _disk(figures, base / "disk")
    return figures
