"""A patient's own copy of a record: sealed for a key only the reader holds, for the patient or their
delegate, and nobody else learns the record exists."""

from __future__ import annotations

import base64
import io

from medledger_crypto import HpkePrivateKey, HpkeSuite, RecordContext, WrapContext, decrypt_record, unwrap_data_key

from ledger_api.core import headers as header_names
from tests.api.conftest import World
from tests.utils.actors import views
from tests.utils.records import LAB_REPORT, upload


def _copy(world: World, reader, account, patient: str, record_id: str):  # type: ignore[no-untyped-def]
    with world.node.patient_client(account) as client:
        return client.get(
            f"/v1/patients/{patient}/records/{record_id}/content",
            headers={header_names.READER_KEY: base64.b64encode(reader.public_key().to_bytes()).decode()},
        )


def test_the_patient_and_a_delegate_open_their_copy_and_another_patient_finds_nothing(world: World) -> None:
    record_id = upload(world).json()["id"]
    reader = HpkePrivateKey.generate(HpkeSuite.X25519)
    world.chain_as(world.patient).consents.set_delegate(views(world.stranger.address))
    for account in (world.patient, world.stranger):  # the patient, then their guardian
        response = _copy(world, reader, account, world.patient.address, record_id)
        assert response.status_code == 200, response.text
        h = response.headers
        data_key = unwrap_data_key(
            base64.b64decode(h[header_names.WRAPPED_KEY]),
            reader,
            WrapContext(bytes.fromhex(record_id), 1, account.address),
        )
        out = io.BytesIO()
        context = RecordContext(bytes.fromhex(record_id), 1, h[header_names.SEALED_BY], h[header_names.PATIENT])
        decrypt_record(context, data_key, io.BytesIO(response.content), out)
        assert out.getvalue() == LAB_REPORT
    # the other patient: asking as themself finds no such record of theirs; asking as the patient is refused
    assert _copy(world, reader, world.other_patient, world.other_patient.address, record_id).status_code == 404
    assert _copy(world, reader, world.other_patient, world.patient.address, record_id).status_code == 403
    with world.node.member_client(world.a.account) as client:
        log = client.get(f"/v1/patients/{world.patient.address}/access-log").json()
    assert [(e["action"], e["requester"]) for e in log] == [
        ("self_access", world.patient.address),
        ("self_access", world.stranger.address),
    ]
