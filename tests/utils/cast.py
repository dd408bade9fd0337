"""The test consortium's cast, named once: three hospitals of the Dapeng group and the audit office.

Contract tests give them plain accounts and fixed key bytes (``tests.utils.actors``); node tests
give them real identities (``tests.utils.nodes``); both put the same cast in the genesis set.
"""

from __future__ import annotations

from ledger_api.chain.types import GenesisMember, Role

MEMBER_NAMES = {
    "a": "Dapeng New District People's Hospital",
    "b": "Kuichong Community Health Center",
    "c": "Nan'ao Community Health Center",
}
AUDITOR_NAME = "Consortium Audit Office"


def genesis(members: dict[str, tuple[str, bytes, str]], auditor: tuple[str, bytes, str]) -> list[GenesisMember]:
    """The genesis set: each member (by slug) and the auditor as ``(account, HPKE public key, endpoint)``."""
    founders = [
        GenesisMember(
            account=account, role=Role.MEMBER, name=MEMBER_NAMES[slug], endpoint=endpoint, hpke_public_key=key
        )
        for slug, (account, key, endpoint) in members.items()
    ]
    account, key, endpoint = auditor
    return [
        *founders,
        GenesisMember(account=account, role=Role.AUDITOR, name=AUDITOR_NAME, endpoint=endpoint, hpke_public_key=key),
    ]
