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

import asyncio
import base64
import queue
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import blake3
import httpx
from anyio.to_thread import run_sync
from medledger_crypto import RecordContext, WrapContext, decrypt_record, unwrap_data_key
from pydantic import BaseModel, TypeAdapter

from ledger_api.access.imports import record_import
from ledger_api.auth import policy
from ledger_api.auth.caller import Caller
from ledger_api.auth.signing import MemberAuth
from ledger_api.chain.types import Member, MemberStatus, Role
from ledger_api.core import headers as header_names
from ledger_api.core import jsontext
from ledger_api.core.releases import release_context
from ledger_api.errors import (
    Conflict,
    ConsentDenied,
    ContractReverted,
    Forbidden,
    IntegrityViolation,
    InvalidValue,
    LedgerError,
    NotFound,
    PeerUnavailable,
)
from ledger_api.node import Node
from ledger_api.records import service as records
from ledger_api.records.models import RecordPublic
from ledger_api.vocabulary import Purpose

T = TypeVar("T")
_RECORD_LIST = TypeAdapter(list[RecordPublic])
#: what a caller is told when a fan-out for the same patient is already in flight
FANOUT_BUSY = "a consortium-wide request for this patient is already in flight; retry shortly"
#: a custodian's refusals passed on to the caller as they are (same code), rather than as "peer unavailable"
_ERRORS_BY_CODE = {
    "consent-denied": ConsentDenied,
    "not-found": NotFound,
    "record-not-found": NotFound,
    "record-erased": NotFound,
    "version-not-found": NotFound,
    "integrity-violation": IntegrityViolation,
    "stored-ciphertext-mismatch": IntegrityViolation,
    "ciphertext-missing": IntegrityViolation,
    # a patient's request passed on to the custodian: its verdict, as the patient would have had it there
    "restriction-unchanged": Conflict,
    "restriction-request-stale": Conflict,
    "record-in-handover": Conflict,
    "signature-wrong-signer": Forbidden,
    "signature-deadline-passed": InvalidValue,
    "issued-in-future": InvalidValue,
    "consent-signature-malformed": InvalidValue,
    # a patient's link removal or request refusal passed on to the hospital it names
    "link-not-found": NotFound,
    "link-statement-stale": Conflict,
    "link-wrong-hospital": InvalidValue,
    "link-statement-too-long": InvalidValue,
    "link-mrn-missing": InvalidValue,
    "consent-request-not-found": NotFound,
    "consent-request-closed": Conflict,
}


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
        data_key = unwrap_data_key(
            self.wrapped_key,
            node.identity.hpke_keys(),
            WrapContext(self.context.record_id, self.context.version, node.address),
        )
        chunks: queue.Queue[Any] = queue.Queue(maxsize=8)
        outcome: dict[str, BaseException] = {}

        class _Sink:
            def write(self, data: bytes | memoryview) -> int:
                chunks.put(bytes(data))
                return len(data)

        def decrypt() -> None:
            try:
                with open(self.ciphertext, "rb") as source:
                    decrypt_record(self.context, data_key, source, _Sink())  # type: ignore[arg-type]
            except BaseException as exc:
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
        raise NotFound(f"{account} is not a consortium member", code="member-not-found") from None
    if member.status != MemberStatus.ACTIVE or member.role != Role.MEMBER or not member.endpoint:
        raise NotFound(f"{account} is not an active member with a node", code="member-not-found")
    return member


def peer_client(node: Node, peer: Member) -> httpx.Client:
    """A kept-alive client per peer; rebuilt when the chain shows a new endpoint (timeouts per request)."""
    with node.peer_lock:
        client = node.peer_clients.get(peer.account)
        if client is None or str(client.base_url).rstrip("/") != peer.endpoint.rstrip("/"):
            auth = MemberAuth(account=node.identity.account, chain_id=node.chain_id, audience=peer.account)
            client = node.peer_clients[peer.account] = httpx.Client(base_url=peer.endpoint, auth=auth)
        return client


#: media types a browser would run as a page or script: a peer's record is never served as one
_ACTIVE_MEDIA = re.compile(r"html|xml|javascript|ecmascript|svg|xhtml", re.IGNORECASE)
_MEDIA_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$")


def safe_media_type(declared: str) -> str:
    """The media type a peer declared for a record, if it is well formed and inert; else octet-stream.

    The peer is not trusted with what this node's clients are told to render: a record declared as
    ``text/html`` would otherwise run as a page on this node's origin (which also serves the portal).
    """
    value = declared.split(";", 1)[0].strip()
    if not _MEDIA_TYPE.match(value) or _ACTIVE_MEDIA.search(value):
        return "application/octet-stream"
    return value.lower()


def read_capped(response: httpx.Response, limit: int) -> bytes:
    """At most ``limit`` bytes of a streamed answer (an error body is read for its problem, not all of it)."""
    kept = bytearray()
    for chunk in response.iter_bytes():
        kept += chunk[: limit - len(kept)]
        if len(kept) >= limit:
            break
    response._content = bytes(kept)  # what .json()/.text read from here on
    return response._content


def raise_for_peer(response: httpx.Response, peer: Member) -> None:
    if response.status_code < 300:
        return
    try:
        problem = jsontext.loads(response.content)
        code, detail = str(problem.get("code", "")), str(problem.get("detail", ""))[:500]
    except (ValueError, AttributeError):
        code, detail = "", response.text[:200]
    error = _ERRORS_BY_CODE.get(code)
    if error is not None:
        raise error(f"{peer.name}: {detail}", code=code)
    if response.status_code >= 500:
        raise PeerUnavailable(f"{peer.name} answered {response.status_code}: {detail}")
    raise LedgerError(f"{peer.name} refused: {detail}")


A = TypeVar("A", bound=BaseModel)


def post_to_peer(node: Node, account: str, path: str, body: BaseModel, answer: type[A]) -> A:
    """Passes a patient's signed request (the signature inside ``body`` is the authority) to the member it is
    for, as this member; the member's verdict comes back as it is (same problem code), its answer as
    ``answer``. The peer is trusted with nothing more: callers check that it answered for the right thing."""
    peer = active_peer(node, account)
    try:
        response = peer_client(node, peer).post(
            path,
            content=body.model_dump_json().encode(),
            headers={"content-type": "application/json"},
            timeout=node.settings.peers.timeout_s,
        )
    except httpx.HTTPError as exc:
        raise PeerUnavailable(f"{peer.name} unreachable: {type(exc).__name__}") from None
    raise_for_peer(response, peer)
    try:
        return answer.model_validate(jsontext.loads(response.content))
    except ValueError:
        raise PeerUnavailable(f"{peer.name} sent an unreadable answer") from None


def fetch_from_custodian(
    node: Node,
    caller: Caller,
    *,
    custodian: str,
    record_id: str,
    version: int | None,
    purpose: Purpose,
    clinician: str,
    timeout: float | None = None,
) -> PeerRecord:
    """Fetches a record from its custodian's node as this member, and verifies it against the chain."""
    policy.require(policy.OWN_SYSTEM, node, caller)
    if custodian == node.address:
        raise InvalidValue(
            "custodian: this node holds the record itself; use /v1/records/{id}/content",
            field="custodian",
            code="custodian-is-self",
        )
    peer = active_peer(node, custodian)
    timeout = timeout if timeout is not None else node.settings.peers.timeout_s
    params: dict[str, str | int] = {"purpose": purpose.name.lower(), "clinician": clinician}
    if version is not None:
        params["version"] = version
    target, digest, h = stream_from_peer(node, peer, f"/v1/records/{record_id}/content", params=params, timeout=timeout)
    try:
        context = release_context(h)
        if context.record_id.hex() != record_id or h[header_names.CUSTODIAN].lower() != custodian.lower():
            raise IntegrityViolation("the custodian answered for another record", code="peer-answer-mismatch")
        anchored = node.chain.records.content_hash(context.record_id, context.version).hex()
        if digest != anchored:
            raise IntegrityViolation(
                "the custodian's ciphertext does not match the hash anchored on chain", code="peer-answer-mismatch"
            )
        fetched = PeerRecord(
            context=context,
            media_type=safe_media_type(h.get(header_names.MEDIA_TYPE, "")),
            category=int(h[header_names.CATEGORY]),
            content_hash=anchored,
            access_sequence=int(h[header_names.ACCESS_SEQUENCE]),
            basis=h[header_names.BASIS],
            ciphertext=target,
            wrapped_key=base64.b64decode(h[header_names.WRAPPED_KEY]),
        )
        # the recipient's side of the disclosure, naming the custodian's log entry (see access.imports)
        record_import(
            node.engine,
            node.write_turns,
            custodian=custodian,
            custodian_sequence=fetched.access_sequence,
            record_id=record_id,
            record_version=context.version,
            patient=context.patient,
            clinician=clinician,
            purpose=int(purpose),
            basis=fetched.basis[:16],
            content_hash=anchored,
        )
        return fetched
    except (KeyError, ValueError) as exc:
        target.unlink(missing_ok=True)
        raise PeerUnavailable(f"{peer.name} sent an unreadable answer ({type(exc).__name__})") from None
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def stream_from_peer(
    node: Node,
    peer: Member,
    path: str,
    *,
    params: Mapping[str, str | int],
    timeout: float,
    headers: Mapping[str, str] | None = None,
) -> tuple[Path, str, httpx.Headers]:
    """A peer's (ciphertext) answer to a GET, streamed to a temporary file in the blob store, bounded in
    bytes (``peers.max_record_bytes``) and in time for the whole answer (a trickling peer is cut off too):
    the file, the BLAKE3 (hex) of what came, and the answer's headers. A refusal is passed on as the peer
    said it (``raise_for_peer``); the file is gone on any error here, and the caller deletes it on its own."""
    node.blob_dir.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkstemp(prefix=".peer-", dir=node.blob_dir)[1])
    digest = blake3.blake3()
    limit = node.settings.peers.max_record_bytes
    deadline = time.monotonic() + timeout
    try:
        with peer_client(node, peer).stream(
            "GET", path, params=dict(params), headers=dict(headers or {}), timeout=timeout
        ) as response:
            if response.status_code >= 300:
                read_capped(response, 64 * 1024)
                raise_for_peer(response, peer)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise PeerUnavailable(f"{peer.name} announced {declared} bytes, over the {limit}-byte limit")
            received = 0
            with open(target, "wb") as sink:
                for chunk in response.iter_bytes():
                    received += len(chunk)
                    if received > limit:
                        raise PeerUnavailable(f"{peer.name} sent more than the {limit}-byte limit")
                    if time.monotonic() > deadline:
                        raise PeerUnavailable(f"{peer.name} did not finish within {timeout:.0f}s")
                    digest.update(chunk)
                    sink.write(chunk)
            return target, digest.hexdigest(), response.headers
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


async def ask_every_member(
    node: Node,
    *,
    local: Callable[[], T],
    path: str,
    params: dict[str, str | int],
    parse: Callable[[httpx.Response], T],
    deadline_s: float,
    headers: dict[str, str] | None = None,
) -> list[MemberAnswer[T]]:
    """Asks every active member node at once (this one answers through ``local``), within one deadline.

    A member that is down, slow or refuses does not fail the whole: its answer says so, and the
    others' answers stand. Members come from the chain, in registry order. The waiting happens on
    the event loop, not in a thread: a member that hangs holds no thread another route needs; only
    ``local`` and the chain read take one of the node's request threads, briefly. Answers are read
    up to ``peers.max_answer_bytes``.
    """
    peers = await run_sync(member_nodes, node, limiter=node.request_threads)
    limit = node.settings.peers.max_answer_bytes

    async def ask(client: httpx.AsyncClient, peer: Member) -> MemberAnswer[T]:
        if peer.account == node.address:
            return MemberAnswer(
                member=peer, status="returned", value=await run_sync(local, limiter=node.request_threads)
            )
        auth = MemberAuth(account=node.identity.account, chain_id=node.chain_id, audience=peer.account)
        url = peer.endpoint.rstrip("/") + path
        try:
            async with client.stream("GET", url, params=params, headers=headers, auth=auth) as response:
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > limit:
                        return MemberAnswer(member=peer, status="error", detail=f"answer over {limit} bytes")
        except httpx.HTTPError as exc:
            return MemberAnswer(member=peer, status="unreachable", detail=type(exc).__name__)
        if response.status_code == 200:
            try:
                answer = httpx.Response(200, content=bytes(body), headers=response.headers)
                return MemberAnswer(member=peer, status="returned", value=parse(answer))
            except ValueError as exc:
                return MemberAnswer(member=peer, status="error", detail=f"unreadable answer: {exc}"[:200])
        status: Literal["denied", "error"] = "denied" if response.status_code in (401, 403) else "error"
        return MemberAnswer(member=peer, status=status, detail=f"HTTP {response.status_code}")

    answers: dict[str, MemberAnswer[T]] = {}
    async with httpx.AsyncClient(timeout=deadline_s, follow_redirects=False) as client:
        tasks = {asyncio.ensure_future(ask(client, peer)): peer for peer in peers}
        if tasks:
            finished, pending = await asyncio.wait(tasks, timeout=deadline_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        for task, peer in tasks.items():
            if task.done() and not task.cancelled():
                answers[peer.account] = task.result()
            else:
                answers[peer.account] = MemberAnswer(
                    member=peer, status="unreachable", detail=f"no answer within {deadline_s:.1f}s"
                )
    return [answers[p.account] for p in peers]


def only_patients(records_: list[RecordPublic], patient: str) -> list[RecordPublic]:
    """A member's answer about one patient, minus anything about anyone else (a peer is not trusted)."""
    return [r for r in records_ if r.patient.lower() == patient.lower()]


async def records_across_consortium(
    node: Node, caller: Caller, *, patient: str, purpose: Purpose, deadline_s: float = 5.0
) -> FanOutResult:
    """Asks every active member node at once for the patient's records; reports each member's outcome."""
    policy.require(policy.OWN_SYSTEM, node, caller)
    started = time.monotonic()
    with node.fanout_slots.hold(f"member:{caller.address}:{patient}", FANOUT_BUSY):
        answers = await ask_every_member(
            node,
            local=lambda: records.list_records(node, caller, patient, purpose),
            path=f"/v1/patients/{patient}/records",
            params={"purpose": purpose.name.lower()},
            parse=lambda response: only_patients(
                _RECORD_LIST.validate_python(jsontext.loads(response.content)), patient
            ),
            deadline_s=deadline_s,
        )
    return FanOutResult(
        patient=patient,
        purpose=purpose.name.lower(),
        elapsed_ms=round((time.monotonic() - started) * 1000, 1),
        members=[
            MemberResult(
                member=a.member.account, name=a.member.name, status=a.status, detail=a.detail, records=a.value or []
            )
            for a in answers
        ],
    )
