"""A patient's locally made EIP-712 signature is exactly what the ConsentRegistry accepts."""

from __future__ import annotations

from medledger_crypto import PatientIdentity

from tests.utils.actors import Chain


def test_patient_signed_grant_and_revocation_are_accepted_on_chain(chain: Chain) -> None:
    patient = PatientIdentity.create()
    terms = chain.terms(chain.actors.b.address)
    consents, relayer = chain.read.consents, chain.as_(chain.actors.a).consents
    common = {"chain_id": chain.backend.chain_id, "contract": chain.manifest.address("ConsentRegistry")}
    deadline = chain.now() + 600
    document = patient.grant_document(
        grantees=terms.grantees,
        notice_version=terms.notice_version,
        notice_hash=terms.notice_hash,
        categories=terms.categories,
        purposes=terms.purposes,
        valid_from=terms.valid_from,
        valid_until=terms.valid_until,
        nonce=consents.nonce(patient.address),
        deadline=deadline,
        **common,
    )
    receipt = relayer.grant_by_sig(patient.address, terms, deadline, patient.sign(document))
    consent_id = receipt.event("ConsentGranted").args["consentId"]
    assert consents.is_permitted(patient.address, chain.actors.b.address, 0, 0)
    revocation = patient.revocation_document(
        consent_id=consent_id, nonce=consents.nonce(patient.address), deadline=deadline, **common
    )
    relayer.revoke_by_sig(consent_id, deadline, patient.sign(revocation))
    assert not consents.is_permitted(patient.address, chain.actors.b.address, 0, 0)
