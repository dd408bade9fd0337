"""What API tests do again and again: upload a record as member A, grant a consent on chain as the
patient, fetch a record as a member, and open a release as its reader would."""

from __future__ import annotations

import io

import httpx
from eth_account.signers.local import LocalAccount

from ledger_api.consents.wire import terms_under_notice
from ledger_api.core import headers as header_names
from ledger_api.core import releases
from ledger_api.vocabulary import Category, Purpose
from tests.api.conftest import World
from tests.utils.nodes import RunningNode

LAB_REPORT = b"HbA1c 6.1 %; fasting glucose 5.9 mmol/L" * 50
#: upload parameters of a record whose retention ended long ago (an outpatient visit in 2000): it may be erased
PAST_RETENTION = {"record_kind": "outpatient", "last_encounter": "2000-01-03"}


def upload(
    world: World,
    body: bytes = LAB_REPORT,
    category: Category = Category.LABS,
    patient: str | None = None,
    **params: str,
):
    """Member A uploads a record of the world's patient (an Observation unless told otherwise); ``params``:
    more upload parameters (``PAST_RETENTION`` for one that may be erased)."""
    return upload_to(
        world.node, world.a.account, patient or world.patient.address, body, category, "Observation", **params
    )


def upload_to(
    node: RunningNode,
    member: LocalAccount,
    patient: str,
    body: bytes,
    category: Category,
    fhir_resource_type: str | None = None,
    **extra: str,
) -> httpx.Response:
    """``member`` uploads ``body`` as a record of ``patient`` to ``node``; the response as it came."""
    params = {"patient": patient, "category": category.name.lower(), "media_type": "text/plain", **extra}
    if fhir_resource_type is not None:
        params["fhir_resource_type"] = fhir_resource_type
    with node.member_client(member) as client:
        return client.post(
            "/v1/records", content=body, headers={"content-type": "application/octet-stream"}, params=params
        )


def grant(
    world: World, grantee: str | tuple[str, ...], categories: int = 0b11, purposes: int = 0b1, hours: int = 24
) -> int:
    """The patient's own grant on chain naming ``grantee`` (one member, or several)."""
    now = int(world.backend.w3.eth.get_block("latest")["timestamp"])
    terms = terms_under_notice(
        grantees=(grantee,) if isinstance(grantee, str) else grantee,
        categories=categories,
        purposes=purposes,
        valid_from=now - 1,
        valid_until=now + hours * 3600,
    )
    receipt = world.chain_as(world.patient).consents.grant(world.patient.address, terms)
    return receipt.event("ConsentGranted").args["consentId"]


def fetch(world: World, member, record_id: str, purpose: Purpose = Purpose.TREATMENT):
    with world.node.member_client(member.account) as client:
        return client.get(
            f"/v1/records/{record_id}/content", params={"purpose": purpose.name.lower(), "clinician": "dr-wang-7f3a"}
        )


def open_release(response, reader) -> bytes:
    """The plaintext of a release, opened as its reader would; its ciphertext matches the hash it names."""
    out = io.BytesIO()
    result = releases.open_release(response.headers, reader, io.BytesIO(response.content), out)
    assert result.content_hash.hex() == response.headers[header_names.CONTENT_HASH]
    return out.getvalue()
