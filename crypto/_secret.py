"""A base for objects that hold secret key material.

They show no secret in ``repr``/``str`` (so not in logs or tracebacks), refuse pickling and
copying (so secrets are not written out by accident), and compare in constant time.
"""

from __future__ import annotations

import hmac
from typing import Any, NoReturn


class SecretHolder:
    """Mixin: subclasses describe themselves by public facts only (``_public_repr``)."""

    __slots__ = ()

    def _public_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._public_repr()}>".replace(" >", ">")

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError(f"{type(self).__name__} holds secret key material and cannot be pickled")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise TypeError(f"{type(self).__name__} holds secret key material and cannot be pickled")

    def __copy__(self) -> NoReturn:
        raise TypeError(f"{type(self).__name__} holds secret key material and cannot be copied")

    def __deepcopy__(self, memo: Any) -> NoReturn:
        raise TypeError(f"{type(self).__name__} holds secret key material and cannot be copied")


def equal(a: bytes, b: bytes) -> bool:
    """Constant-time comparison of two byte strings."""
    return hmac.compare_digest(a, b)
