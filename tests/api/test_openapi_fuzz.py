"""Generated requests for every operation in the node's own OpenAPI schema: never a server error.

Requests are signed as this node's own hospital system (the role that reaches deepest), so the
generated bodies, paths and queries get past authentication into the handlers. 503 is allowed:
it is the node's answer when the chain or database cannot serve a request. The reliability
issue extends this with stateful links, other roles and bigger budgets.
"""

from __future__ import annotations

import hashlib

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings

from ledger_api.auth.signing import sign_headers
from tests.api.conftest import World


def _check(world: World, case) -> None:  # noqa: ANN001
    node = world.node
    request = case.as_transport_kwargs(base_url=node.url)
    json_body = request.get("json")
    body = request.get("content") or (httpx.Request("POST", node.url, json=json_body).content
                                      if json_body is not None else b"")  # fmt: skip
    url = httpx.URL(request["url"], params=request.get("params"))
    headers = dict(request.get("headers") or {})
    if json_body is not None:
        headers.setdefault("content-type", "application/json")
    headers.update(sign_headers(world.a.account, chain_id=node.node.chain_id, audience=node.node.address,
                                method=request["method"], url=str(url), digest=hashlib.sha256(body).hexdigest()))
    with httpx.Client(timeout=30) as client:
        response = client.request(request["method"], url, content=body, headers=headers)
    assert response.status_code < 500 or response.status_code == 503, (request["method"], str(url), response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith("application/problem+json"), response.text


def test_generated_requests_never_cause_a_server_error(world: World) -> None:
    schema = schemathesis.openapi.from_dict(world.node.app.openapi())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=15, suppress_health_check=list(HealthCheck), deadline=None, database=None)
        def check(case) -> None:  # noqa: ANN001
            _check(world, case)

        check()
