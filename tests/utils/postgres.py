"""A real PostgreSQL server for the test suite and the benchmarks, started by the project itself.

Why this exists: no machine (a developer's, CI's, a newcomer's) has PostgreSQL running beforehand.
We use Debian's server binaries (package `postgresql`, which `make postgres` installs when they are
missing) and run a throw-away cluster of our own: `initdb` into a fresh temporary folder, started on
a free loopback port with its socket in that folder, so it never clashes with a server a developer
already runs on 5432, and removed when the run ends. PostgreSQL refuses to run as root, so as root
every server command runs as the `postgres` system user that Debian's package creates.

The pytest controller starts one server per run (`tests/conftest.py`) and exports its admin URL in
`MEDLEDGER_TEST_POSTGRES_URL`; xdist workers inherit it. Anything else that needs PostgreSQL (the
reliability benchmark) calls `admin_url()`, which starts a server for that process if none is named.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from ledger_api.chain.backends import free_port

ENV_URL = "MEDLEDGER_TEST_POSTGRES_URL"
#: the server's data directory (tests that scan what PostgreSQL wrote to disk read it)
ENV_DATA = "MEDLEDGER_TEST_POSTGRES_DATA"
SERVER_USER = "postgres"


class PostgresNotInstalled(RuntimeError):
    """Debian's PostgreSQL server binaries are missing: `make postgres` installs them."""


def server_bindir() -> Path:
    """The newest Debian PostgreSQL server installed (`/usr/lib/postgresql/<major>/bin`)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    if candidates:
        return Path(candidates[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).parent
    raise PostgresNotInstalled("no PostgreSQL server binaries (initdb): run `make postgres` (Debian's postgresql)")


class TestPostgres:
    """One throw-away PostgreSQL cluster on 127.0.0.1:<free port>, superuser `postgres`, trust auth."""

    __test__ = False  # not a test class, whatever its name says to pytest

    def __init__(self) -> None:
        self.bindir = server_bindir()
        self.as_root = os.geteuid() == 0
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="medledger-pg-"))
        self.data = self.dir / "data"
        if self.as_root:
            owner = pwd.getpwnam(SERVER_USER)
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
        self._started = False

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        command = [str(self.bindir / argv[0]), *argv[1:]]
        if self.as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=self.dir)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")

    def start(self) -> TestPostgres:
        # --no-sync and fsync=off: a test cluster is thrown away; durability against power loss is not
        # what these tests check (crash drills kill the node, never the database server)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=300"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-w", "-t", "60", "-o", options, "start"
        )
        self._started = True
        return self

    def stop(self) -> None:
        if self._started:
            self._started = False
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                pass  # already gone; the folder goes anyway
        shutil.rmtree(self.dir, ignore_errors=True)


_own_server: TestPostgres | None = None


def start_for_process() -> TestPostgres:
    """Start a server owned by this process and stopped when it exits."""
    global _own_server
    if _own_server is None:
        _own_server = TestPostgres().start()
        atexit.register(_own_server.stop)
        os.environ.setdefault(ENV_DATA, str(_own_server.data))
    return _own_server


def admin_url() -> str:
    """The admin URL of the run's server: the one named in the environment, else one of our own."""
    named = os.environ.get(ENV_URL)
    if named:
        return named
    return start_for_process().admin_url


def data_directory() -> Path:
    """Where the run's server keeps its files (heap, write-ahead log)."""
    admin_url()
    return Path(os.environ.get(ENV_DATA) or start_for_process().data)


def server_port() -> int:
    url = admin_url()
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])
