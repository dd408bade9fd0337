"""Sharing across members: B's node reads A's records through A's node, only as the chain allows."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from ledger_api.chain.backends import AnvilBackend, free_port
from ledger_api.chain.clients import GrantTerms
from ledger_api.chain.deployment import Consortium
from ledger_api.chain.transactions import TransactionSender
from ledger_api.vocabulary import Category, Purpose, bitset
from tests.utils.nodes import Identities, RunningNode, deploy, start_node

STUDY = bytes(range(256)) * 4096  # 1 MiB "imaging study"


@dataclass
class TwoNodes:
    backend: AnvilBackend
    ids: Identities
    a: RunningNode
    b: RunningNode
    patient: LocalAccount

    def grant_b(self, categories: int, purposes: int = bitset([Purpose.TREATMENT])) -> int:
        now = int(self.backend.w3.eth.get_block("latest")["timestamp"])
        consents = Consortium(self.backend.w3, self.a.node.manifest,
                              TransactionSender(self.backend.w3, self.patient)).consents  # fmt: skip
        terms = GrantTerms(grantee=self.ids.members["b"].address, categories=categories, purposes=purposes,
                           valid_from=now - 1, valid_until=now + 3600)  # fmt: skip
        return consents.grant(self.patient.address, terms).event("ConsentGranted").args["consentId"]


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[TwoNodes]:
    ports = {slug: free_port() for slug in ("a", "b", "c")}  # c is registered but never started
    ids = Identities({slug: f"http://127.0.0.1:{port}" for slug, port in ports.items()})
    with AnvilBackend() as backend, ExitStack() as stack:
        manifest = deploy(backend, ids, Account.create())
        nodes = {slug: stack.enter_context(start_node(backend, manifest, ids.members[slug], tmp_path / slug,
                                                      f"sqlite:///{tmp_path / slug}.db", port=ports[slug]))
                 for slug in ("a", "b")}  # fmt: skip
        patient = Account.create()
        backend.fund(patient.address, 10**19)
        yield TwoNodes(backend, ids, nodes["a"], nodes["b"], patient)


def _upload(world: TwoNodes, body: bytes, category: Category) -> str:
    with world.a.member_client(world.ids.members["a"].account) as client:
        response = client.post("/v1/records", content=body, headers={"content-type": "application/octet-stream"},
                               params={"patient": world.patient.address, "category": category.name.lower(),
                                       "media_type": "application/dicom"})  # fmt: skip
    assert response.status_code == 201, response.text
    world.a.drain()
    return response.json()["id"]


def _fetch_via_b(world: TwoNodes, record_id: str, purpose: str = "treatment"):  # noqa: ANN202
    with world.b.member_client(world.ids.members["b"].account) as client:
        return client.get(f"/v1/consortium/records/{record_id}",
                          params={"custodian": world.ids.members["a"].address, "purpose": purpose,
                                  "clinician": "dr-li-22"})  # fmt: skip


def test_b_reads_a_record_through_both_nodes_only_with_consent(two_nodes: TwoNodes) -> None:
    world = two_nodes
    record_id = _upload(world, STUDY, Category.IMAGING)
    denied = _fetch_via_b(world, record_id)
    assert denied.status_code == 403 and denied.json()["code"] == "consent-denied"
    consent_id = world.grant_b(bitset([Category.IMAGING]))
    served = _fetch_via_b(world, record_id)
    assert served.status_code == 200, served.text
    assert served.content == STUDY and served.headers["content-type"] == "application/dicom"
    assert served.headers["x-medledger-basis"] == "consent"
    assert _fetch_via_b(world, record_id, purpose="research").status_code == 403
    # A logged the release to B, with B's clinician, and anchors it
    with world.a.member_client(world.ids.members["a"].account) as client:
        (entry,) = client.get("/v1/access-log").json()
    assert (entry["requester"], entry["clinician"], entry["authorization"]) == (
        world.ids.members["b"].address, "dr-li-22", f"{consent_id:064x}")
    # B's disk never held plaintext
    assert not [p for p in world.b.node.blob_dir.rglob("*") if p.is_file()]


def _tamper_blob(world: TwoNodes, record_id: str) -> bytes:
    blob = next((world.a.node.blob_dir / record_id).glob("*.bin"))
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1
    blob.write_bytes(bytes(data))
    return bytes(data)


def test_a_custodian_refuses_to_serve_its_own_tampered_ciphertext(two_nodes: TwoNodes) -> None:
    world = two_nodes
    record_id = _upload(world, b"potassium 4.1 mmol/L" * 100, Category.LABS)
    world.grant_b(bitset([Category.LABS]))
    _tamper_blob(world, record_id)
    response = _fetch_via_b(world, record_id)
    assert response.status_code == 500 and response.json()["code"] == "integrity-violation"


def test_the_reader_checks_the_chain_anchor_even_if_the_custodian_lies(two_nodes: TwoNodes) -> None:
    import blake3
    from sqlmodel import select

    from ledger_api.core.db import session_scope
    from ledger_api.records.models import RecordVersion

    world = two_nodes
    record_id = _upload(world, b"potassium 4.1 mmol/L" * 100, Category.LABS)
    world.grant_b(bitset([Category.LABS]))
    forged = _tamper_blob(world, record_id)
    with session_scope(world.a.node.engine) as session:  # a custodian whose own records were doctored
        row = session.exec(select(RecordVersion).where(RecordVersion.record_id == record_id)).one()
        row.content_hash = blake3.blake3(forged).hexdigest()
        session.add(row)
    response = _fetch_via_b(world, record_id)
    assert response.status_code == 500 and "anchored on chain" in response.json()["detail"]
    assert not [p for p in world.b.node.blob_dir.rglob("*") if p.is_file()]


def test_fan_out_reports_each_member_and_survives_one_down(two_nodes: TwoNodes) -> None:
    world = two_nodes
    _upload(world, b"HbA1c 6.1%", Category.LABS)
    _upload(world, b"psychiatric assessment", Category.MENTAL_HEALTH)
    world.grant_b(bitset([Category.LABS]))
    with world.b.member_client(world.ids.members["b"].account) as client:
        response = client.get(f"/v1/consortium/patients/{world.patient.address}/records",
                              params={"purpose": "treatment", "deadline_ms": 2000})  # fmt: skip
    assert response.status_code == 200, response.text
    by_member = {m["member"]: m for m in response.json()["members"]}
    a, b, c = (world.ids.members[s].address for s in ("a", "b", "c"))
    assert by_member[a]["status"] == "returned"
    assert [r["category"] for r in by_member[a]["records"]] == [int(Category.LABS)]  # mental health withheld
    assert by_member[b]["status"] == "returned" and by_member[b]["records"] == []
    assert by_member[c]["status"] == "unreachable"
    assert response.json()["elapsed_ms"] < 2500


def test_only_the_local_system_may_ask_through_its_node(two_nodes: TwoNodes) -> None:
    world = two_nodes
    record_id = _upload(world, b"x" * 10, Category.LABS)
    with world.b.member_client(world.ids.members["a"].account) as client:  # A asking B's node to fetch for it
        response = client.get(f"/v1/consortium/records/{record_id}",
                              params={"custodian": world.ids.members["a"].address, "purpose": "treatment",
                                      "clinician": "x"})  # fmt: skip
    assert response.status_code == 403
