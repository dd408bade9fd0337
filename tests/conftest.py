"""Shared fixtures: one chain per backend per worker, a fresh snapshot for every test."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
import structlog

from ledger_api.chain.backends import AnvilBackend, ChainBackend, EthTesterBackend
from ledger_api.chain.deployment import DeploymentManifest
from tests.utils import postgres
from tests.utils.actors import Actors, Chain, deploy_test_consortium

BACKENDS = ["eth_tester", "anvil"]

# Nodes run inside the test process; their logs go to stderr so command output stays parseable.
structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))


def pytest_configure(config: pytest.Config) -> None:
    """The run's PostgreSQL server: started once by the controller (xdist workers inherit its URL)."""
    if os.environ.get("PYTEST_XDIST_WORKER") or os.environ.get(postgres.ENV_URL):
        return
    server = postgres.TestPostgres().start()
    os.environ[postgres.ENV_URL] = server.admin_url
    os.environ[postgres.ENV_DATA] = str(server.data)
    config.stash[_POSTGRES] = server


def pytest_unconfigure(config: pytest.Config) -> None:
    server = config.stash.get(_POSTGRES, None)
    if server is not None:
        server.stop()
        del os.environ[postgres.ENV_URL], os.environ[postgres.ENV_DATA]


_POSTGRES = pytest.StashKey[postgres.TestPostgres]()


#: the modules whose tests take one to three minutes each (the 30 slowest, as pytest prints them)
LONGEST = ("test_crash_drills.py", "test_demo_on_network.py", "test_soak.py", "test_demo.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests first, then the other slow end-to-end ones, then the rest (each in collection
    order). xdist hands tests out in this order as workers come free: a two-minute test handed out last
    leaves the other worker idle while it runs; handed out first, it runs beside the many short ones."""

    def tier(item: pytest.Item) -> int:
        if item.path.name in LONGEST:
            return 0
        return 1 if item.get_closest_marker("slow") or item.get_closest_marker("network") else 2

    items.sort(key=tier)


def start_backend(kind: str) -> ChainBackend:
    return EthTesterBackend() if kind == "eth_tester" else AnvilBackend()


@pytest.fixture(scope="session")
def actors() -> Actors:
    return Actors.create()


@pytest.fixture(scope="session", params=BACKENDS)
def deployed(request: pytest.FixtureRequest, actors: Actors) -> Iterator[tuple[ChainBackend, DeploymentManifest]]:
    """A backend with the consortium deployed once per test session."""
    backend = start_backend(request.param)
    try:
        yield backend, deploy_test_consortium(backend, actors)
    finally:
        backend.close()


@pytest.fixture
def chain(deployed: tuple[ChainBackend, DeploymentManifest], actors: Actors) -> Iterator[Chain]:
    """The deployed consortium, rolled back after the test (senders are per test: nonces restart)."""
    backend, manifest = deployed
    snapshot = backend.snapshot()
    try:
        yield Chain(backend, manifest, actors)
    finally:
        backend.revert(snapshot)
