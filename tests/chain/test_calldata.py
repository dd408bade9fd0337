"""Contract-call encoding and decoding: the fast paths agree with eth_abi on every value, and
whatever the shortcuts do not take goes to eth_abi, which encodes it or refuses it as before."""

from __future__ import annotations

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import EncodingError, NonEmptyPaddingBytes
from eth_utils import to_checksum_address
from hypothesis import given
from hypothesis import strategies as st

from ledger_api.chain.calldata import decode_results, encode_arguments

addresses = st.binary(min_size=20, max_size=20)
STATIC = {
    "address": addresses.map(to_checksum_address),
    "bool": st.booleans(),
    "uint8": st.integers(0, 2**8 - 1),
    "uint64": st.integers(0, 2**64 - 1),
    "uint256": st.integers(0, 2**256 - 1),
    "bytes32": st.binary(min_size=32, max_size=32),
}
static_calls = st.lists(st.sampled_from(sorted(STATIC)), min_size=0, max_size=5).flatmap(
    lambda types: st.tuples(st.just(tuple(types)), st.tuples(*[STATIC[t] for t in types]))
)


@given(static_calls)
def test_static_arguments_encode_exactly_as_eth_abi_does(call: tuple[tuple[str, ...], tuple]) -> None:
    types, args = call
    assert encode_arguments(types, args) == abi_encode(list(types), list(args))


@given(static_calls)
def test_static_results_decode_as_eth_abi_does_with_addresses_checksummed(call: tuple[tuple[str, ...], tuple]) -> None:
    types, values = call
    raw = abi_encode(list(types), list(values))
    decoded = abi_decode(list(types), raw)
    expected = [to_checksum_address(v) if t == "address" else v for t, v in zip(types, decoded, strict=True)]
    assert decode_results(types, raw) == tuple(expected) == values


@given(addresses, st.text(max_size=40), st.text(max_size=60), st.binary(max_size=1300), st.integers(0, 2**256 - 1))
def test_results_with_dynamic_parts_decode_as_eth_abi_does(
    account: bytes, name: str, endpoint: str, key: bytes, number: int
) -> None:
    """A member's record (the signer check on every signed request) is a tuple with strings and bytes."""
    types = ("(address,uint256,uint8,uint8,uint64,uint64,string,string,bytes)",)
    member = (to_checksum_address(account), number, 1, 1, 3, 7, name, endpoint, key)
    raw = abi_encode(list(types), [member])
    first, again = decode_results(types, raw), decode_results(types, raw)
    assert first == again == (member,)


def test_decoded_addresses_are_checksummed_as_web3_returns_them() -> None:
    raw = abi_encode(["address", "address[]"], ["0x" + "ab" * 20, ["0x" + "cd" * 20]])
    account, accounts = decode_results(("address", "address[]"), raw)
    assert account == to_checksum_address("0x" + "ab" * 20)
    assert accounts == [to_checksum_address("0x" + "cd" * 20)]


def test_arrays_are_decoded_afresh_for_each_caller() -> None:
    raw = abi_encode(["address[]"], [["0x" + "cd" * 20]])
    (first,), (second,) = decode_results(("address[]",), raw), decode_results(("address[]",), raw)
    first.append("changed by one caller")
    assert second == [to_checksum_address("0x" + "cd" * 20)]


@pytest.mark.parametrize(
    ("abi_type", "value"),
    [
        ("uint8", 256),
        ("uint8", -1),
        ("uint256", True),
        ("bool", 1),
        ("bytes32", b"short"),
        ("address", "0x" + "ab" * 19),
        ("address", "0xZZ" + "ab" * 19),
        ("address", "0xAbAb" + "ab" * 18),
        ("address", b"\x01" * 20),
    ],
)
def test_values_outside_the_shortcuts_get_eth_abis_answer(abi_type: str, value: object) -> None:
    """Out-of-range, wrongly typed and wrongly checksummed values are refused exactly as eth_abi refuses them
    (or, for raw 20-byte addresses, encoded as eth_abi encodes them)."""
    try:
        expected: bytes | type[Exception] = abi_encode([abi_type], [value])
    except EncodingError as refused:
        expected = type(refused)
    if isinstance(expected, bytes):
        assert encode_arguments((abi_type,), (value,)) == expected
    else:
        with pytest.raises(expected):
            encode_arguments((abi_type,), (value,))


@pytest.mark.parametrize(
    ("abi_type", "word"),
    [("bool", (2).to_bytes(32, "big")), ("address", b"\x01" + bytes(31)), ("uint8", (256).to_bytes(32, "big"))],
)
def test_malformed_result_words_are_refused_like_eth_abi_refuses_them(abi_type: str, word: bytes) -> None:
    with pytest.raises(NonEmptyPaddingBytes):
        abi_decode([abi_type], word)
    with pytest.raises(NonEmptyPaddingBytes):
        decode_results((abi_type,), word)
