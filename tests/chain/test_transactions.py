"""Local signing, nonce management under concurrency, receipts, outages and revert decoding."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from eth_abi import encode
from eth_utils import function_signature_to_4byte_selector

from ledger_api.chain.backends import AnvilBackend, RpcBackend, free_port
from ledger_api.chain.commitments import new_salt, record_subject
from ledger_api.chain.ids import mint_record_id
from ledger_api.chain.reverts import decode_revert
from ledger_api.chain.transactions import TransactionSender
from ledger_api.errors import ChainUnavailable
from tests.utils.actors import Chain, random_id


def test_concurrent_senders_on_one_key_leave_no_nonce_gap(chain: Chain) -> None:
    if chain.backend.kind == "eth-tester":
        pytest.skip("the in-process EVM is not thread-safe; this runs against the anvil node")
    a = chain.as_(chain.actors.a)
    start = chain.w3.eth.get_transaction_count(chain.actors.a.address)

    def anchor(_: int) -> int:
        record_id = mint_record_id(chain.actors.a.address)
        return a.records.anchor_record(
            record_id, record_subject(record_id, chain.actors.patient.address, 0, new_salt()), random_id()
        ).block_number

    with ThreadPoolExecutor(max_workers=8) as pool:
        blocks = list(pool.map(anchor, range(40)))
    assert len(blocks) == 40
    assert chain.w3.eth.get_transaction_count(chain.actors.a.address) == start + 40
    assert chain.w3.eth.get_transaction_count(chain.actors.a.address, "pending") == start + 40


def test_a_refused_send_does_not_burn_a_nonce(chain: Chain) -> None:
    a = chain.as_(chain.actors.a)
    start = chain.w3.eth.get_transaction_count(chain.actors.a.address)
    with pytest.raises(Exception):  # noqa: B017 - reverts at estimation: nothing is sent
        a.records.anchor_record(
            b"\x00" * 32, record_subject(b"\x00" * 32, chain.actors.patient.address, 0, new_salt()), random_id()
        )
    a.records.anchor_record(
        mint_record_id(chain.actors.a.address),
        record_subject(mint_record_id(chain.actors.a.address), chain.actors.patient.address, 0, new_salt()),
        random_id(),
    )
    assert chain.w3.eth.get_transaction_count(chain.actors.a.address) == start + 1


def test_receipts_carry_gas_block_and_decoded_events(chain: Chain) -> None:
    record_id = mint_record_id(chain.actors.a.address)
    receipt = chain.as_(chain.actors.a).records.anchor_record(
        record_id, record_subject(record_id, chain.actors.patient.address, 2, new_salt()), random_id()
    )
    assert receipt.gas_used > 21_000
    assert receipt.block_number == chain.w3.eth.block_number
    assert receipt.tx_hash.startswith("0x") and len(receipt.tx_hash) == 66
    assert [e.name for e in receipt.events] == ["RecordAnchored"]
    with pytest.raises(KeyError):
        receipt.event("AccessRecorded")


def test_transactions_are_signed_for_the_chain_id(chain: Chain) -> None:
    record_id = mint_record_id(chain.actors.a.address)
    receipt = chain.as_(chain.actors.a).records.anchor_record(
        record_id, record_subject(record_id, chain.actors.patient.address, 2, new_salt()), random_id()
    )
    tx = chain.w3.eth.get_transaction(receipt.tx_hash)
    chain_id = chain.backend.chain_id
    # EIP-155: a legacy transaction's v encodes the chain id (some nodes also echo chainId)
    assert tx["v"] in (chain_id * 2 + 35, chain_id * 2 + 36)
    assert tx.get("chainId", chain_id) == chain_id


def test_unreachable_node_is_chain_unavailable() -> None:
    backend = RpcBackend(f"http://127.0.0.1:{free_port()}", timeout=1)
    with pytest.raises(ChainUnavailable):
        TransactionSender(backend.w3, __import__("eth_account").Account.create())


@pytest.mark.anvil
def test_node_killed_mid_session_fails_closed_with_chain_unavailable(actors) -> None:
    from ledger_api.chain.deployment import Consortium
    from tests.utils.actors import deploy_test_consortium

    backend = AnvilBackend()
    try:
        manifest = deploy_test_consortium(backend, actors)
        reader = Consortium(backend.w3, manifest)
        assert reader.registry.member_count() == 4
        backend.kill()
        with pytest.raises(ChainUnavailable):
            reader.consents.is_permitted(actors.patient.address, actors.b.address, 0, 0)
    finally:
        backend.close()


def test_revert_data_decoding_covers_panics_strings_and_unknown_errors() -> None:
    panic = decode_revert("0x4e487b71" + encode(["uint256"], [0x11]).hex())
    assert (panic.error_name, panic.arguments) == ("Panic", {"code": 0x11})
    message = decode_revert("0x08c379a0" + encode(["string"], ["nope"]).hex())
    assert (message.error_name, message.arguments) == ("Error", {"message": "nope"})
    unknown = decode_revert("0xdeadbeef")
    assert unknown.error_name == "UnknownError"
    known = decode_revert(function_signature_to_4byte_selector("AccessTrailInvalidHash()"))
    assert known.error_name == "AccessTrailInvalidHash" and known.arguments == {}
    assert decode_revert(None) is None and decode_revert("0x") is None and decode_revert("garbage") is None


@pytest.mark.anvil
def test_confirmations_wait_for_following_blocks(actors) -> None:
    import threading
    import time

    from ledger_api.chain.deployment import Consortium
    from tests.utils.actors import deploy_test_consortium

    with AnvilBackend() as backend:
        manifest = deploy_test_consortium(backend, actors)
        sender = TransactionSender(backend.w3, actors.a, confirmations=2, receipt_timeout=10)
        miner = threading.Timer(0.5, lambda: [backend.w3.provider.make_request("evm_mine", []) for _ in range(2)])
        miner.start()
        started = time.monotonic()
        receipt = Consortium(backend.w3, manifest, sender).trail.anchor_batch(random_id(), 1, 1)
        assert time.monotonic() - started >= 0.4  # waited for the two blocks mined later
        assert backend.w3.eth.block_number >= receipt.block_number + 2
        impatient = TransactionSender(backend.w3, actors.a, confirmations=5, receipt_timeout=0.5)
        with pytest.raises(ChainUnavailable, match="not confirmed"):
            Consortium(backend.w3, manifest, impatient).trail.anchor_batch(random_id(), 2, 2)
