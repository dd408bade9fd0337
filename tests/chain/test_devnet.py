"""The embedded development chain: deployed once with real member identities, reused on restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from medledger_crypto import HpkePublicKey, MemberIdentity

from ledger_api.chain.deployment import Consortium
from ledger_api.chain.devnet import DEFAULT_MEMBERS, start_devnet
from ledger_api.chain.types import Role


@pytest.mark.anvil
def test_devnet_deploys_once_and_resumes_with_the_same_identities(tmp_path: Path) -> None:
    first = start_devnet(tmp_path, port=None)
    try:
        assert not first.reused
        members = Consortium(first.backend.w3, first.manifest).registry.members()
        assert [m.name for m in members[:3]] == [name for _, name in DEFAULT_MEMBERS]
        assert members[3].role == Role.AUDITOR
        for member, (slug, _) in zip(members, DEFAULT_MEMBERS, strict=False):
            identity = first.identities[slug]
            assert member.account == identity.address
            # the registry holds the hybrid public key whose private half the member's keystore holds
            assert HpkePublicKey.from_bytes(member.hpke_public_key) == identity.hpke_public_key
        manifest = first.manifest
    finally:
        first.backend.close()
    second = start_devnet(tmp_path, port=None)
    try:
        assert second.reused and second.manifest == manifest
        assert second.identities["dapeng"].address == first.identities["dapeng"].address
        assert (
            MemberIdentity.load(tmp_path / "keys" / "dapeng.json", "medledger-local-development-only").address
            == second.identities["dapeng"].address
        )
    finally:
        second.backend.close()
