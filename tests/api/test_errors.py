"""Bad input gets a clear 4xx naming the problem; outages a 503; nothing half-written."""

from __future__ import annotations

from sqlmodel import select

from ledger_api.access.models import AccessEntry
from ledger_api.core.db import session_scope
from ledger_api.records.models import Record
from tests.api.conftest import World
from tests.utils.records import fetch, upload


def _count(world: World, model) -> int:
    with session_scope(world.node.node.engine) as session:
        return len(session.exec(select(model)).all())


def test_malformed_json_wrong_type_and_invalid_fields(world: World) -> None:
    """The one rule: 400 when the request cannot be read (syntax), 422 when a value in it is not acceptable,
    the same for body, query and path values."""
    with world.node.member_client(world.a.account) as client:
        bad_json = client.post("/v1/consents", content=b"{not json", headers={"content-type": "application/json"})
        assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()["detail"]
        assert bad_json.json()["code"] == "json-malformed"
        wrong_type = client.post("/v1/consents", content=b"{}", headers={"content-type": "text/plain"})
        assert wrong_type.status_code == 415
        missing = client.post("/v1/consents", json={"patient": world.patient.address})
        assert missing.status_code == 422 and missing.json()["field"] and missing.json()["code"] == "validation-error"
        bad_address = client.post(
            "/v1/emergency",
            json={"patient": "0x123", "reason_code": 1, "clinician": "x", "justification": "unconscious on arrival"},
        )
        assert bad_address.status_code == 422 and bad_address.json()["field"] == "patient"
        # a NUL in free text is refused before anything happens (the fuzz found it: PostgreSQL refuses to store
        # it, after the break-glass was already on chain)
        declared_before = world.chain_as(world.stranger).consents.contract.events.BreakGlassDeclared.get_logs(
            from_block=0
        )
        nul = client.post(
            "/v1/emergency",
            json={
                "patient": world.patient.address,
                "reason_code": 1,
                "clinician": "x",
                "justification": "uncon\x00scious",
            },
        )
        assert (
            nul.status_code == 422 and nul.json()["code"] == "nul-character" and nul.json()["field"] == "justification"
        )
        after = world.chain_as(world.stranger).consents.contract.events.BreakGlassDeclared.get_logs(from_block=0)
        assert len(after) == len(declared_before)
        bad_query = client.get(
            "/v1/permissions",
            params={"patient": "nope", "requester": world.b.address, "category": "labs", "purpose": "treatment"},
        )
        assert bad_query.status_code == 422 and "patient" in bad_query.json()["field"]
        unknown_category = upload(world, patient=world.patient.address)
        assert unknown_category.status_code == 201
        bad_record = client.get("/v1/records/../../etc/passwd")
        assert bad_record.status_code in (404, 422)
        assert client.get("/v1/records/" + "g" * 64).status_code == 422
        assert client.get("/v1/nothing-here").status_code == 404


def test_uploads_need_octet_stream_and_respect_the_size_limit(world: World) -> None:
    world.node.node.settings.limits.max_upload_bytes = 4096
    before = _count(world, Record)
    with world.node.member_client(world.a.account) as client:
        params = {"patient": world.patient.address, "category": "labs", "media_type": "text/plain"}
        wrong = client.post("/v1/records", content=b"x", params=params, headers={"content-type": "text/plain"})
        assert wrong.status_code == 415
        huge = client.post(
            "/v1/records", content=b"x" * 10_000, params=params, headers={"content-type": "application/octet-stream"}
        )
        assert huge.status_code == 413 and huge.json()["code"] in ("payload-too-large", "upload-too-large")
        bad_media = client.post(
            "/v1/records",
            content=b"x",
            params={**params, "media_type": "../../x"},
            headers={"content-type": "application/octet-stream"},
        )
        assert bad_media.status_code == 422
    assert _count(world, Record) == before
    assert not [p for p in world.node.node.blob_dir.rglob("*") if p.is_file()]


def test_oversized_json_is_413(world: World) -> None:
    with world.node.member_client(world.a.account) as client:
        response = client.post(
            "/v1/consents", content=b"{" + b" " * (2 * 1024 * 1024) + b"}", headers={"content-type": "application/json"}
        )
    assert response.status_code == 413


def test_only_the_custodian_system_uploads(world: World) -> None:
    with world.node.member_client(world.b.account) as client:
        response = client.post(
            "/v1/records",
            content=b"x",
            headers={"content-type": "application/octet-stream"},
            params={"patient": world.patient.address, "category": "labs", "media_type": "text/plain"},
        )
    assert response.status_code == 403


def test_chain_down_means_503_and_nothing_released_or_logged(world: World) -> None:
    record_id = upload(world).json()["id"]
    entries = _count(world, AccessEntry)
    node = world.node.node
    from ledger_api.chain.backends import RpcBackend, free_port

    healthy = node.chain.consents
    unreachable = RpcBackend(f"http://127.0.0.1:{free_port()}", timeout=1).w3
    node.chain.consents = type(healthy)(unreachable, healthy.address)  # consent reads fail
    try:
        response = fetch(world, world.b, record_id)
        assert response.status_code == 503 and response.json()["code"] == "chain-unavailable"
        assert response.headers.get("retry-after")
    finally:
        node.chain.consents = healthy
    assert _count(world, AccessEntry) == entries


def test_database_unreachable_is_503_and_the_node_recovers(world: World) -> None:
    from ledger_api.chain.backends import free_port
    from ledger_api.core.db import make_engine

    node = world.node.node
    healthy = node.engine
    url = (
        f"postgresql://postgres@127.0.0.1:{free_port()}/none"
        if world.db_kind == "postgresql"
        else "sqlite:////nonexistent-dir/ledger.db"
    )
    node.engine = make_engine(url) if world.db_kind == "postgresql" else _broken_sqlite(url)
    try:
        with world.node.member_client(world.a.account) as client:
            response = client.get("/v1/access-log")
            assert response.status_code == 503 and response.json()["code"] == "database-unavailable"
            with world.node.anonymous() as anonymous:
                ready = anonymous.get("/readyz")
            assert ready.status_code == 503 and ready.json()["checks"]["database"] == "database-unavailable"
    finally:
        node.engine = healthy
    with world.node.member_client(world.a.account) as client:
        assert client.get("/v1/access-log").status_code == 200


def _broken_sqlite(url: str):
    from sqlmodel import create_engine

    return create_engine(url)


def test_numbers_beyond_the_database_range_are_422_not_500(world: World) -> None:
    """Found by the OpenAPI fuzzer: a 64-bit `after` overflowed a 32-bit column."""
    with world.node.member_client(world.a.account) as client:
        for path, params in (
            ("/v1/access-log", {"after": 2**63}),
            (f"/v1/relays/{2**40}", {}),
            ("/v1/records/" + "ab" * 32 + "/content", {"purpose": "treatment", "clinician": "x", "version": 2**40}),
        ):
            response = client.get(path, params=params)
            assert response.status_code == 422, (path, response.text)
        revocation = client.post(
            "/v1/consents/revocations",
            json={
                "consent_id": "9" * 78,
                "nonce": 0,
                "deadline": 1,
                "signature": {"v": 27, "r": "00" * 32, "s": "00" * 32},
            },
        )
        assert revocation.status_code == 422 and revocation.json()["field"] == "consent_id"
