"""Block timestamps, cached: an audit asks for the same few blocks' times over and over."""

from __future__ import annotations

from ledger_api.chain.reader import ChainReader


class BlockClock:
    """``clock(block)`` is the block's timestamp (unix seconds), read once per block."""

    def __init__(self, reader: ChainReader) -> None:
        self.reader = reader
        self._cache: dict[int, int] = {}

    def __call__(self, block: int) -> int:
        cached = self._cache.get(block)
        if cached is None:
            cached = self._cache[block] = self.reader.block_timestamp(block)
        return cached
