"""Imports every table module so SQLModel's metadata is complete (for Alembic and tests)."""

from __future__ import annotations


def import_all_models() -> None:
    from ledger_api.access import imports as _imports  # noqa: F401
    from ledger_api.access import models as _access  # noqa: F401
    from ledger_api.auth import models as _auth  # noqa: F401
    from ledger_api.auth import patient_numbers as _patient_numbers  # noqa: F401
    from ledger_api.consent_requests import models as _consent_requests  # noqa: F401
    from ledger_api.consortium import models as _consortium  # noqa: F401
    from ledger_api.custody import models as _custody  # noqa: F401
    from ledger_api.enrolment import models as _enrolment  # noqa: F401
    from ledger_api.inbox import models as _inbox  # noqa: F401
    from ledger_api.notifications import models as _notifications  # noqa: F401
    from ledger_api.outbox import models as _outbox  # noqa: F401
    from ledger_api.records import models as _records  # noqa: F401
    from ledger_api.succession import models as _succession  # noqa: F401
