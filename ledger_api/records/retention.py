"""A record's retention end: how long the law says it must be kept (see ``erasure`` for what follows)."""

from __future__ import annotations

import calendar
from datetime import date

from ledger_api.core.config import RetentionSettings


def retention_end(settings: RetentionSettings, kind: str, last_encounter: date) -> date:
    """The last day the law requires a record of ``kind`` kept: its years after the last encounter
    (29 February falls on 28 February in a common year)."""
    year = last_encounter.year + settings.years(kind)
    day = min(last_encounter.day, calendar.monthrange(year, last_encounter.month)[1])
    return last_encounter.replace(year=year, day=day)
