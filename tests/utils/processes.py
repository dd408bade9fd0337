"""Looking at a node's processes through Linux's /proc (the multi-process ``medledger serve`` tests)."""

from __future__ import annotations

from pathlib import Path


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state first, parent pid second)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None  # ended while we looked


def children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    return [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit() and (fields := _stat_fields(int(p.name))) and fields[1] == str(pid)
    ]


def alive(pid: int) -> bool:
    """Running (not ended, and not a zombie waiting for its parent)."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def read_proc(pid: int, name: str) -> bytes:
    """/proc/<pid>/<name> (``cmdline``, ``comm`` ...), or b"" if the process has ended."""
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return b""
