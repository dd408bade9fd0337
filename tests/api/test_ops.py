"""Operations endpoints and the published API description."""

from __future__ import annotations

from tests.api.conftest import World
from tests.utils.records import upload


def test_health_readiness_and_metrics(world: World) -> None:
    upload(world)
    with world.node.anonymous() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "chain": "ok"}
        metrics = client.get("/metrics").text
    assert 'medledger_requests_total{method="POST",route="/v1/records",status="201"} 1.0' in metrics
    assert 'medledger_outbox_items{state="pending"} 1.0' in metrics
    assert world.patient.address not in metrics  # routes are logged by template, never by raw path


def test_readiness_fails_when_the_manifest_points_elsewhere(world: World) -> None:
    node = world.node.node
    real = node.manifest
    node.manifest = real.model_copy(update={"chain_id": real.chain_id + 1})
    try:
        with world.node.anonymous() as client:
            ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["chain"] == "deployment-mismatch"
    finally:
        node.manifest = real


def test_openapi_documents_every_route_and_its_problems(world: World) -> None:
    with world.node.anonymous() as client:
        spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/v1/records",
        "/v1/records/{record_id}/content",
        "/v1/consents",
        "/v1/patients/{patient}/consents",
        "/v1/patients/{patient}/access-log",
        "/v1/access-log/export",
        "/v1/emergency",
        "/v1/governance/proposals",
        "/v1/auth/session",
        "/readyz",
    ):
        assert path in paths, path
    content = paths["/v1/records/{record_id}/content"]["get"]
    assert {"403", "404", "503"} <= set(content["responses"])
    assert "application/problem+json" in content["responses"]["403"]["content"]
    assert "requestBody" in paths["/v1/consents"]["post"]
