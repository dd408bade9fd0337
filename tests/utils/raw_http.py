"""Raw HTTP/1.1 for hostile-input tests: bodies sent chunk by chunk from a socket, so a test sees how
much the server took before it answered (an httpx client would stop at the first refused write)."""

from __future__ import annotations

import select
import socket
import time
from dataclasses import dataclass


@dataclass
class RawAnswer:
    status: int | None
    head: bytes
    sent_bytes: int


def stream_body(
    port: int,
    path: str,
    *,
    total_bytes: int,
    headers: dict[str, str] | None = None,
    chunk: bytes = b"[" * 65536,
    declared_length: int | None = None,
    timeout_s: float = 60.0,
) -> RawAnswer:
    """Sends up to ``total_bytes`` of ``chunk`` repeated as the body of a POST (chunked unless a length is
    declared), stopping as soon as the server answers or closes; returns its status and what was sent."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Content-Type: application/json"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines.append(f"Content-Length: {declared_length}" if declared_length is not None else "Transfer-Encoding: chunked")
    sent, head, deadline = 0, b"", time.monotonic() + timeout_s
    try:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while sent < total_bytes and time.monotonic() < deadline:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            piece = chunk[: total_bytes - sent]
            framed = piece if declared_length is not None else b"%x\r\n" % len(piece) + piece + b"\r\n"
            try:
                sock.sendall(framed)
            except OSError:  # the server closed the connection after answering
                break
            sent += len(piece)
        sock.settimeout(10)
        try:
            while b"\r\n\r\n" not in head:
                data = sock.recv(65536)
                if not data:
                    break
                head += data
        except OSError:
            pass
    finally:
        sock.close()
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else None
    return RawAnswer(status=status, head=head, sent_bytes=sent)
