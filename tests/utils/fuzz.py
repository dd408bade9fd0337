"""Schemathesis against a node's own OpenAPI schema, as a signed member system; the tests and
``make bench`` share it.

Stateless: generated requests for every operation. Stateful: scenarios over the operations the
schema's OpenAPI links join, following them (an upload leads to its record, a relay to its status
...). Every response is checked: no server error, a status the schema declares, the declared
content type, and a body that matches the declared schema. 503 counts as a server error unless it
is the node saying that another member's node (unreachable in these tests) could not be reached.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field

import httpx
import schemathesis
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Flaky
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ledger_api.auth.signing import SIGNATURE_HEADERS, sign_headers
from ledger_api.core import headers as header_names
from tests.utils.nodes import RunningNode

CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]


@dataclass
class FuzzTally:
    cases: int = 0
    server_errors: int = 0
    #: successful answers to operations reached through a link (a path parameter filled from a response)
    followed_links: int = 0
    failures: list[str] = field(default_factory=list)
    #: stateful rounds hypothesis abandoned (their requests were judged all the same)
    rounds_abandoned: int = 0
    notes: list[str] = field(default_factory=list)


def signed_call(node: RunningNode, account: LocalAccount, case) -> httpx.Response:
    request = case.as_transport_kwargs(base_url=node.url)
    json_body = request.get("json")
    body = request.get("content") or (
        httpx.Request("POST", node.url, json=json_body).content if json_body is not None else b""
    )
    url = httpx.URL(request["url"], params=request.get("params"))
    # the document declares the signature headers and the bearer session as security schemes, so the
    # generator fills them with arbitrary values: they are replaced by a real signature here
    credentials = {"authorization", header_names.ON_BEHALF_OF.lower(), *(h.lower() for h in SIGNATURE_HEADERS)}
    headers = {k: v for k, v in (request.get("headers") or {}).items() if k.lower() not in credentials}
    if json_body is not None:
        headers.setdefault("content-type", "application/json")
    headers.update(
        sign_headers(
            account,
            chain_id=node.node.chain_id,
            audience=node.node.address,
            method=request["method"],
            url=str(url),
            digest=hashlib.sha256(body).hexdigest(),
        )
    )
    with httpx.Client(timeout=30) as client:
        return client.request(request["method"], url, content=body, headers=headers)


def _judge(tally: FuzzTally, case, response: httpx.Response) -> None:
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
    except BaseException as failure:
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
        def check(case) -> None:
            _judge(tally, case, signed_call(node, account, case))

        check()
    return tally


def fuzz_stateful(
    node: RunningNode, account: LocalAccount, scenarios: int, steps: int, *, until_links: int = 0, at_most: int = 0
) -> FuzzTally:
    """``scenarios`` scenarios of ``steps`` steps; then more rounds, up to ``at_most`` scenarios in all, while
    fewer than ``until_links`` links were followed (which operations a scenario draws is random: with every
    operation of the API to draw from, a few dozen scenarios may follow no link at all)."""
    tally = FuzzTally()
    document = copy.deepcopy(node.app.openapi())  # schemathesis rewrites the links of the dict it is given
    # Only the operations a link starts from or leads to: drawn from all ~80 operations, 60 scenarios of 8
    # steps followed no link in a CI run (the stateless fuzz above reaches every operation)
    schema = schemathesis.openapi.from_dict(document).include(operation_id=sorted(_linked_operations(document)))

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def call(self, case, **kwargs):
            response = signed_call(node, account, case)
            _judge(tally, case, response)
            return schemathesis.Response.from_any(response)

        def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:
            """Judged in ``call`` (the tally keeps going instead of stopping at the first finding)."""

    # Generation only: a scenario's draws depend on what the live node answered (ids it created), so
    # hypothesis cannot replay or shrink one and would stop with FlakyStrategyDefinition. Every finding is
    # judged and kept in ``call``; nothing is left for a replay to do. Scenarios run in rounds, so one
    # round that still fails cannot lose the others.
    done = 0
    while done < scenarios or (tally.followed_links < until_links and done < at_most):
        batch = min(10, max(scenarios, at_most) - done)
        try:
            run_state_machine_as_test(
                Workflow,
                settings=settings(
                    max_examples=batch,
                    stateful_step_count=steps,
                    suppress_health_check=list(HealthCheck),
                    deadline=None,
                    database=None,
                    # each round draws afresh (hypothesis's CI profile would replay the same seed every round)
                    derandomize=False,
                    phases=[Phase.generate],
                ),
            )
        except Flaky as flaky:  # (FlakyStrategyDefinition, FlakyFailure): a round hypothesis gave up on
            tally.rounds_abandoned += 1
            tally.notes.append(f"scenarios {done}..{done + batch}: {type(flaky).__name__}")
        done += batch
    return tally


def _linked_operations(document: dict) -> set[str]:
    """The operationIds of every operation with a link on one of its responses, and of every link's target."""
    found: set[str] = set()
    for item in document["paths"].values():
        for operation in (value for value in item.values() if isinstance(value, dict)):
            for response in operation.get("responses", {}).values():
                for link in response.get("links", {}).values():
                    found |= {operation["operationId"], link["operationId"]}
    return found


def _hostile_body(kind: str, size: int, depth: int, limit: int) -> bytes:
    """One hostile JSON body of the given kind (what a self-made patient account or a rogue member sends)."""
    if kind == "nesting":
        return b"[" * depth + b"]" * depth
    if kind == "object-nesting":
        return b'{"a":' * depth + b"1" + b"}" * depth
    if kind == "oversize":
        return b'{"pad": "' + b"x" * (limit + size) + b'"}'
    if kind == "duplicate-keys":
        return b'{"support": true, "support": false, "patient": "0x' + b"0" * 40 + b'", "patient": "x"}'
    if kind == "utf-16":
        return '{"support": true}'.encode("utf-16")
    if kind == "invalid-utf-8":
        return b'{"justification": "\xc3\x28\xff"}'
    if kind == "lone-surrogate":
        return (
            b'{"justification": "\\ud800 unconscious", "reason_code": 1, "clinician": "x", "patient": "0x'
            + b"1" * 40
            + b'"}'
        )
    if kind == "bom":
        return b'\xef\xbb\xbf{"support": true}'
    raise ValueError(kind)


HOSTILE_KINDS = (
    "nesting",
    "object-nesting",
    "oversize",
    "duplicate-keys",
    "utf-16",
    "invalid-utf-8",
    "lone-surrogate",
    "bom",
)


def fuzz_hostile(node: RunningNode, account: LocalAccount, examples: int) -> FuzzTally:
    """Depth, size, encoding and duplicate-key attacks on every JSON route: always a 4xx, never a 5xx or a crash."""
    from hypothesis import strategies as st

    tally = FuzzTally()
    spec = node.app.openapi()
    routes = sorted(
        path
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method == "post" and "application/json" in operation.get("requestBody", {}).get("content", {})
    )
    limit = node.node.settings.limits.max_json_bytes

    @given(
        path=st.sampled_from(routes),
        kind=st.sampled_from(HOSTILE_KINDS),
        size=st.integers(1, 4096),
        depth=st.one_of(st.integers(65, 2000), st.integers(10_000, 200_000)),
    )
    @settings(max_examples=examples, suppress_health_check=list(HealthCheck), deadline=None, database=None)
    def attack(path: str, kind: str, size: int, depth: int) -> None:
        url = node.url + path.replace("{proposal_id}", "0")
        body = _hostile_body(kind, size, depth, limit)
        headers = {"content-type": "application/json"}
        if path != "/v1/auth/session":
            headers.update(
                sign_headers(
                    account,
                    chain_id=node.node.chain_id,
                    audience=node.node.address,
                    method="POST",
                    url=url,
                    digest=hashlib.sha256(body).hexdigest(),
                )
            )
        with httpx.Client(timeout=30) as client:
            response = client.post(url, content=body, headers=headers)
        tally.cases += 1
        if response.status_code >= 500 or not 400 <= response.status_code < 500:
            tally.server_errors += response.status_code >= 500
            tally.failures.append(f"POST {path} ({kind}): {response.status_code} {response.text[:200]}")
        elif response.headers.get("content-type") != "application/problem+json":
            tally.failures.append(f"POST {path} ({kind}): {response.status_code} without a problem document")

    attack()
    with httpx.Client(timeout=10) as client:
        if client.get(node.url + "/healthz").status_code != 200:
            tally.failures.append("the node did not survive the hostile bodies")
    return tally
