"""Sharing across members: this node fetches from the custodian's node on behalf of its own users.

Member B's clinician asks B's node for a record held by A. B's node finds A's endpoint on chain
(the registry is the only directory: no side configuration to drift), calls A with a request
signed by B's member key, receives ciphertext and the data key wrapped for B's HPKE key, checks
the ciphertext against the content hash anchored on chain, and only then decrypts — streaming
the plaintext to its own authenticated caller. A never sees B's caller; B never sees a record
the chain did not allow. The fan-out asks every member at once with a deadline and reports, per
member, what came back, what was denied and who was unreachable.
"""

from __future__ import annotations

import base64
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Literal, TypeVar

import blake3
import httpx
from medledger_crypto import RecordContext, WrapContext, decrypt_record, unwrap_data_key
from pydantic import BaseModel

from ledger_api.auth.service import Caller
from ledger_api.auth.signing import MemberAuth
from ledger_api.chain.clients import Member, MemberStatus, Role
from ledger_api.errors import (
    BadRequest,
    ConsentDenied,
    ContractReverted,
    IntegrityViolation,
    LedgerError,
    NotFound,
    PeerUnavailable,
)
from ledger_api.node import Node
from ledger_api.records import service as records
from ledger_api.records.models import RecordPublic
from ledger_api.vocabulary import Purpose

T = TypeVar("T")
_ERRORS_BY_CODE = {"consent-denied": ConsentDenied, "not-found": NotFound, "integrity-violation": IntegrityViolation}


@dataclass
class PeerRecord:
    """A record fetched from its custodian, verified against the chain, ready to decrypt."""

    context: RecordContext
    media_type: str
    category: int
    content_hash: str
    access_sequence: int
    basis: str
    ciphertext: Path
    wrapped_key: bytes

    def plaintext(self, node: Node) -> Iterator[bytes]:
        """Decrypts as it streams (bounded memory); the ciphertext was already matched to the chain's anchor."""
        data_key = unwrap_data_key(self.wrapped_key, node.identity.hpke_keys(),
                                   WrapContext(self.context.record_id, self.context.version, node.address))
        chunks: queue.Queue = queue.Queue(maxsize=8)
        outcome: dict[str, BaseException] = {}

        class _Sink:
            def write(self, data: bytes | memoryview) -> int:
                chunks.put(bytes(data))
                return len(data)

        def decrypt() -> None:
            try:
                with open(self.ciphertext, "rb") as source:
                    decrypt_record(self.context, data_key, source, _Sink())  # type: ignore[arg-type]
            except BaseException as exc:  # noqa: BLE001 - re-raised in the consuming generator
                outcome["error"] = exc
            finally:
                data_key.destroy()
                self.ciphertext.unlink(missing_ok=True)
                chunks.put(None)

        threading.Thread(target=decrypt, name="peer-decrypt", daemon=True).start()
        while (chunk := chunks.get()) is not None:
            yield chunk
        if "error" in outcome:
            raise outcome["error"]


def member_nodes(node: Node) -> list[Member]:
    """The members whose nodes answer for patients now (active, role Member), in registry order."""
    return [m for m in node.chain.registry.members() if m.status == MemberStatus.ACTIVE and m.role == Role.MEMBER]


def active_peer(node: Node, account: str) -> Member:
    try:
        member = node.chain.registry.member(account)
    except ContractReverted:
        raise NotFound(f"{account} is not a consortium member") from None
    if member.status != MemberStatus.ACTIVE or member.role != Role.MEMBER or not member.endpoint:
        raise NotFound(f"{account} is not an active member with a node")
    return member


def peer_client(node: Node, peer: Member) -> httpx.Client:
    """A kept-alive client per peer; rebuilt when the chain shows a new endpoint (timeouts per request)."""
    with node.peer_lock:
        client = node.peer_clients.get(peer.account)
        if client is None or str(client.base_url).rstrip("/") != peer.endpoint.rstrip("/"):
            auth = MemberAuth(account=node.identity.account, chain_id=node.chain_id, audience=peer.account)
            client = node.peer_clients[peer.account] = httpx.Client(base_url=peer.endpoint, auth=auth)
        return client


def raise_for_peer(response: httpx.Response, peer: Member) -> None:
    if response.status_code < 300:
        return
    try:
        problem = response.json()
        code, detail = problem.get("code", ""), problem.get("detail", "")
    except ValueError:
        code, detail = "", response.text[:200]
    error = _ERRORS_BY_CODE.get(code)
    if error is not None:
        raise error(f"{peer.name}: {detail}")
    if response.status_code >= 500:
        raise PeerUnavailable(f"{peer.name} answered {response.status_code}: {detail}")
    raise LedgerError(f"{peer.name} refused: {detail}")


def fetch_from_custodian(node: Node, caller: Caller, *, custodian: str, record_id: str, version: int | None,
                         purpose: Purpose, clinician: str, timeout: float | None = None) -> PeerRecord:  # fmt: skip
    """Fetches a record from its custodian's node as this member, and verifies it against the chain."""
    if not caller.local:
        raise BadRequest("only this node's own hospital system fetches through it")
    if custodian == node.address:
        raise BadRequest("custodian: this node holds the record itself; use /v1/records/{id}/content")
    peer = active_peer(node, custodian)
    timeout = timeout if timeout is not None else node.settings.peers.timeout_s
    params: dict[str, str | int] = {"purpose": purpose.name.lower(), "clinician": clinician}
    if version is not None:
        params["version"] = version
    node.blob_dir.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkstemp(prefix=".peer-", dir=node.blob_dir)[1])
    digest = blake3.blake3()
    try:
        with peer_client(node, peer).stream("GET", f"/v1/records/{record_id}/content", params=params,
                                        timeout=timeout) as response:  # fmt: skip
            if response.status_code >= 300:
                response.read()
                raise_for_peer(response, peer)
            with open(target, "wb") as sink:
                for chunk in response.iter_bytes():
                    digest.update(chunk)
                    sink.write(chunk)
            h = response.headers
        context = RecordContext(record_id=bytes.fromhex(h["x-medledger-record-id"]),
                                version=int(h["x-medledger-version"]),
                                custodian=h.get("x-medledger-sealed-by", h["x-medledger-custodian"]),
                                patient=h["x-medledger-patient"])  # fmt: skip
        if context.record_id.hex() != record_id or h["x-medledger-custodian"].lower() != custodian.lower():
            raise IntegrityViolation("the custodian answered for another record")
        anchored = node.chain.records.content_hash(context.record_id, context.version).hex()
        if digest.hexdigest() != anchored:
            raise IntegrityViolation("the custodian's ciphertext does not match the hash anchored on chain")
        return PeerRecord(context=context, media_type=h.get("x-medledger-media-type", "application/octet-stream"),
                          category=int(h["x-medledger-category"]), content_hash=anchored,
                          access_sequence=int(h["x-medledger-access-sequence"]), basis=h["x-medledger-basis"],
                          ciphertext=target, wrapped_key=base64.b64decode(h["x-medledger-wrapped-key"]))  # fmt: skip
    except httpx.HTTPError as exc:
        target.unlink(missing_ok=True)
        raise PeerUnavailable(f"{peer.name} unreachable: {type(exc).__name__}") from None
    except BaseException:
        target.unlink(missing_ok=True)
        raise


class MemberResult(BaseModel):
    """One member's part of a consortium-wide answer."""

    member: str
    name: str
    status: Literal["returned", "denied", "unreachable", "error"]
    detail: str | None = None
    records: list[RecordPublic] = []


class FanOutResult(BaseModel):
    patient: str
    purpose: str
    elapsed_ms: float
    members: list[MemberResult]


@dataclass
class MemberAnswer(Generic[T]):
    """What one member answered a fan-out: ``value`` when ``status`` is "returned"."""

    member: Member
    status: Literal["returned", "denied", "unreachable", "error"]
    detail: str | None = None
    value: T | None = None


def ask_every_member(node: Node, *, local: Callable[[], T], path: str, params: dict[str, str | int],
                        parse: Callable[[httpx.Response], T], deadline_s: float,
                        headers: dict[str, str] | None = None) -> list[MemberAnswer[T]]:  # fmt: skip
    """Asks every active member node at once (this one answers through ``local``), within one deadline.

    A member that is down, slow or refuses does not fail the whole: its answer says so, and the
    others' answers stand. Members come from the chain, in registry order.
    """
    peers = member_nodes(node)

    def ask(peer: Member) -> MemberAnswer[T]:
        if peer.account == node.address:
            return MemberAnswer(member=peer, status="returned", value=local())
        try:
            response = peer_client(node, peer).get(path, params=params, headers=headers, timeout=deadline_s)
        except httpx.HTTPError as exc:
            return MemberAnswer(member=peer, status="unreachable", detail=type(exc).__name__)
        if response.status_code == 200:
            try:
                return MemberAnswer(member=peer, status="returned", value=parse(response))
            except ValueError as exc:
                return MemberAnswer(member=peer, status="error", detail=f"unreadable answer: {exc}"[:200])
        status: Literal["denied", "error"] = "denied" if response.status_code in (401, 403) else "error"
        return MemberAnswer(member=peer, status=status, detail=f"HTTP {response.status_code}")

    answers: dict[str, MemberAnswer[T]] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, len(peers)))
    futures = {pool.submit(ask, peer): peer for peer in peers}
    finished, _ = wait(futures, timeout=deadline_s)
    for future, peer in futures.items():
        if future in finished:
            answers[peer.account] = future.result()
        else:
            answers[peer.account] = MemberAnswer(member=peer, status="unreachable",
                                                 detail=f"no answer within {deadline_s:.1f}s")  # fmt: skip
    pool.shutdown(wait=False, cancel_futures=True)
    return [answers[p.account] for p in peers]


def records_across_consortium(node: Node, caller: Caller, *, patient: str, purpose: Purpose,
                              deadline_s: float = 5.0) -> FanOutResult:  # fmt: skip
    """Asks every active member node at once for the patient's records; reports each member's outcome."""
    if not caller.local:
        raise BadRequest("only this node's own hospital system asks across the consortium")
    started = time.monotonic()
    answers = ask_every_member(
        node, local=lambda: records.list_records(node, caller, patient, purpose),
        path=f"/v1/patients/{patient}/records", params={"purpose": purpose.name.lower()},
        parse=lambda response: [RecordPublic.model_validate(r) for r in response.json()], deadline_s=deadline_s)
    return FanOutResult(patient=patient, purpose=purpose.name.lower(),
                        elapsed_ms=round((time.monotonic() - started) * 1000, 1),
                        members=[MemberResult(member=a.member.account, name=a.member.name, status=a.status,
                                              detail=a.detail, records=a.value or []) for a in answers])  # fmt: skip
