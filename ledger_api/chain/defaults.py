"""Deployment defaults and the local development consortium's names: plain constants.

Kept apart from ``deployment`` and ``devnet`` (which import web3 and the crypto stack) so the command line
can show them in its help without loading either: ``medledger --help`` starts in a fraction of a second.
"""

from __future__ import annotations

DEFAULT_VOTING_PERIOD = 7 * 24 * 3600
DEFAULT_BREAK_GLASS_DURATION = 4 * 3600
#: break-glass declarations one member (a whole hospital) may make in any window: room for a busy
#: emergency department's day, while a member declaring back to back to read what it has no consent
#: for is stopped on chain; a not-justified review blocks it for that patient at once
#: (deployment parameters: a consortium sets its own)
DEFAULT_BREAK_GLASS_LIMIT = 100
DEFAULT_BREAK_GLASS_WINDOW = 24 * 3600
#: a lost patient key is replaced once this many members (each after an in-person identity check) and/or
#: guardians approve, then after this time lock, during which the old key can still cancel it
DEFAULT_RECOVERY_THRESHOLD = 2
DEFAULT_RECOVERY_DELAY = 72 * 3600

#: the local development consortium's members (slug, name) and auditor
DEFAULT_MEMBERS = (
    ("dapeng", "Dapeng New District People's Hospital"),
    ("kuichong", "Kuichong Community Health Center"),
    ("nanao", "Nan'ao Community Health Center"),
)
AUDITOR = ("auditor", "Consortium Audit Office")
#: their names in Chinese (the chain registers one name; the portal shows each in the patient's language)
DEFAULT_NAMES_ZH = {
    "dapeng": "大鹏新区人民医院",
    "kuichong": "葵涌社区健康服务中心",
    "nanao": "南澳社区健康服务中心",
    "auditor": "医联体审计办公室",
}
#: the passphrase of the development keys the local consortium creates, unless this variable sets another
DEV_PASSPHRASE_ENV = "MEDLEDGER_DEV_PASSPHRASE"
DEV_PASSPHRASE_DEFAULT = "medledger-local-development-only"
