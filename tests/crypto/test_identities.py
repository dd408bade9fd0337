"""Member keystores, patient identities, passphrase policy, and secrets that never show."""

from __future__ import annotations

import copy
import json
import pickle
import stat
from pathlib import Path

import pytest
from eth_account import Account
from medledger_crypto import (
    DEV_SCRYPT,
    DataKey,
    HpkePrivateKey,
    HpkeSuite,
    KeystoreError,
    MemberIdentity,
    PatientIdentity,
    ScryptParams,
    WeakPassphrase,
    WrapContext,
    check_passphrase,
    load_passphrase,
    recover_typed,
    unwrap_data_key,
    wrap_data_key,
)

STRONG = "correct horse battery staple 42"
CONTEXT = WrapContext(record_id=b"\x09" * 32, version=1, recipient="0x" + "ee" * 20)


@pytest.fixture
def member() -> MemberIdentity:
    return MemberIdentity.generate()


class TestMemberKeystore:
    def test_save_and_load_round_trip(self, member: MemberIdentity, tmp_path: Path) -> None:
        path = tmp_path / "member.json"
        member.save(path, STRONG, params=DEV_SCRYPT)
        loaded = MemberIdentity.load(path, STRONG)
        assert loaded.address == member.address
        assert loaded.account.key == member.account.key
        assert loaded.hpke_public_key == member.hpke_public_key
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        document = json.loads(path.read_text())
        assert document["format"] == "medledger-keystore" and document["version"] == 1
        assert document["kdf"]["name"] == "scrypt" and document["cipher"]["name"] == "aes-256-gcm"
        assert member.account.key.hex() not in path.read_text()

    def test_production_parameters_are_memory_hard(self, member: MemberIdentity, tmp_path: Path) -> None:
        member.save(tmp_path / "k.json", STRONG)
        assert json.loads((tmp_path / "k.json").read_text())["kdf"]["n"] == 2**17
        with pytest.raises(ValueError):
            ScryptParams(n=2**10)

    def test_wrong_passphrase_and_tampering_are_refused(self, member: MemberIdentity, tmp_path: Path) -> None:
        path = tmp_path / "member.json"
        member.save(path, STRONG, params=DEV_SCRYPT)
        with pytest.raises(KeystoreError, match="wrong passphrase"):
            MemberIdentity.load(path, STRONG + "!")
        document = json.loads(path.read_text())
        document["address"] = Account.create().address  # swap the identity's label
        path.write_text(json.dumps(document))
        with pytest.raises(KeystoreError):
            MemberIdentity.load(path, STRONG)
        path.write_text("not json")
        with pytest.raises(KeystoreError, match="not JSON"):
            MemberIdentity.load(path, STRONG)
        with pytest.raises(KeystoreError, match="no keystore"):
            MemberIdentity.load(tmp_path / "missing.json", STRONG)

    def test_a_patient_backup_is_not_a_member_keystore(self, tmp_path: Path) -> None:
        PatientIdentity.create().backup(tmp_path / "p.json", STRONG)
        with pytest.raises(KeystoreError):
            MemberIdentity.load(tmp_path / "p.json", STRONG)

    def test_rotation_keeps_old_keys_for_old_records(self, member: MemberIdentity, tmp_path: Path) -> None:
        data_key = DataKey.generate()
        old_wrap = wrap_data_key(data_key, member.hpke_public_key, CONTEXT)
        old_id = member.hpke_key.key_id
        new_key = member.rotate_hpke(HpkeSuite.X25519)
        assert member.hpke_key is new_key and member.hpke_key.key_id != old_id
        path = tmp_path / "member.json"
        member.save(path, STRONG, params=DEV_SCRYPT)
        loaded = MemberIdentity.load(path, STRONG)
        assert set(loaded.hpke_keys()) == {old_id, new_key.key_id}
        assert loaded.hpke_key.key_id == new_key.key_id
        assert unwrap_data_key(old_wrap, loaded.hpke_keys(), CONTEXT) == data_key


class TestPassphrasePolicy:
    @pytest.mark.parametrize("weak", ["short", "aaaaaaaaaaaaaaaa", "password1234", "Medledger2026!"])
    def test_weak_passphrases_are_refused_outside_dev_mode(self, weak: str) -> None:
        with pytest.raises(WeakPassphrase):
            check_passphrase(weak, dev_mode=False)
        check_passphrase(weak, dev_mode=True)

    def test_empty_passphrase_is_refused_even_in_dev_mode(self, member: MemberIdentity, tmp_path: Path) -> None:
        with pytest.raises(WeakPassphrase):
            check_passphrase("", dev_mode=True)
        with pytest.raises(WeakPassphrase):
            member.save(tmp_path / "k.json", "", dev_mode=True, params=DEV_SCRYPT)
        with pytest.raises(WeakPassphrase):
            member.save(tmp_path / "k.json", "weak", params=DEV_SCRYPT)
        assert not (tmp_path / "k.json").exists()

    def test_passphrase_comes_from_a_file_or_the_environment(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("MEDLEDGER_KEYSTORE_PASSPHRASE", "from the environment")
        assert load_passphrase() == "from the environment"
        secret_file = tmp_path / "passphrase"
        secret_file.write_text("from a file\n")
        assert load_passphrase(file=secret_file) == "from a file"
        monkeypatch.delenv("MEDLEDGER_KEYSTORE_PASSPHRASE")
        assert load_passphrase() == ""
        with pytest.raises(KeystoreError, match="cannot read"):
            load_passphrase(file=tmp_path / "absent")


class TestPatientIdentity:
    def test_backup_is_a_standard_ethereum_keystore(self, tmp_path: Path) -> None:
        patient = PatientIdentity.create()
        path = tmp_path / "patient.json"
        patient.backup(path, STRONG)
        assert Account.from_key(Account.decrypt(json.loads(path.read_text()), STRONG)).address == patient.address
        assert PatientIdentity.restore(path, STRONG).address == patient.address
        with pytest.raises(KeystoreError):
            PatientIdentity.restore(path, "wrong " + STRONG)

    def test_signed_documents_recover_to_the_patient(self) -> None:
        patient = PatientIdentity.create()
        document = patient.grant_document(
            grantees=("0x" + "11" * 20, "0x" + "33" * 20),
            notice_version=1,
            notice_hash=b"\x44" * 32,
            care_from=20_000,
            care_to=20_030,
            categories=3,
            purposes=1,
            valid_from=1,
            valid_until=2,
            nonce=0,
            deadline=3,
            chain_id=5,
            contract="0x" + "22" * 20,
        )
        assert recover_typed(document, *patient.sign(document)) == patient.address
        revocation = patient.revocation_document(
            consent_id=7, nonce=1, deadline=3, chain_id=5, contract="0x" + "22" * 20
        )
        assert recover_typed(revocation, *patient.sign(revocation)) == patient.address


class TestSecretsNeverShow:
    def test_repr_shows_public_facts_only(self, member: MemberIdentity) -> None:
        patient = PatientIdentity.create()
        data_key = DataKey.generate()
        hpke_key = HpkePrivateKey.generate()
        texts = [repr(member), str(member), repr(patient), repr(data_key), repr(hpke_key)]
        secrets = [
            member.account.key.hex().removeprefix("0x"),
            member.hpke_key.private_bytes().hex()[:16],
            patient.account.key.hex().removeprefix("0x"),
            data_key._material().hex(),
            hpke_key.private_bytes().hex()[:16],
        ]
        for text in texts:
            for secret in secrets:
                assert secret not in text
        assert member.address in repr(member) and patient.address in repr(patient)

    @pytest.mark.parametrize(
        "make", [MemberIdentity.generate, PatientIdentity.create, DataKey.generate, HpkePrivateKey.generate]
    )
    def test_key_objects_refuse_pickling_and_copying(self, make) -> None:
        obj = make()
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(obj)
        with pytest.raises(TypeError):
            copy.copy(obj)
        with pytest.raises(TypeError):
            copy.deepcopy(obj)
