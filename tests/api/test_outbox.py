"""The outbox survives crashes at every step: nothing lost, nothing anchored twice."""

from __future__ import annotations

from sqlmodel import col, select

from ledger_api.chain.backends import RpcBackend, free_port
from ledger_api.chain.transactions import TransactionSender
from ledger_api.chain.types import PreparedTransaction
from ledger_api.core.db import session_scope
from ledger_api.main import OUTBOX_KINDS
from ledger_api.outbox.models import OutboxItem
from ledger_api.outbox.worker import OutboxWorker
from tests.api.conftest import World
from tests.utils.records import upload


def _items(world: World) -> list[OutboxItem]:
    with session_scope(world.node.node.engine) as session:
        return list(session.exec(select(OutboxItem).order_by(col(OutboxItem.id))))


def _restart(world: World) -> OutboxWorker:
    """What a restarted process has: a new sender (nonce from the chain) and a new worker."""
    node = world.node.node
    node.sender = TransactionSender(node.w3, node.identity.account, chain_id=node.chain_id)
    node.chain = type(node.chain)(node.w3, node.manifest, node.sender)
    return OutboxWorker(node, OUTBOX_KINDS)


def _nonce(world: World) -> int:
    return world.backend.w3.eth.get_transaction_count(world.a.address)


def _anchored(world: World, record_id: str) -> bool:
    return world.chain_as(world.stranger).records.exists(bytes.fromhex(record_id))


def _signed_and_stored(world: World) -> tuple[str, int, PreparedTransaction]:
    """An upload whose anchor the worker signed and stored as sent (what a crash right after leaves):
    the record id, the node's nonce before, and the stored transaction."""
    record_id = upload(world).json()["id"]
    (item,) = _items(world)
    worker, before = world.node.worker, _nonce(world)
    unsigned = worker.transaction(item)
    assert unsigned.contract == "RecordRegistry"
    prepared = world.node.node.sender.prepare(unsigned.function, contract=unsigned.contract)
    worker._mark_sent([item], prepared)
    return record_id, before, prepared


def test_crash_after_signing_before_broadcast_resends_the_same_transaction(world: World) -> None:
    record_id, before, prepared = _signed_and_stored(world)  # crash here: stored, never broadcast
    assert not _anchored(world, record_id)
    _restart(world).run_once()
    (item,) = _items(world)
    assert item.state == "confirmed" and item.tx_hash == prepared.tx_hash
    assert _anchored(world, record_id) and _nonce(world) == before + 1


def test_crash_after_broadcast_before_receipt_confirms_without_resending(world: World) -> None:
    record_id, before, prepared = _signed_and_stored(world)
    world.node.node.sender.broadcast(prepared)  # crash here: mined, but the row still says "sent"
    _restart(world).run_once()
    (item,) = _items(world)
    assert item.state == "confirmed" and item.block_number is not None
    assert _anchored(world, record_id) and _nonce(world) == before + 1


def test_effect_already_on_chain_is_confirmed_without_a_transaction(world: World) -> None:
    record = upload(world).json()
    (item,) = _items(world)
    p = item.payload
    world.chain_as(world.a.account).records.anchor_record(
        bytes.fromhex(p["record_id"]), bytes.fromhex(p["subject"]), bytes.fromhex(p["content_hash"])
    )
    before = _nonce(world)
    _restart(world).run_once()
    (item,) = _items(world)
    assert item.state == "confirmed" and item.tx_hash is None and _nonce(world) == before
    assert _anchored(world, record["id"])


def test_chain_outage_backs_off_then_anchors_exactly_once(world: World) -> None:
    record_id = upload(world).json()["id"]
    node = world.node.node
    healthy_w3, healthy_sender, healthy_chain = node.w3, node.sender, node.chain
    dead = RpcBackend(f"http://127.0.0.1:{free_port()}", timeout=1).w3
    node.w3, node.sender = dead, TransactionSender(dead, node.identity.account, chain_id=node.chain_id)
    node.chain = type(node.chain)(dead, node.manifest, node.sender)
    try:
        assert OutboxWorker(node, OUTBOX_KINDS).run_once() == 0
        (item,) = _items(world)
        assert item.state == "pending" and item.attempts == 1 and "unreachable" in (item.last_error or "")
        assert item.next_attempt_at > item.created_at
    finally:
        node.w3, node.sender, node.chain = healthy_w3, healthy_sender, healthy_chain
    with session_scope(node.engine) as session:  # let the backoff elapse
        row = session.get(OutboxItem, item.id)
        row.next_attempt_at = row.created_at
        session.add(row)
    world.node.drain()
    (item,) = _items(world)
    assert item.state == "confirmed" and _anchored(world, record_id)


def test_a_rejected_write_is_marked_failed_with_the_contracts_reason(world: World) -> None:
    upload(world)
    (item,) = _items(world)
    with session_scope(world.node.node.engine) as session:
        row = session.get(OutboxItem, item.id)
        row.payload = {**row.payload, "subject": "00" * 24}  # no commitment: the contract refuses it
        session.add(row)
    world.node.drain()
    (item,) = _items(world)
    assert item.state == "failed" and "RecordRegistryInvalidSubject" in item.last_error
