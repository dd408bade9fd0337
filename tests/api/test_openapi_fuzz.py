"""Schemathesis against the node's own OpenAPI schema: generated requests for every operation, and
scenarios that follow the schema's links, signed as this node's own hospital system (the role that
reaches deepest). Never a server error; every answer's status, content type and body as declared.
The budgets are bounded for CI; ``make bench`` runs bigger ones (``fuzz.*`` figures).
"""

from __future__ import annotations

from tests.api.conftest import World
from tests.utils.fuzz import fuzz_hostile, fuzz_stateful, fuzz_stateless


def test_generated_requests_never_cause_a_server_error_and_match_the_schema(world: World) -> None:
    # 6 generated requests per operation on both backends here; `make bench` (group fuzz) sends 50
    tally = fuzz_stateless(world.node, world.a.account, examples=6)
    assert tally.cases >= 300
    assert (tally.server_errors, tally.failures) == (0, [])


def test_linked_scenarios_never_cause_a_server_error_and_match_the_schema(world: World) -> None:
    # 20 scenarios over the operations the links join (3 to 11 links followed per 10 scenarios here), and more,
    # up to 60, until one follows a link
    tally = fuzz_stateful(world.node, world.a.account, scenarios=20, steps=8, until_links=1, at_most=60)
    assert tally.cases >= 60 and tally.followed_links > 0  # uploads lead to their records, and so on
    assert (tally.server_errors, tally.failures) == (0, [])


def test_hostile_bodies_on_every_json_route_get_a_4xx_and_the_node_lives(world: World) -> None:
    """Depth, size, encoding and duplicate-key attacks (the schema-driven fuzzing never sends them)."""
    tally = fuzz_hostile(world.node, world.a.account, examples=60)
    assert tally.cases == 60
    assert (tally.server_errors, tally.failures) == (0, [])
