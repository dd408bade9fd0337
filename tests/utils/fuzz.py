"""Schemathesis against a node's own OpenAPI schema, as a signed member system; the tests and
``make bench`` share it.

Stateless: generated requests for every operation. Stateful: scenarios that follow the schema's
OpenAPI links (an upload leads to its record, a relay to its status ...). Every response is
checked: no server error, a status the schema declares, the declared content type, and a body
that matches the declared schema. 503 counts as a server error unless it is the node saying that
another member's node (unreachable in these tests) could not be reached.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import httpx
import schemathesis
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, given, settings
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ledger_api.auth.signing import sign_headers
from tests.utils.nodes import RunningNode

CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


@dataclass
class FuzzTally:
    cases: int = 0
    server_errors: int = 0
    #: successful answers to operations reached through a link (a path parameter filled from a response)
    followed_links: int = 0
    failures: list[str] = field(default_factory=list)


def signed_call(node: RunningNode, account: LocalAccount, case) -> httpx.Response:  # noqa: ANN001
    request = case.as_transport_kwargs(base_url=node.url)
    json_body = request.get("json")
    body = request.get("content") or (httpx.Request("POST", node.url, json=json_body).content
                                      if json_body is not None else b"")  # fmt: skip
    url = httpx.URL(request["url"], params=request.get("params"))
    headers = dict(request.get("headers") or {})
    if json_body is not None:
        headers.setdefault("content-type", "application/json")
    headers.update(sign_headers(account, chain_id=node.node.chain_id, audience=node.node.address,
                                method=request["method"], url=str(url), digest=hashlib.sha256(body).hexdigest()))
    with httpx.Client(timeout=30) as client:
        return client.request(request["method"], url, content=body, headers=headers)


def _judge(tally: FuzzTally, case, response: httpx.Response) -> None:  # noqa: ANN001
    tally.cases += 1
    peer_down = response.status_code == 503 and "peer-unavailable" in response.text
    if response.status_code >= 500 and not peer_down:
        tally.server_errors += 1
        tally.failures.append(f"{case.method} {case.path}: {response.status_code} {response.text[:300]}")
        return
    if response.status_code < 300 and "{" in case.path and case.method != "POST":
        tally.followed_links += 1
    try:
        case.validate_response(response, checks=CHECKS)
    except BaseException as failure:  # noqa: BLE001 - schemathesis raises a (base) group of check failures
        if isinstance(failure, KeyboardInterrupt | SystemExit):
            raise
        tally.failures.append(f"{case.method} {case.path}: {response.status_code}: {str(failure)[:500]}")


def fuzz_stateless(node: RunningNode, account: LocalAccount, examples: int) -> FuzzTally:
    tally = FuzzTally()
    schema = schemathesis.openapi.from_dict(node.app.openapi())
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=examples, suppress_health_check=list(HealthCheck), deadline=None, database=None)
        def check(case) -> None:  # noqa: ANN001
            _judge(tally, case, signed_call(node, account, case))

        check()
    return tally


def fuzz_stateful(node: RunningNode, account: LocalAccount, scenarios: int, steps: int) -> FuzzTally:
    tally = FuzzTally()
    schema = schemathesis.openapi.from_dict(node.app.openapi())

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def call(self, case, **kwargs):  # noqa: ANN001, ANN003, ANN201
            response = signed_call(node, account, case)
            _judge(tally, case, response)
            return schemathesis.Response.from_any(response)

        def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:  # noqa: ANN001, ANN003
            """Judged in ``call`` (the tally keeps going instead of stopping at the first finding)."""

    run_state_machine_as_test(Workflow, settings=settings(max_examples=scenarios, stateful_step_count=steps,
                                                          suppress_health_check=list(HealthCheck), deadline=None,
                                                          database=None))  # fmt: skip
    return tally
