"""The consortium's privacy notice: the text a patient is shown before every signature, by version.

PIPL Art. 14 and 17: consent is valid only when informed, and the notice must say who handles what, why,
for how long and how to exercise one's rights. A grant therefore signs the version and the SHA-256 of the
notice shown (``noticeVersion``, ``noticeHash``), and this node refuses to relay a grant made under any
other notice than its current one. Every version stays served, so an export or an auditor can show the
exact words behind any consent.

The hash is SHA-256 over the UTF-8 of the canonical JSON ``{"en": <text>, "version": <n>, "zh": <text>}``
(keys sorted, no spaces, non-ASCII kept): both languages, so the patient signs the same notice whichever
one they read. The portal recomputes it from the text it displays before signing.

Texts live in ``texts/v<n>.<lang>.md`` of this package, or in the directory the consortium configures
(settings ``privacy_notice_dir``: the same file names); the highest version found is the current one.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field

from ledger_api.errors import NotFound

PACKAGED = Path(__file__).parent / "texts"
LANGUAGES = ("en", "zh")
_FILE = re.compile(r"^v([1-9][0-9]{0,4})\.(en|zh)\.md$")


class PrivacyNoticeView(BaseModel):
    """One version of the notice, in every language, with the hash a grant signs."""

    version: int = Field(ge=1, le=0xFFFF)
    sha256: str = Field(description="hex SHA-256 of the canonical JSON {en, version, zh} (see the module)")
    text: dict[str, str] = Field(description="language (en, zh) -> Markdown text")
    current: bool


@dataclass(frozen=True)
class PrivacyNotice:
    version: int
    text: dict[str, str]

    @property
    def sha256(self) -> bytes:
        return notice_hash(self.version, self.text)


def notice_hash(version: int, text: dict[str, str]) -> bytes:
    canonical = json.dumps({**text, "version": version}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).digest()


@lru_cache(maxsize=8)
def notices(directory: Path | None) -> dict[int, PrivacyNotice]:
    """Every version found (each must exist in every language), read once per directory."""
    source = directory or PACKAGED
    found: dict[int, dict[str, str]] = {}
    for path in source.iterdir():
        match = _FILE.match(path.name)
        if match:
            found.setdefault(int(match.group(1)), {})[match.group(2)] = path.read_text(encoding="utf-8")
    complete = {v: PrivacyNotice(v, t) for v, t in found.items() if set(t) == set(LANGUAGES)}
    if not complete:
        raise RuntimeError(f"no privacy notice in both languages in {source}")
    return complete


def current(directory: Path | None) -> PrivacyNotice:
    found = notices(directory)
    return found[max(found)]


def view(directory: Path | None, version: int | None = None) -> PrivacyNoticeView:
    found = notices(directory)
    chosen = max(found) if version is None else version
    if chosen not in found:
        raise NotFound(f"no privacy notice version {chosen}", code="notice-not-found")
    notice = found[chosen]
    return PrivacyNoticeView(
        version=notice.version, sha256=notice.sha256.hex(), text=notice.text, current=chosen == max(found)
    )
