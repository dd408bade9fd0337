"""A real webhook receiver on a loopback port, recording what MedLedger nodes send it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Receiver:
    """A webhook endpoint: records (headers, body) of every request; answers ``fail_first`` with 500."""

    url: str = ""
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    fail_first: int = 0
    answered: int = 0
    #: seconds to wait before answering (a slow receiver)
    delay_s: float = 0.0

    def bodies(self) -> list[dict]:
        return [json.loads(body) for _, body in self.received]


@contextmanager
def serving(handler: type[BaseHTTPRequestHandler], port: int = 0) -> Iterator[ThreadingHTTPServer]:
    """A real HTTP server on a loopback port (0: any free one), in a thread, for the test's duration."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def serve_receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            if state.delay_s:
                time.sleep(state.delay_s)
            state.answered += 1
            if state.answered <= state.fail_first:
                self.send_response(500)
            else:
                state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as server:
        state.url = f"http://127.0.0.1:{server.server_address[1]}/medledger-hook"
        yield state
