"""`medledger consortium up` (what `make run` runs): real processes, ready nodes, clean stop, resumable."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from ledger_api.chain.backends import free_port
from ledger_api.cli.consortium import ConsortiumConfig, _node_env
from ledger_api.core.config import Settings
from tests.utils.consortium import Supervised
from tests.utils.processes import children_of, read_proc


@pytest.mark.slow
def test_local_consortium_starts_serves_stops_and_resumes(tmp_path: Path) -> None:
    rpc, base = free_port(), free_port(2)
    first = Supervised(tmp_path, rpc, base)
    try:
        first.wait_for("press Ctrl-C")
        assert "Dapeng New District People's Hospital" in first.output
        assert f"http://127.0.0.1:{base}/docs" in first.output
        assert httpx.get(f"http://127.0.0.1:{base}/readyz", timeout=5).json()["status"] == "ready"
        assert httpx.get(f"http://127.0.0.1:{base + 1}/openapi.json", timeout=5).status_code == 200
    finally:
        output = first.stop()
    assert "consortium stopped" in output
    assert (tmp_path / "chain" / "anvil-state.json").exists() and (tmp_path / "nodes" / "dapeng" / "ledger.db").exists()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{base}/healthz", timeout=1)
    again = Supervised(tmp_path, rpc, base)
    try:
        again.wait_for("press Ctrl-C")
        assert httpx.get(f"http://127.0.0.1:{base + 1}/readyz", timeout=5).status_code == 200
        status = subprocess.run(
            [sys.executable, "-m", "ledger_api.cli", "consortium", "status", "--data-dir", str(tmp_path), "--json"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert [n["status"] for n in json.loads(status.stdout)] == ["ready", "ready"], status.stdout
        down = subprocess.run(
            [sys.executable, "-m", "ledger_api.cli", "consortium", "down", "--data-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert "consortium stopped" in down.stdout, down.stdout + down.stderr
        assert again.process.wait(timeout=30) is not None
    finally:
        again.stop()
    gone = subprocess.run(
        [sys.executable, "-m", "ledger_api.cli", "consortium", "status", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert gone.returncode != 0 and "no local consortium is running" in gone.stderr


class ConfiguredUp(Supervised):
    def __init__(self, config: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ledger_api.cli", "consortium", "up", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines = []
        self._reader = threading.Thread(
            target=lambda: self.lines.extend(iter(self.process.stdout.readline, "")), daemon=True
        )
        self._reader.start()


@pytest.mark.slow
def test_one_config_file_points_members_at_postgresql(tmp_path: Path) -> None:
    import psycopg

    from tests.utils.nodes import database

    ports = [free_port(), free_port()]
    with database("postgresql", tmp_path) as url_a, database("postgresql", tmp_path) as url_b:
        config = {
            "data_dir": str(tmp_path / "data"),
            "chain": {"rpc_port": free_port()},
            "members": [
                {"slug": "dapeng", "port": ports[0], "database_url": url_a},
                {"slug": "kuichong", "port": ports[1], "database_url": url_b},
            ],
        }
        (tmp_path / "consortium.json").write_text(json.dumps(config))
        up = ConfiguredUp(tmp_path / "consortium.json")
        try:
            up.wait_for("press Ctrl-C")
            assert all(httpx.get(f"http://127.0.0.1:{p}/readyz", timeout=5).status_code == 200 for p in ports)
        finally:
            up.stop()
        for url in (url_a, url_b):
            with psycopg.connect(url) as connection:
                tables = {r[0] for r in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname='public'")}
            assert {"records", "access_log", "outbox", "alembic_version"} <= tables
    assert not (tmp_path / "data" / "nodes" / "dapeng" / "ledger.db").exists()


@pytest.mark.slow
def test_one_config_file_points_members_at_an_external_chain(tmp_path: Path) -> None:
    from ledger_api.chain.devnet import dev_passphrase, start_devnet

    ports = {"dapeng": free_port(), "kuichong": free_port()}
    external = start_devnet(
        tmp_path / "external", port=free_port(), endpoints={s: f"http://127.0.0.1:{p}" for s, p in ports.items()}
    )
    try:
        manifest = str(tmp_path / "external" / "deployment.json")
        config = {
            "data_dir": str(tmp_path / "data"),
            "chain": {"rpc_url": external.backend.url, "manifest": manifest},
            "members": [
                {"slug": s, "port": p, "keystore": str(tmp_path / "external" / "keys" / f"{s}.json")}
                for s, p in ports.items()
            ],
        }
        (tmp_path / "consortium.json").write_text(json.dumps(config))
        os.environ["MEDLEDGER_KEYSTORE_PASSPHRASE"] = dev_passphrase()
        up = ConfiguredUp(tmp_path / "consortium.json")
        try:
            up.wait_for("press Ctrl-C")
            assert external.backend.url in up.output
            ready = httpx.get(f"http://127.0.0.1:{ports['kuichong']}/readyz", timeout=5).json()
            assert ready["member"] == external.identities["kuichong"].address
        finally:
            up.stop()
            os.environ.pop("MEDLEDGER_KEYSTORE_PASSPHRASE", None)
        assert not (tmp_path / "data" / "chain").exists()  # no chain of its own was started
    finally:
        external.backend.close()


def test_a_bad_config_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text(
        json.dumps({"members": [{"slug": "dapeng", "port": 1}, {"slug": "dapeng", "port": 2}]})
    )
    result = subprocess.run(
        [sys.executable, "-m", "ledger_api.cli", "consortium", "up", "--config", str(tmp_path / "bad.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "distinct slugs and ports" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_node_served_by_several_processes_keeps_one_gap_free_log(tmp_path: Path) -> None:
    """``MEDLEDGER_API_WORKERS=2`` on PostgreSQL: concurrent reads land in both API processes, the log
    stays gap-free (sequences come from the database, not a process), and every entry is anchored once
    by the node's third process, which runs the background jobs."""
    from concurrent.futures import ThreadPoolExecutor

    from medledger_crypto import MemberIdentity

    from ledger_api.auth.signing import MemberAuth
    from ledger_api.chain.devnet import dev_passphrase
    from tests.utils.nodes import database

    port = free_port()
    with database("postgresql", tmp_path) as url:
        config = {
            "data_dir": str(tmp_path / "data"),
            "chain": {"rpc_port": free_port()},
            "members": [{"slug": "dapeng", "port": port, "database_url": url}],
        }
        (tmp_path / "consortium.json").write_text(json.dumps(config))
        os.environ["MEDLEDGER_API_WORKERS"] = "2"
        try:
            up = ConfiguredUp(tmp_path / "consortium.json")
        finally:
            del os.environ["MEDLEDGER_API_WORKERS"]
        try:
            up.wait_for("press Ctrl-C")
            node_pid = int(json.loads((tmp_path / "data" / "consortium.json").read_text())["nodes"]["dapeng"]["pid"])
            children = children_of(node_pid)
            assert sum(b"spawn_main" in read_proc(p, "cmdline") for p in children) == 3  # 2 API processes + the jobs
            identity = MemberIdentity.load(tmp_path / "data" / "chain" / "keys" / "dapeng.json", dev_passphrase())
            manifest = json.loads((tmp_path / "data" / "chain" / "deployment.json").read_text())
            auth = MemberAuth(account=identity.account, chain_id=manifest["chain_id"], audience=identity.address)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=auth, timeout=30) as client:
                record = client.post(
                    "/v1/records",
                    content=b"HbA1c 6.1 %" * 100,
                    params={"patient": "0x" + "11" * 20, "category": "labs", "media_type": "text/plain"},
                    headers={"content-type": "application/octet-stream"},
                ).json()["id"]

            def read(_: int) -> int:
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=auth, timeout=30) as own:
                    return own.get(
                        f"/v1/records/{record}/content", params={"purpose": "treatment", "clinician": "dr-1"}
                    ).status_code

            with ThreadPoolExecutor(8) as pool:
                assert set(pool.map(read, range(40))) == {200}
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=auth, timeout=30) as client:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    log = client.get("/v1/access-log", params={"limit": 100}).json()
                    if all(e["anchoring"] == "anchored" for e in log):
                        break
                    time.sleep(0.5)
            assert [e["sequence"] for e in log] == list(range(1, 41))
            assert all(e["anchoring"] == "anchored" for e in log)
        finally:
            output = up.stop()
        assert "consortium stopped" in output


@pytest.mark.slow
def test_a_node_that_cannot_start_stops_the_consortium_and_its_log_says_why(tmp_path: Path) -> None:
    rpc, base = free_port(), free_port(2)
    with socket.socket() as squatter:  # another program already listens on the second member's port
        squatter.bind(("127.0.0.1", base + 1))
        squatter.listen()
        up = Supervised(tmp_path, rpc, base)
        assert up.process.wait(timeout=120) != 0
        output = up.stop()
    assert "[startup-failed]" in output and "kuichong exited" in output
    assert "address already in use" in output  # the node's own words, from the end of its log


def test_a_new_network_leaves_the_member_nodes_ports_alone(tmp_path: Path) -> None:
    """Validators are planned before the nodes bind their ports: a validator that took one would stop
    a node from starting."""
    taken = set(range(20_000, 25_000))
    assert all(free_port(3, avoid=taken) >= 25_000 for _ in range(50))


def test_status_with_nothing_running_says_so(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ledger_api.cli", "consortium", "status", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "[not-running]" in result.stderr and "make run" in result.stderr and "startup-failed" not in result.stderr


def test_help_and_simple_commands_load_no_chain_or_crypto_stack() -> None:
    """What keeps `medledger --help` fast (figure cli.startup_ms): nothing heavy is imported to show help."""
    probe = (
        "import sys; from ledger_api.cli import app; from typer.testing import CliRunner; "
        "runner = CliRunner(); "
        "[runner.invoke(app, args) for args in (['--help'], ['record', '--help'], ['patient', '--help'], "
        "['consortium', '--help'], ['audit', '--help'], ['chain', '--help'], ['serve', '--help'])]; "
        "print(sorted(m for m in ('web3', 'eth_account', 'medledger_crypto', 'fastapi', 'sqlalchemy') "
        "if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]", result.stdout


def test_the_consortium_file_sets_every_members_retention_rules_and_each_its_own_officers(tmp_path: Path) -> None:
    officer = "0x" + "ab" * 20
    config = ConsortiumConfig.model_validate(
        {
            "data_dir": str(tmp_path),
            "retention": {"outpatient_years": 20},
            "consent_requests": {"max_open_per_patient": 3},
            "members": [{"slug": "dapeng", "port": 8601, "records_officers": {"officer-li": officer}}],
        }
    )
    env = _node_env(config, config.members[0], "http://127.0.0.1:8545", tmp_path / "m.json", tmp_path / "k", "pw")
    retention = Settings.model_validate({"retention": json.loads(env["MEDLEDGER_RETENTION"])}).retention
    assert (retention.outpatient_years, retention.inpatient_years, retention.officers) == (
        20,
        30,
        {"officer-li": officer},
    )
    limits = Settings.model_validate({"consent_requests": json.loads(env["MEDLEDGER_CONSENT_REQUESTS"])})
    assert limits.consent_requests.max_open_per_patient == 3
