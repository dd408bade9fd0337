"""Days of care as the chain counts them: whole days since 1970-01-01, as ``uint16``.

A record's anchor binds the day of the care it is about (``encounterDay`` in its subject commitment),
and a consent may cover only records whose day lies in a range (``careFrom``/``careTo``, 0 = open end).
Calendar dates, not instants: the day a hospital writes on the record, whatever its time zone.
"""

from __future__ import annotations

from datetime import date, timedelta

EPOCH = date(1970, 1, 1)
#: the last day a ``uint16`` counts (2149-06-06)
LAST_DAY = EPOCH + timedelta(days=0xFFFF)


def day_number(day: date | None) -> int:
    """The chain's number for ``day``; 0 for none (an open end, or a record whose day is not stated).

    Care before 1970-01-02 counts as not dated (0): only consents without a range of days cover it,
    which fails closed. Days after 2149-06-06 are refused (no record is dated in the future)."""
    if day is None or day <= EPOCH:
        return 0
    if day > LAST_DAY:
        raise ValueError(f"{day.isoformat()} is after the last day the chain counts ({LAST_DAY})")
    return (day - EPOCH).days


def countable(day: date) -> bool:
    """Whether ``day`` can stand at the end of a range of days on chain (after 1970-01-01, by 2149-06-06)."""
    return EPOCH < day <= LAST_DAY


def day_of(number: int) -> date | None:
    """The date the chain's ``number`` stands for; ``None`` for 0."""
    return EPOCH + timedelta(days=number) if number else None


def day_iso(number: int) -> str | None:
    """The ISO date the chain's ``number`` stands for; ``None`` for 0 (as JSON shows an open end)."""
    day = day_of(number)
    return day.isoformat() if day else None
