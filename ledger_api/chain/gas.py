"""Measures the gas of the consortium's hot transactions on a real EVM.

Used by ``make bench`` (figures ``gas.*``) and by a test that holds the budgets, since gas, unlike
time, is deterministic. Steady-state figures are measured on a patient's / member's second
operation (storage slots already warm in the sense of non-zero), first-time costs separately.
"""

from __future__ import annotations

import os

from eth_account import Account
from eth_account.signers.local import LocalAccount
from medledger_crypto import ConsentGrant, KeyRotation, sign_typed

from ledger_api.chain.backends import ChainBackend
from ledger_api.chain.commitments import new_salt, record_subject
from ledger_api.chain.deployment import Consortium, DeploymentManifest, deploy_consortium
from ledger_api.chain.ids import mint_record_id
from ledger_api.chain.transactions import TransactionSender
from ledger_api.chain.types import GenesisMember, GrantTerms, Receipt, Role

#: Goals from the foundation and consent issues (gas per transaction, batch: per entry): ``make bench`` judges
#: the figures against these.
GAS_GOALS = {
    "gas.consent_grant_relayed": 65_000,
    "gas.consent_grant_relayed_3_named": 90_000,
    "gas.record_hide": 35_000,
    "gas.consent_revoke": 40_000,
    "gas.record_anchor": 75_000,
    "gas.access_entry": 35_000,
    "gas.access_batch_256_per_entry": 300,
    #: a leaving member's handover, per record in a 100-record transaction (not an issue budget: ours)
    "gas.custody_transfer_100_per_record": 12_000,
}
#: What the tests hold, so no figure grows unnoticed: the goals themselves.
GAS_BUDGETS = dict(GAS_GOALS)


def measure_gas(backend: ChainBackend) -> dict[str, float]:
    """Deploys a fresh consortium on ``backend`` and returns the gas figures."""
    deployer, a, b, c, d, patient = (Account.create() for _ in range(6))
    for account in (deployer, a, b, patient):
        backend.fund(account.address, 10**20)
    genesis = [
        GenesisMember(account=m.address, role=Role.MEMBER, name=n, endpoint=f"https://{n}", hpke_public_key=bytes(32))
        for m, n in ((a, "a"), (b, "b"), (c, "c"), (d, "d"))
    ]
    manifest = deploy_consortium(TransactionSender(backend.w3, deployer), genesis)
    member = Consortium(backend.w3, manifest, TransactionSender(backend.w3, a))
    own = Consortium(backend.w3, manifest, TransactionSender(backend.w3, patient))
    now = int(backend.w3.eth.get_block("latest")["timestamp"])
    one = GrantTerms(
        grantees=(b.address,),
        categories=0b11,
        purposes=0b1,
        valid_from=now,
        valid_until=now + 86_400,
        notice_version=1,
        notice_hash=os.urandom(32),
    )
    three = one.model_copy(update={"grantees": (b.address, c.address, d.address)})

    def relayed_grant(terms: GrantTerms = one) -> int:
        nonce = member.consents.nonce(patient.address)
        message = ConsentGrant.of(patient.address, terms, nonce=nonce, deadline=now + 3600)
        document = message.document(chain_id=backend.chain_id, contract=manifest.address("ConsentRegistry"))
        return member.consents.grant_by_sig(patient.address, terms, now + 3600, sign_typed(patient, document)).gas_used

    figures: dict[str, float] = {}
    figures["gas.consent_grant_relayed_first"] = relayed_grant()
    figures["gas.consent_grant_relayed"] = relayed_grant()
    figures["gas.consent_grant_relayed_3_named"] = relayed_grant(three)
    figures["gas.consent_grant"] = own.consents.grant(patient.address, one).gas_used
    receipt = own.consents.grant(patient.address, one)
    consent_id = receipt.event("ConsentGranted").args["consentId"]
    figures["gas.consent_revoke"] = own.consents.revoke(consent_id).gas_used
    declared = member.consents.declare_break_glass(patient.address, os.urandom(32))
    figures["gas.break_glass_declare"] = declared.gas_used
    record_id = mint_record_id(a.address)
    subject = record_subject(record_id, patient.address, 1, new_salt())
    figures["gas.record_anchor"] = member.records.anchor_record(record_id, subject, os.urandom(32)).gas_used
    figures["gas.record_anchor_version"] = member.records.anchor_version(record_id, 2, os.urandom(32)).gas_used
    figures["gas.record_hide"] = member.records.set_hidden(record_id, True).gas_used
    member.trail.record_access(os.urandom(32), 1)
    figures["gas.access_entry"] = member.trail.record_access(os.urandom(32), 2).gas_used
    batch = member.trail.anchor_batch(os.urandom(32), 3, 258).gas_used
    figures["gas.access_batch_256"] = batch
    figures["gas.access_batch_256_per_entry"] = round(batch / 256, 1)
    handed = [mint_record_id(a.address) for _ in range(100)]
    for handed_id in handed:
        handed_subject = record_subject(handed_id, patient.address, 1, new_salt())
        member.records.anchor_record(handed_id, handed_subject, os.urandom(32))
    transfer = member.records.transfer_custody(handed, b.address).gas_used
    figures["gas.custody_transfer_100_per_record"] = round(transfer / 100, 1)
    figures.update(_succession_gas(backend, manifest, member, b, patient, now))
    return figures


def _succession_gas(
    backend: ChainBackend,
    manifest: DeploymentManifest,
    member: Consortium[Receipt],
    second: LocalAccount,
    patient: LocalAccount,
    now: int,
) -> dict[str, float]:
    """A planned key rotation relayed by a member (``gas.patient_succession``), then a recovery of the
    account: two members' approvals (the second starts the time lock) and its completion after it."""
    new_key, recovered_key = Account.create(), Account.create()
    nonce = member.consents.nonce(patient.address)
    rotation = KeyRotation(patient=patient.address, new_key=new_key.address, nonce=nonce, deadline=now + 3600)
    document = rotation.document(chain_id=backend.chain_id, contract=manifest.address("ConsentRegistry"))
    rotated = member.consents.rotate_key_by_sig(
        patient.address, new_key.address, now + 3600, sign_typed(patient, document)
    )
    other = Consortium(backend.w3, manifest, TransactionSender(backend.w3, second))
    first = member.consents.approve_recovery(patient.address, recovered_key.address)
    started = other.consents.approve_recovery(patient.address, recovered_key.address)
    _, delay = member.consents.recovery_policy()
    backend.increase_time(delay + 1)
    completed = member.consents.complete_recovery(patient.address)
    return {
        "gas.patient_succession": rotated.gas_used,
        "gas.patient_recovery_approval": first.gas_used,
        "gas.patient_recovery_approval_starting_lock": started.gas_used,
        "gas.patient_recovery_complete": completed.gas_used,
    }
