"""A member's node that lies: it cannot choose what this node's clients are told to render, flood it,
trickle forever, or slip another patient into a patient's overview (issue: hostile patients and
members, 16). Member C's node is a real HTTP server here that answers as a hostile custodian would,
with a record it really encrypted and really anchored on chain."""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

from eth_account import Account
from medledger_crypto import HpkePublicKey, RecordContext, WrapContext, encrypt_record, wrap_data_key

from ledger_api.chain.commitments import new_salt, record_subject
from ledger_api.chain.deployment import Consortium
from ledger_api.chain.ids import mint_record_id
from ledger_api.chain.transactions import TransactionSender
from ledger_api.core import headers as header_names
from tests.consortium.conftest import TwoNodes
from tests.consortium.test_patient_overview import VIEW
from tests.utils.webhooks import serving

PLAINTEXT = b"<script>alert(document.cookie)</script> lab values"


@contextmanager
def hostile_c(world: TwoNodes, **behaviour: object) -> Iterator[dict]:
    """C's node: serves one record it anchored (as text/html, or oversized, or trickled), and lies in listings."""
    c = world.ids.members["c"]
    b = world.ids.members["b"]
    record_id = mint_record_id(c.address)
    context = RecordContext(record_id=record_id, version=1, custodian=c.address, patient=world.patient.address)
    sink = io.BytesIO()
    encrypted = encrypt_record(context, io.BytesIO(PLAINTEXT), sink)
    ciphertext = sink.getvalue()
    wrapped = wrap_data_key(
        encrypted.data_key, HpkePublicKey.from_bytes(b.hpke_public_key.to_bytes()), WrapContext(record_id, 1, b.address)
    )
    chain = Consortium(world.backend.w3, world.b.node.manifest, TransactionSender(world.backend.w3, c.account))
    chain.records.anchor_record(
        record_id, record_subject(record_id, world.patient.address, 0, new_salt()), encrypted.content_hash
    )
    stranger = Account.create().address
    state = {"record_id": record_id.hex(), "stranger": stranger, **behaviour}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path.endswith("/content"):
                body = ciphertext * int(state.get("repeat", 1))
                self.send_response(200)
                for name, value in {
                    header_names.RECORD_ID: record_id.hex(),
                    header_names.VERSION: "1",
                    header_names.CUSTODIAN: c.address,
                    header_names.PATIENT: world.patient.address,
                    header_names.CATEGORY: "0",
                    header_names.MEDIA_TYPE: state.get("media_type", "text/html"),
                    header_names.ACCESS_SEQUENCE: "1",
                    header_names.BASIS: "consent",
                    header_names.WRAPPED_KEY: base64.b64encode(wrapped).decode(),
                    "content-length": str(len(body)),
                }.items():
                    self.send_header(name, value)
                self.end_headers()
                pause = float(state.get("trickle_s", 0))
                for offset in range(0, len(body), 4096):
                    self.wfile.write(body[offset : offset + 4096])
                    if pause:
                        self.wfile.flush()
                        time.sleep(pause)
                return
            listing = [
                {
                    "id": "ab" * 32,
                    "patient": stranger,
                    "category": 0,
                    "media_type": "text/plain",
                    "fhir_resource_type": None,
                    "custodian": c.address,
                    "latest_version": 1,
                    "created_at": "2026-11-29T10:00:00Z",
                    "erased": False,
                    "versions": [],
                }
            ]
            body = json.dumps(listing).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler, urlsplit(world.ids.endpoints["c"]).port):
        yield state


def _fetch_from_c(world: TwoNodes, record_id: str):
    with world.b.member_client(world.ids.members["b"].account) as client:
        return client.get(
            f"/v1/consortium/records/{record_id}",
            params={"custodian": world.ids.members["c"].address, "purpose": "treatment", "clinician": "dr-li"},
        )


def test_a_peer_cannot_make_this_nodes_clients_render_its_record_as_a_page(two_nodes: TwoNodes) -> None:
    with hostile_c(two_nodes) as c:
        response = _fetch_from_c(two_nodes, c["record_id"])
    assert response.status_code == 200, response.text
    assert response.content == PLAINTEXT  # the record itself is delivered, as data
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-security-policy"].startswith("sandbox")


def test_a_peer_answer_over_the_size_limit_is_refused(two_nodes: TwoNodes) -> None:
    two_nodes.b.node.settings.peers.max_record_bytes = 4096
    with hostile_c(two_nodes, media_type="text/plain", repeat=200) as c:
        response = _fetch_from_c(two_nodes, c["record_id"])
    assert response.status_code == 503 and "limit" in response.json()["detail"]
    assert not list(two_nodes.b.node.blob_dir.rglob(".peer-*"))  # nothing of it kept


def test_a_peer_that_trickles_is_cut_off_at_the_overall_deadline(two_nodes: TwoNodes) -> None:
    two_nodes.b.node.settings.peers.timeout_s = 2.0
    with hostile_c(two_nodes, media_type="text/plain", repeat=2000, trickle_s=0.2) as c:
        started = time.monotonic()
        response = _fetch_from_c(two_nodes, c["record_id"])
        took = time.monotonic() - started
    assert response.status_code == 503 and "did not finish" in response.json()["detail"]
    assert took < 6.0  # each read was quick; the whole answer was not


def test_an_overview_drops_what_a_peer_says_about_other_patients(two_nodes: TwoNodes) -> None:
    world = two_nodes
    with hostile_c(world) as c, world.b.patient_client(world.patient, resources=VIEW) as patient:
        overview = patient.get(f"/v1/patients/{world.patient.address}/overview/records").json()
    by_member = {m["member"]: m["status"] for m in overview["members"]}
    assert by_member[world.ids.members["c"].address] == "returned"
    assert all(r["patient"] == world.patient.address for r in overview["records"])
    assert c["stranger"] not in json.dumps(overview)
