"""JSON from outside the node (request bodies, headers, peers' answers), parsed with bounded nesting.

Why: Python's JSON decoder recurses once per nested array or object and relies on the interpreter's
recursion limit to stop. Libraries we import (py_ecc, via web3) raise that limit to 100,000, far
past what the C stack holds, so a few hundred kilobytes of ``[[[[...`` crashed the whole process
with a segmentation fault. We check the depth *before* decoding, over the raw bytes, and refuse
anything nested deeper than any message of ours needs; and `restore_recursion_limit` puts the
interpreter's guard back for everything else.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

#: no document the node accepts nests deeper than a handful of levels
MAX_DEPTH = 64
#: CPython's own default: deep enough for every library we run, shallow enough for any thread's C stack
RECURSION_LIMIT = 1000

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class JsonTooDeep(ValueError):
    """The document nests arrays and objects deeper than allowed."""


class DuplicateKey(ValueError):
    """An object names the same key twice: parsers disagree on which value wins, so neither is taken."""


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        repeated = next(key for key, _ in pairs if key in seen or seen.add(key))  # type: ignore[func-returns-value]
        raise DuplicateKey(f"key {repeated!r} appears more than once in one object")
    return document


def nesting_depth_exceeds(raw: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether ``raw`` opens more than ``limit`` arrays/objects at once (brackets inside strings do not count).

    Stops at the first bracket past the limit, so a hostile megabyte of ``[`` costs microseconds.
    """
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    brackets = _STRING.sub(b'""', raw).translate(None, _NOT_BRACKETS)
    depth = 0
    for byte in brackets:
        if byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def loads(raw: bytes | str, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` for untrusted input: ``JsonTooDeep`` past ``max_depth``, ``DuplicateKey`` for a key
    named twice in one object, ``ValueError`` if not JSON (UTF-8 only)."""
    data = raw.encode() if isinstance(raw, str) else raw
    if nesting_depth_exceeds(data, max_depth):
        raise JsonTooDeep(f"JSON nests deeper than {max_depth} levels")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"JSON must be UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        document = json.loads(text, object_pairs_hook=_refuse_duplicates)
    except RecursionError:  # cannot happen below MAX_DEPTH; a guard, not a path
        raise JsonTooDeep(f"JSON nests deeper than {max_depth} levels") from None
    if "\\u" in text and "\\ud" in text.lower():
        _refuse_lone_surrogates(document)
    return document


def _refuse_lone_surrogates(value: Any) -> None:
    """``"\\ud800"`` is valid JSON but no text: it would fail later, in a hash or in the database."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("a string holds an unpaired UTF-16 surrogate escape (not text)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_lone_surrogates(key)
            _refuse_lone_surrogates(item)
    elif isinstance(value, list):
        for item in value:
            _refuse_lone_surrogates(item)


def restore_recursion_limit() -> None:
    """Puts the interpreter's recursion guard back where CPython sets it, if an import raised it."""
    if sys.getrecursionlimit() > RECURSION_LIMIT:
        sys.setrecursionlimit(RECURSION_LIMIT)
