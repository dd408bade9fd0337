"""Posting webhooks without letting a subscriber use the node as a probe, or hold up anyone else.

A webhook URL is chosen by whoever subscribes, so the node must not become their way into the
hospital's network, nor a scanner that reports what it found:

- **Where it may connect.** In production only ``https`` to addresses that are public (globally
  routable). The host name is resolved *when connecting*, every address it resolves to is checked,
  and the request goes to the checked address itself (the name still used for TLS and ``Host``), so
  a name that resolves to a public address at subscription and to ``10.0.0.5`` later (DNS rebinding)
  is refused. Redirects are never followed. Development nodes may deliver to loopback and private
  addresses (the test receivers live there) but connect the same pinned way.
- **What the subscriber learns.** Delivered or not: no status code, no error class (see
  ``service.public_notification``); the operator's log has the detail.
- **Who waits for whom.** Each receiver (scheme, host, port) is posted to by one task at a time, on
  a bounded pool; a receiver still busy with an earlier round is skipped, so one that answers slowly
  (each post is bounded by ``notifications.timeout_s``) delays only its own notifications.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx

ADDRESS = ipaddress.IPv4Address | ipaddress.IPv6Address


class ReceiverRefused(ValueError):
    """The receiver's URL or address is not one this node delivers to."""


@dataclass(frozen=True)
class ReceiverPolicy:
    """Which receivers are allowed: ``public_only`` (production) or any address (development)."""

    public_only: bool

    def check_url(self, url: str) -> tuple[str, str, int]:
        """``(scheme, host, port)`` of an acceptable URL; ``ReceiverRefused`` naming why not."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise ReceiverRefused("not a valid URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ReceiverRefused("must be an http(s) URL with a host")
        if parts.username or parts.password:
            raise ReceiverRefused("must not carry credentials (payloads are signed instead)")
        if port == 0:
            raise ReceiverRefused("port 0 is not a port")
        if self.public_only and parts.scheme != "https":
            raise ReceiverRefused("production nodes deliver over https only")
        return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)

    def allowed(self, address: ADDRESS) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if self.public_only:
            return address.is_global and not address.is_multicast
        return not (address.is_multicast or address.is_unspecified)

    def resolve(self, host: str, port: int) -> ADDRESS:
        """The address to connect to: every address ``host`` resolves to must be allowed."""
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            raise ReceiverRefused("the receiver's host name does not resolve") from None
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
        if not addresses:
            raise ReceiverRefused("the receiver's host name does not resolve")
        if not all(self.allowed(a) for a in addresses):
            raise ReceiverRefused("the receiver's address is not a public address")
        return addresses[0]


def receiver_key(url: str) -> str:
    """One receiver: scheme, host and port (what a slow answer holds up)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{parts.port or ''}"


def post_pinned(
    client: httpx.Client, policy: ReceiverPolicy, url: str, *, content: bytes, headers: dict[str, str]
) -> httpx.Response:
    """POSTs to the address the policy checked just now, with the original name for ``Host`` and TLS."""
    scheme, host, port = policy.check_url(url)
    address = policy.resolve(host, port)
    parts = urlsplit(url)
    literal = f"[{address}]" if address.version == 6 else str(address)
    pinned = urlunsplit((scheme, f"{literal}:{port}", parts.path or "/", parts.query, ""))
    host_header = host if parts.port is None else f"{host}:{port}"
    return client.post(
        pinned, content=content, headers={**headers, "host": host_header}, extensions={"sni_hostname": host}
    )
