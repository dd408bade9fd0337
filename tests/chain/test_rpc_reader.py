"""The lean JSON-RPC reader of the authorisation hot path: batches answer in order, reads agree with
web3's, and every way a chain node can fail to answer is a ``ChainUnavailable`` (a 503), never a crash."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from ledger_api.chain.backends import free_port
from ledger_api.chain.rpc import JsonRpcReader
from ledger_api.errors import ChainUnavailable
from tests.utils.actors import Chain


def test_a_batch_answers_in_the_order_asked(chain: Chain) -> None:
    if chain.backend.kind == "eth-tester":
        pytest.skip("the in-process EVM has no JSON-RPC endpoint")
    reader = JsonRpcReader(chain.backend.url)
    try:
        chain_id, head = reader.batch([("eth_chainId", []), ("eth_blockNumber", [])])
        assert int(chain_id["result"], 16) == chain.w3.eth.chain_id
        assert int(head["result"], 16) == chain.w3.eth.block_number
        (unknown,) = reader.batch([("no_suchMethod", [])])
        assert "error" in unknown
    finally:
        reader.close()


def test_a_members_entry_and_the_head_come_in_one_round_trip_and_agree_with_separate_reads(chain: Chain) -> None:
    registry = chain.as_(chain.actors.a).registry
    member, head = registry.member_and_head(chain.actors.a.address)
    assert member == registry.member(chain.actors.a.address)
    assert head == chain.w3.eth.block_number


class _NotAChainNode(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = {"/html": b"<html>gateway</html>", "/array": b"[1, 2]", "/object": b'{"jsonrpc": "2.0"}'}.get(self.path)
        self.send_response(502 if body is None else 200)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def not_a_chain_node() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", free_port()), _NotAChainNode)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("path", "problem"),
    [("/gateway-error", "answered HTTP 502"), ("/html", "not JSON"), ("/object", "malformed JSON-RPC response")],
)
def test_answers_that_are_not_json_rpc_are_the_chain_being_unavailable(
    not_a_chain_node: str, path: str, problem: str
) -> None:
    reader = JsonRpcReader(not_a_chain_node + path)
    with pytest.raises(ChainUnavailable, match=problem):
        reader.request("eth_blockNumber", [])
    reader.close()


def test_a_batch_answer_that_does_not_match_the_batch_is_refused(not_a_chain_node: str) -> None:
    reader = JsonRpcReader(not_a_chain_node + "/array")
    with pytest.raises(ChainUnavailable, match="malformed JSON-RPC batch response"):
        reader.batch([("eth_blockNumber", []), ("eth_chainId", [])])
    reader.close()


def test_a_node_that_is_not_listening_is_unavailable_quickly() -> None:
    reader = JsonRpcReader(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(ChainUnavailable, match="unreachable"):
        reader.request("eth_blockNumber", [])
    reader.close()


def test_only_http_and_https_endpoints_are_accepted() -> None:
    with pytest.raises(ValueError, match="not an HTTP"):
        JsonRpcReader("file:///etc/passwd")
