"""A member that hangs cannot freeze the node: consortium fan-outs wait on the event loop, not in the
threads other routes need, and each patient has only a few in flight (issue: hostile patients and
members, 9)."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from eth_account import Account

from ledger_api.core.rate_limit import InFlightSlots, TokenBuckets
from tests.consortium.conftest import TwoNodes
from tests.consortium.test_patient_overview import VIEW

PATIENTS = 25
PER_PATIENT = 4


def test_readyz_answers_at_once_while_one_member_hangs_and_100_overviews_are_in_flight(two_nodes: TwoNodes) -> None:
    world = two_nodes
    node = world.b.node
    node.fanout_slots = InFlightSlots(per_key=PER_PATIENT, total=128)  # room for 100 at once in this test
    node.challenge_buckets = TokenBuckets(rate_per_s=100, burst=100)  # 25 sign-ins from one address
    hanging = socket.socket()  # member C accepts connections and never answers
    hanging.bind(("127.0.0.1", urlsplit(world.ids.endpoints["c"]).port))
    hanging.listen(256)
    patients = [Account.create() for _ in range(PATIENTS)]
    sessions = [world.b.patient_client(p, resources=VIEW) for p in patients]
    try:

        def overview(index: int) -> int:
            client, patient = sessions[index % PATIENTS], patients[index % PATIENTS]
            return client.get(
                f"/v1/patients/{patient.address}/overview/records", params={"deadline_ms": 12_000}
            ).status_code

        with ThreadPoolExecutor(PATIENTS * PER_PATIENT) as pool:
            futures = [pool.submit(overview, i) for i in range(PATIENTS * PER_PATIENT)]
            # every one has reached the node and holds its slot, waiting on C (on a loaded machine the
            # last requests take a while to arrive: wait for them, not for a fixed time)
            deadline = time.monotonic() + 30
            while node.fanout_slots.in_flight() < PATIENTS * PER_PATIENT and time.monotonic() < deadline:
                time.sleep(0.05)
            assert node.fanout_slots.in_flight() == PATIENTS * PER_PATIENT
            assert not any(f.done() for f in futures)
            with world.b.anonymous() as client:
                started = time.monotonic()
                ready = client.get("/readyz")
                took = time.monotonic() - started
            assert ready.status_code == 200 and took < 1.0, f"/readyz took {took:.2f}s"
            # a fifth for the same patient: refused at once, not queued
            refused = sessions[0].get(f"/v1/patients/{patients[0].address}/overview/records")
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
            statuses = [f.result(timeout=30) for f in futures]
        assert statuses == [200] * (PATIENTS * PER_PATIENT)  # each reports C as unreachable, not a failure
    finally:
        hanging.close()
        for session in sessions:
            session.close()
