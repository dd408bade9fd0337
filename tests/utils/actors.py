"""Factories for the people and institutions in a test consortium."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from medledger_crypto import (
    ConsentGrant,
    ConsentMessage,
    ConsentRevocation,
    DelegateChange,
    SharingRestriction,
    sign_typed,
)

from ledger_api.chain.backends import ChainBackend
from ledger_api.chain.deployment import Consortium, DeploymentManifest, deploy_consortium
from ledger_api.chain.transactions import TransactionSender
from ledger_api.chain.types import DelegateScope, Delegation, GenesisMember, GrantTerms
from ledger_api.consents.wire import terms_under_notice
from ledger_api.errors import ContractReverted
from tests.utils import cast

HYBRID_KEY = bytes(range(256)) * 4 + bytes(192)  # 1216 bytes: ML-KEM-768 + X25519 public key size
X25519_KEY = bytes(range(32))
ETHER = 10**18

#: what a signing helper returns: the deadline signed and the signature (v, r, s)
Signed = tuple[int, tuple[int, bytes, bytes]]


@dataclass
class Actors:
    """Everyone in the test consortium. Members A, B, C vote; the auditor oversees."""

    deployer: LocalAccount
    a: LocalAccount
    b: LocalAccount
    c: LocalAccount
    auditor: LocalAccount
    patient: LocalAccount
    delegate: LocalAccount
    stranger: LocalAccount
    candidate: LocalAccount
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls) -> Actors:
        names = ["deployer", "a", "b", "c", "auditor", "patient", "delegate", "stranger", "candidate"]
        return cls(**{n: Account.create() for n in names})

    def all(self) -> list[LocalAccount]:
        return [
            self.deployer,
            self.a,
            self.b,
            self.c,
            self.auditor,
            self.patient,
            self.delegate,
            self.stranger,
            self.candidate,
        ]

    def genesis(self) -> list[GenesisMember]:
        keys = {"a": HYBRID_KEY, "b": X25519_KEY, "c": X25519_KEY}
        members = {slug: (getattr(self, slug).address, key, f"https://{slug}.example") for slug, key in keys.items()}
        return cast.genesis(members, (self.auditor.address, X25519_KEY, "https://audit.example"))


def deploy_test_consortium(backend: ChainBackend, actors: Actors) -> DeploymentManifest:
    for account in actors.all():
        backend.fund(account.address, 100 * ETHER)
    return deploy_consortium(TransactionSender(backend.w3, actors.deployer), actors.genesis())


class Chain:
    """One test's view of the deployed consortium: clients per actor, time, signing helpers."""

    def __init__(self, backend: ChainBackend, manifest: DeploymentManifest, actors: Actors) -> None:
        self.backend = backend
        self.w3 = backend.w3
        self.manifest = manifest
        self.actors = actors
        self._clients: dict[str, Consortium] = {}

    def as_(self, account: LocalAccount) -> Consortium:
        """The consortium's clients writing as ``account`` (fresh sender per test, see conftest)."""
        if account.address not in self._clients:
            sender = TransactionSender(self.w3, account, chain_id=self.backend.chain_id)
            self._clients[account.address] = Consortium(self.w3, self.manifest, sender)
        return self._clients[account.address]

    @property
    def read(self) -> Consortium:
        return Consortium(self.w3, self.manifest)

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def terms(
        self, grantee: str | tuple[str, ...], categories: int = 0b11, purposes: int = 0b1, hours: int = 24, **more: Any
    ) -> GrantTerms:
        """Terms naming ``grantee`` (one member, or several), under the built-in privacy notice; ``more``:
        any other term (care_from, care_to as day numbers)."""
        now = self.now()
        return terms_under_notice(
            grantees=(grantee,) if isinstance(grantee, str) else grantee,
            **more,
            categories=categories,
            purposes=purposes,
            valid_from=now - 1,
            valid_until=now + hours * 3600,
        )

    def sign_grant(self, signer: LocalAccount, patient: str, terms: GrantTerms, **options: Any) -> Signed:
        return self._signed(signer, patient, partial(ConsentGrant.of, patient, terms), **options)

    def sign_revocation(self, signer: LocalAccount, consent_id: int, patient: str, **options: Any) -> Signed:
        return self._signed(
            signer, patient, partial(ConsentRevocation, patient=patient, consent_id=consent_id), **options
        )

    def sign_delegation(self, signer: LocalAccount, patient: str, terms: Delegation) -> Signed:
        change = partial(
            DelegateChange,
            patient=patient,
            delegate=terms.delegate,
            scope=int(terms.scope),
            valid_until=terms.valid_until,
            excluded_categories=terms.excluded_categories,
        )
        return self._signed(signer, patient, change)

    def sign_restriction(self, signer: LocalAccount, patient: str, restricted: bool, **options: Any) -> Signed:
        return self._signed(
            signer, patient, partial(SharingRestriction, patient=patient, restricted=restricted), **options
        )

    def _signed(
        self,
        signer: LocalAccount,
        patient: str,
        message: Callable[..., ConsentMessage],
        *,
        deadline: int | None = None,
        nonce: int | None = None,
        chain_id: int | None = None,
        contract: str | None = None,
    ) -> Signed:
        """``(deadline, signature)`` of the message ``message(nonce=, deadline=)`` makes: by default the
        patient's next nonce, an hour to land, and this consortium's domain."""
        deadline = deadline if deadline is not None else self.now() + 3600
        nonce = nonce if nonce is not None else self.read.consents.nonce(patient)
        document = message(nonce=nonce, deadline=deadline).document(
            chain_id=chain_id if chain_id is not None else self.backend.chain_id,
            contract=contract or self.manifest.address("ConsentRegistry"),
        )
        return deadline, sign_typed(signer, document)


def manages(delegate: str, *, valid_until: int = 0, excluded_categories: int = 0) -> Delegation:
    """A delegation to manage the patient's consents (and view everything not excluded)."""
    return Delegation(
        delegate=delegate, scope=DelegateScope.MANAGE, valid_until=valid_until, excluded_categories=excluded_categories
    )


def views(delegate: str, *, valid_until: int = 0, excluded_categories: int = 0) -> Delegation:
    """A delegation to view the patient's records, consents and history only."""
    return Delegation(
        delegate=delegate, scope=DelegateScope.VIEW, valid_until=valid_until, excluded_categories=excluded_categories
    )


def removal(delegate: str) -> Delegation:
    """The change that removes a delegate."""
    return Delegation(delegate=delegate, scope=DelegateScope.NONE)


def random_id() -> bytes:
    return os.urandom(32)


@contextmanager
def reverts(error_name: str, **arguments: Any):
    """Asserts the block raises ``ContractReverted`` with this custom error and these arguments."""
    with pytest.raises(ContractReverted) as caught:
        yield caught
    assert caught.value.error_name == error_name, caught.value.detail
    for key, expected in arguments.items():
        assert caught.value.arguments[key] == expected, (key, caught.value.arguments)
