"""A patient's identity: an Ethereum account the patient holds, and the signatures it gives.

Patients are pseudonymous on chain: their address is all the consortium sees. The private key
never leaves the patient's device; backups are standard Ethereum V3 keystores (scrypt), so any
EIP-712 wallet can import the same account. Consent grants, revocations and delegate changes are
EIP-712 messages that match ``ConsentRegistry``'s digest exactly (see ``_eip712``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from medledger_crypto._eip712 import ConsentGrant, ConsentRevocation, DelegateChange, sign_typed
from medledger_crypto._errors import KeystoreError
from medledger_crypto._keystore import check_passphrase, read_document, write_private_file
from medledger_crypto._secret import SecretHolder

Signature = tuple[int, bytes, bytes]


class PatientIdentity(SecretHolder):
    """The patient's account. Shows only its address; never pickled or copied."""

    __slots__ = ("_account",)

    def __init__(self, account: LocalAccount) -> None:
        self._account = account

    @classmethod
    def create(cls) -> PatientIdentity:
        return cls(Account.create())

    @property
    def address(self) -> str:
        return self._account.address

    @property
    def account(self) -> LocalAccount:
        """The signing account (for local signing only)."""
        return self._account

    def _public_repr(self) -> str:
        return self.address

    # -- backup --------------------------------------------------------------------------------
    def backup(self, path: Path, passphrase: str, *, dev_mode: bool = False) -> None:
        """Writes an Ethereum V3 keystore (scrypt, 0600) that wallets can import."""
        check_passphrase(passphrase, dev_mode=dev_mode)
        write_private_file(path, Account.encrypt(self._account.key, passphrase, kdf="scrypt"))

    @classmethod
    def restore(cls, path: Path, passphrase: str) -> PatientIdentity:
        document = read_document(path)
        try:
            return cls(Account.from_key(Account.decrypt(document, passphrase)))
        except ValueError:
            raise KeystoreError("wrong passphrase, or not an Ethereum keystore") from None

    # -- consent signatures --------------------------------------------------------------------
    def grant_document(
        self,
        *,
        grantees: tuple[str, ...],
        categories: int,
        purposes: int,
        valid_from: int,
        valid_until: int,
        notice_version: int,
        notice_hash: bytes,
        care_from: int = 0,
        care_to: int = 0,
        nonce: int,
        deadline: int,
        chain_id: int,
        contract: str,
        patient: str | None = None,
    ) -> dict[str, Any]:
        """The EIP-712 document of a grant (show it to the patient before signing)."""
        message = ConsentGrant(
            patient=patient or self.address,
            grantees=tuple(grantees),
            categories=categories,
            purposes=purposes,
            valid_from=valid_from,
            valid_until=valid_until,
            care_from=care_from,
            care_to=care_to,
            notice_version=notice_version,
            notice_hash=notice_hash,
            nonce=nonce,
            deadline=deadline,
        )
        return message.document(chain_id=chain_id, contract=contract)

    def revocation_document(
        self, *, consent_id: int, nonce: int, deadline: int, chain_id: int, contract: str, patient: str | None = None
    ) -> dict[str, Any]:
        message = ConsentRevocation(
            patient=patient or self.address, consent_id=consent_id, nonce=nonce, deadline=deadline
        )
        return message.document(chain_id=chain_id, contract=contract)

    def delegation_document(
        self,
        *,
        delegate: str,
        scope: int,
        nonce: int,
        deadline: int,
        chain_id: int,
        contract: str,
        valid_until: int = 0,
        excluded_categories: int = 0,
    ) -> dict[str, Any]:
        message = DelegateChange(
            patient=self.address,
            delegate=delegate,
            scope=scope,
            valid_until=valid_until,
            excluded_categories=excluded_categories,
            nonce=nonce,
            deadline=deadline,
        )
        return message.document(chain_id=chain_id, contract=contract)

    def sign(self, document: dict[str, Any]) -> Signature:
        """Signs an EIP-712 document locally; returns ``(v, r, s)``."""
        return sign_typed(self._account, document)
