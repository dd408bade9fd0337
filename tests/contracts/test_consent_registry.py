"""ConsentRegistry: patients grant and revoke, directly or by EIP-712 signature; break-glass."""

from __future__ import annotations

import pytest
from eth_account import Account

from ledger_api.chain.types import ConsentState, GrantTerms, Review, Role
from ledger_api.vocabulary import Category, Purpose, bitset
from tests.utils.actors import X25519_KEY, Chain, manages, removal, reverts, views

LABS, IMAGING, GENOMICS = int(Category.LABS), int(Category.IMAGING), int(Category.GENOMICS)
TREATMENT, RESEARCH = int(Purpose.TREATMENT), int(Purpose.RESEARCH)


def _consent_id(receipt) -> int:
    return receipt.event("ConsentGranted").args["consentId"]


class TestDirectGrants:
    def test_patient_grant_permits_exactly_its_scope(self, chain: Chain) -> None:
        p, b = chain.actors.patient, chain.actors.b.address
        terms = chain.terms(
            b, categories=bitset([Category.LABS, Category.IMAGING]), purposes=bitset([Purpose.TREATMENT])
        )
        receipt = chain.as_(p).consents.grant(p.address, terms)
        event = receipt.event("ConsentGranted").args
        assert (event["patient"], event["signer"]) == (p.address, p.address)
        # the event states every term the patient signed: the members named (by index), the rest in one word
        assert chain.read.consents.granted_terms(event) == terms
        assert event["recipients"] == 1 << chain.read.registry.member(b).index
        cid = event["consentId"]
        assert cid >> 96 == int(p.address, 16)
        consents = chain.read.consents
        assert consents.is_permitted(p.address, b, LABS, TREATMENT)
        assert consents.is_permitted(p.address, b, IMAGING, TREATMENT)
        assert consents.permitting_consent(p.address, b, LABS, TREATMENT) == cid
        assert not consents.is_permitted(p.address, b, GENOMICS, TREATMENT)  # other category
        assert not consents.is_permitted(p.address, b, LABS, RESEARCH)  # other purpose
        assert not consents.is_permitted(p.address, chain.actors.c.address, LABS, TREATMENT)  # other member
        assert not consents.is_permitted(chain.actors.stranger.address, b, LABS, TREATMENT)  # other patient
        assert consents.permitting_consent(p.address, b, GENOMICS, TREATMENT) is None
        stored = consents.consent(cid)
        assert (stored.grantees, stored.categories, stored.purposes, stored.state) == (
            (b,),
            terms.categories,
            terms.purposes,
            ConsentState.ACTIVE,
        )
        assert consents.consent_count(p.address) == 1

    def test_a_grant_naming_every_member_covers_exactly_those_named(self, chain: Chain) -> None:
        p = chain.actors.patient
        every = (chain.actors.a.address, chain.actors.b.address, chain.actors.c.address)
        cid = _consent_id(chain.as_(p).consents.grant(p.address, chain.terms(every)))
        consents = chain.read.consents
        for member in (chain.actors.a, chain.actors.b, chain.actors.c):
            assert consents.is_permitted(p.address, member.address, LABS, TREATMENT)
        assert not consents.is_permitted(p.address, chain.actors.auditor.address, LABS, TREATMENT)
        assert not consents.is_permitted(p.address, chain.actors.stranger.address, LABS, TREATMENT)
        assert set(consents.consent(cid).grantees) == set(every)

    def test_a_member_that_joins_later_is_not_covered_until_named_in_a_new_grant(self, chain: Chain) -> None:
        p, candidate = chain.actors.patient, chain.actors.candidate
        every_now = (chain.actors.a.address, chain.actors.b.address, chain.actors.c.address)
        chain.as_(p).consents.grant(p.address, chain.terms(every_now))
        proposed = chain.as_(chain.actors.a).registry.propose_add_member(
            candidate.address, Role.MEMBER, "Dapeng Maternity Clinic", "https://d.example", X25519_KEY
        )
        proposal = proposed.event("ProposalCreated").args["proposalId"]
        chain.as_(chain.actors.b).registry.vote(proposal, True)
        chain.as_(chain.actors.c).registry.execute(proposal)
        consents = chain.read.consents
        assert chain.read.registry.is_active_member(candidate.address)
        assert not consents.is_permitted(p.address, candidate.address, LABS, TREATMENT)
        assert consents.is_permitted(p.address, chain.actors.a.address, LABS, TREATMENT)
        chain.as_(p).consents.grant(p.address, chain.terms((*every_now, candidate.address)))
        assert consents.is_permitted(p.address, candidate.address, LABS, TREATMENT)

    def test_a_grant_names_only_active_members_each_once(self, chain: Chain) -> None:
        p, b = chain.actors.patient, chain.actors.b.address
        grant = chain.as_(p).consents.grant
        for outsider in (chain.actors.stranger.address, chain.actors.auditor.address):
            with reverts("ConsentRegistryRecipientNotMember", grantee=outsider):
                grant(p.address, chain.terms((b, outsider)))
        with reverts("ConsentRegistryDuplicateRecipient", grantee=b):
            grant(p.address, chain.terms((b, chain.actors.c.address, b)))
        with reverts("ConsentRegistryNoRecipients"):
            grant(p.address, chain.terms(()))

    def test_a_grant_signs_the_privacy_notice_shown(self, chain: Chain) -> None:
        p, b = chain.actors.patient, chain.actors.b.address
        grant = chain.as_(p).consents.grant
        with reverts("ConsentRegistryInvalidNotice", noticeVersion=0):
            grant(p.address, chain.terms(b).model_copy(update={"notice_version": 0}))
        with reverts("ConsentRegistryInvalidNotice", noticeHash=b"\0" * 32):
            grant(p.address, chain.terms(b).model_copy(update={"notice_hash": b"\0" * 32}))

    def test_a_grant_carries_its_terms_in_one_word_with_no_stray_bits(self, chain: Chain) -> None:
        p, b = chain.actors.patient, chain.actors.b.address
        terms = chain.terms(b, care_from=20_400, care_to=20_410)
        word = terms.packed()
        assert GrantTerms.unpacked(terms.grantees, word, terms.notice_hash) == terms
        consents = chain.as_(p).consents
        for stray in (1 << 24, 1 << 31, 1 << 144, 1 << 255):  # the state's byte, and above the notice version
            with reverts("ConsentRegistryInvalidTerms", terms=word | stray):
                consents._write("grant", p.address, [b], word | stray, terms.notice_hash)
        with pytest.raises(ValueError, match="categories"):
            terms.model_copy(update={"categories": 1 << 16}).packed()
        stored = chain.read.consents.consent(
            _consent_id(consents._write("grant", p.address, [b], word, terms.notice_hash))
        )
        assert (stored.state, stored.care_from, stored.care_to) == (ConsentState.ACTIVE, 20_400, 20_410)

    def test_a_grant_limited_to_days_of_care_covers_records_of_those_days_only(self, chain: Chain) -> None:
        p, b = chain.actors.patient, chain.actors.b.address
        episode = chain.terms(b, care_from=20_400, care_to=20_410)
        cid = _consent_id(chain.as_(p).consents.grant(p.address, episode))
        consents = chain.read.consents
        for day in (20_400, 20_405, 20_410):
            assert consents.permitting_consent(p.address, b, LABS, TREATMENT, day) == cid
        for day in (0, 20_399, 20_411):  # before, after, and a record whose day is not stated
            assert consents.permitting_consent(p.address, b, LABS, TREATMENT, day) is None
        stored = consents.consent(cid)
        assert (stored.care_from, stored.care_to) == (20_400, 20_410)
        open_start = _consent_id(chain.as_(p).consents.grant(p.address, chain.terms(b, care_to=20_000)))
        assert consents.permitting_consent(p.address, b, LABS, TREATMENT, 1) == open_start
        assert consents.permitting_consent(p.address, b, LABS, TREATMENT, 20_001) is None
        with reverts("ConsentRegistryInvalidCareRange", careFrom=20_411, careTo=20_410):
            chain.as_(p).consents.grant(p.address, chain.terms(b, care_from=20_411, care_to=20_410))

    def test_validity_window_is_honoured(self, chain: Chain) -> None:
        p, b = chain.actors.patient, chain.actors.b.address
        now = chain.now()
        later = chain.terms(b).model_copy(update={"valid_from": now + 3600, "valid_until": now + 7200})
        chain.as_(p).consents.grant(p.address, later)
        assert not chain.read.consents.is_permitted(p.address, b, LABS, TREATMENT)  # not yet
        chain.backend.increase_time(3600)
        assert chain.read.consents.is_permitted(p.address, b, LABS, TREATMENT)
        chain.backend.increase_time(3601)
        assert not chain.read.consents.is_permitted(p.address, b, LABS, TREATMENT)  # expired

    def test_out_of_range_codes_are_never_permitted(self, chain: Chain) -> None:
        p, b = chain.actors.patient, chain.actors.b.address
        chain.as_(p).consents.grant(p.address, chain.terms(b, categories=0xFFFF, purposes=0xFF))
        assert chain.read.consents.is_permitted(p.address, b, 15, 7)
        assert not chain.read.consents.is_permitted(p.address, b, 16, 0)
        assert not chain.read.consents.is_permitted(p.address, b, 0, 8)

    def test_grant_is_refused_to_anyone_but_patient_or_delegate(self, chain: Chain) -> None:
        p, b = chain.actors.patient, chain.actors.b
        with reverts("ConsentRegistryNotPatientOrDelegate", patient=p.address, caller=b.address):
            chain.as_(b).consents.grant(p.address, chain.terms(b.address))

    def test_empty_scope_and_bad_windows_are_refused(self, chain: Chain) -> None:
        p, b = chain.actors.patient, chain.actors.b.address
        grant = chain.as_(p).consents.grant
        now = chain.now()
        with reverts("ConsentRegistryEmptyScope", categories=0, purposes=1):
            grant(p.address, chain.terms(b, categories=0))
        with reverts("ConsentRegistryEmptyScope", categories=1, purposes=0):
            grant(p.address, chain.terms(b, categories=1, purposes=0))
        backwards = chain.terms(b).model_copy(update={"valid_from": now + 10, "valid_until": now + 10})
        with reverts("ConsentRegistryInvalidWindow", validFrom=now + 10, validUntil=now + 10):
            grant(p.address, backwards)
        past = chain.terms(b).model_copy(update={"valid_from": now - 100, "valid_until": now - 1})
        with reverts("ConsentRegistryInvalidWindow"):
            grant(p.address, past)
        zero = "0x" + "00" * 20  # nobody is the zero patient or its delegate
        with reverts("ConsentRegistryNotPatientOrDelegate", patient=zero, caller=p.address):
            grant(zero, chain.terms(b))


class TestRevocation:
    def test_revocation_takes_effect_in_its_block(self, chain: Chain) -> None:
        p, b = chain.actors.patient, chain.actors.b.address
        cid = _consent_id(chain.as_(p).consents.grant(p.address, chain.terms(b)))
        assert chain.read.consents.is_permitted(p.address, b, LABS, TREATMENT)
        receipt = chain.as_(p).consents.revoke(cid)
        assert receipt.event("ConsentRevoked").args == {"consentId": cid, "patient": p.address, "signer": p.address}
        assert not chain.read.consents.is_permitted(p.address, b, LABS, TREATMENT)
        assert chain.read.consents.consent(cid).state == ConsentState.REVOKED
        with reverts("ConsentRegistryAlreadyRevoked", consentId=cid):
            chain.as_(p).consents.revoke(cid)

    def test_another_consent_still_permits_after_one_is_revoked(self, chain: Chain) -> None:
        p, b = chain.actors.patient, chain.actors.b.address
        first = _consent_id(chain.as_(p).consents.grant(p.address, chain.terms(b)))
        second = _consent_id(
            chain.as_(p).consents.grant(p.address, chain.terms((chain.actors.a.address, b, chain.actors.c.address)))
        )
        chain.as_(p).consents.revoke(first)
        assert chain.read.consents.permitting_consent(p.address, b, LABS, TREATMENT) == second

    def test_only_patient_or_delegate_revokes_and_only_known_consents(self, chain: Chain) -> None:
        p, b = chain.actors.patient, chain.actors.b
        cid = _consent_id(chain.as_(p).consents.grant(p.address, chain.terms(b.address)))
        with reverts("ConsentRegistryNotPatientOrDelegate", patient=p.address, caller=b.address):
            chain.as_(b).consents.revoke(cid)
        with reverts("ConsentRegistryUnknownConsent", consentId=cid + 5):
            chain.as_(p).consents.revoke(cid + 5)
        with reverts("ConsentRegistryUnknownConsent", consentId=cid + 5):
            chain.read.consents.consent(cid + 5)


class TestDelegates:
    def test_a_managing_delegate_grants_and_revokes_for_the_patient(self, chain: Chain) -> None:
        p, d, b = chain.actors.patient, chain.actors.delegate, chain.actors.b.address
        receipt = chain.as_(p).consents.set_delegate(manages(d.address))
        assert receipt.event("DelegateChanged").args == {
            "patient": p.address,
            "delegate": d.address,
            "scope": 2,
            "validUntil": 0,
            "excludedCategories": 0,
        }
        assert chain.read.consents.is_delegate(p.address, d.address)
        assert chain.read.consents.delegation(p.address, d.address) == manages(d.address)
        cid = _consent_id(chain.as_(d).consents.grant(p.address, chain.terms(b)))
        assert chain.read.consents.consent(cid).patient == p.address
        assert chain.read.consents.is_permitted(p.address, b, LABS, TREATMENT)
        chain.as_(d).consents.revoke(cid)
        assert not chain.read.consents.is_permitted(p.address, b, LABS, TREATMENT)

    def test_a_viewing_delegate_is_a_delegate_but_decides_nothing(self, chain: Chain) -> None:
        p, d, b = chain.actors.patient, chain.actors.delegate, chain.actors.b.address
        chain.as_(p).consents.set_delegate(views(d.address))
        assert chain.read.consents.is_delegate(p.address, d.address)
        with reverts("ConsentRegistryNotPatientOrDelegate", patient=p.address, caller=d.address):
            chain.as_(d).consents.grant(p.address, chain.terms(b))
        cid = _consent_id(chain.as_(p).consents.grant(p.address, chain.terms(b)))
        with reverts("ConsentRegistryNotPatientOrDelegate", patient=p.address, caller=d.address):
            chain.as_(d).consents.revoke(cid)
        with reverts("ConsentRegistryNotPatientOrDelegate", patient=p.address, caller=d.address):
            chain.as_(d).consents.restrict_sharing(p.address, True)
        terms = chain.terms(b)
        deadline, sig = chain.sign_grant(d, p.address, terms)
        with reverts("ConsentRegistryNotPatientOrDelegate", patient=p.address, caller=d.address):
            chain.as_(chain.actors.a).consents.grant_by_sig(p.address, terms, deadline, sig)

    def test_a_delegation_ends_at_its_end_date(self, chain: Chain) -> None:
        p, d, b = chain.actors.patient, chain.actors.delegate, chain.actors.b.address
        end = chain.now() + 3600
        chain.as_(p).consents.set_delegate(manages(d.address, valid_until=end))
        chain.as_(d).consents.grant(p.address, chain.terms(b))
        chain.backend.increase_time(3601)
        assert not chain.read.consents.is_delegate(p.address, d.address)
        assert chain.read.consents.delegation(p.address, d.address) is None  # as stored, but ended
        with reverts("ConsentRegistryNotPatientOrDelegate", patient=p.address, caller=d.address):
            chain.as_(d).consents.grant(p.address, chain.terms(b))

    def test_a_delegate_decides_nothing_on_the_categories_kept_from_them(self, chain: Chain) -> None:
        p, d, b = chain.actors.patient, chain.actors.delegate, chain.actors.b.address
        mental = bitset([Category.MENTAL_HEALTH])
        chain.as_(p).consents.set_delegate(manages(d.address, excluded_categories=mental))
        both = chain.terms(b, categories=bitset([Category.LABS, Category.MENTAL_HEALTH]))
        with reverts("ConsentRegistryDelegateExcluded", delegate=d.address, categories=mental):
            chain.as_(d).consents.grant(p.address, both)
        by_patient = _consent_id(chain.as_(p).consents.grant(p.address, both))
        with reverts("ConsentRegistryDelegateExcluded", delegate=d.address, categories=mental):
            chain.as_(d).consents.revoke(by_patient)
        deadline, sig = chain.sign_revocation(d, by_patient, p.address)
        with reverts("ConsentRegistryDelegateExcluded", delegate=d.address, categories=mental):
            chain.as_(chain.actors.a).consents.revoke_by_sig(by_patient, deadline, sig)
        labs_only = _consent_id(chain.as_(d).consents.grant(p.address, chain.terms(b)))  # labs: theirs to decide
        chain.as_(d).consents.revoke(labs_only)

    def test_the_patient_edits_a_delegation_and_removes_it(self, chain: Chain) -> None:
        p, d = chain.actors.patient, chain.actors.delegate
        chain.as_(p).consents.set_delegate(manages(d.address))
        chain.as_(p).consents.set_delegate(views(d.address, excluded_categories=1))
        assert chain.read.consents.delegation(p.address, d.address) == views(d.address, excluded_categories=1)
        chain.as_(p).consents.set_delegate(removal(d.address))
        assert not chain.read.consents.is_delegate(p.address, d.address)
        with reverts("ConsentRegistryNotPatientOrDelegate", patient=p.address, caller=d.address):
            chain.as_(d).consents.grant(p.address, chain.terms(chain.actors.b.address))

    def test_invalid_or_no_op_delegate_changes_are_refused(self, chain: Chain) -> None:
        p, d = chain.actors.patient, chain.actors.delegate
        with reverts("ConsentRegistryInvalidDelegate", delegate=p.address):
            chain.as_(p).consents.set_delegate(manages(p.address))
        with reverts("ConsentRegistryInvalidDelegate"):
            chain.as_(p).consents.set_delegate(manages("0x" + "00" * 20))
        with reverts("ConsentRegistryDelegateUnchanged", patient=p.address, delegate=d.address):
            chain.as_(p).consents.set_delegate(removal(d.address))
        past = chain.now() - 1
        with reverts("ConsentRegistryInvalidDelegation", scope=2, validUntil=past, excludedCategories=0):
            chain.as_(p).consents.set_delegate(manages(d.address, valid_until=past))
        removal_with_terms = removal(d.address).model_copy(update={"excluded_categories": 4})
        with reverts("ConsentRegistryInvalidDelegation", scope=0, validUntil=0, excludedCategories=4):
            chain.as_(p).consents.set_delegate(removal_with_terms)
        unknown_scope = manages(d.address).model_copy(update={"scope": 3})
        with reverts("ConsentRegistryInvalidDelegation", scope=3):
            chain.as_(p).consents.set_delegate(unknown_scope)
        chain.as_(p).consents.set_delegate(views(d.address))
        with reverts("ConsentRegistryDelegateUnchanged", patient=p.address, delegate=d.address):
            chain.as_(p).consents.set_delegate(views(d.address))

    def test_delegation_by_patient_signature_relayed_by_a_member(self, chain: Chain) -> None:
        p, d = chain.actors.patient, chain.actors.delegate
        terms = views(d.address, valid_until=chain.now() + 86400, excluded_categories=2)
        deadline, sig = chain.sign_delegation(p, p.address, terms)
        chain.as_(chain.actors.a).consents.set_delegate_by_sig(p.address, terms, deadline, sig)
        assert chain.read.consents.delegation(p.address, d.address) == terms
        assert chain.read.consents.nonce(p.address) == 1
        # the signature covers the terms: the same signature over other terms recovers someone else
        deadline, sig = chain.sign_delegation(p, p.address, manages(d.address))
        with reverts("ConsentRegistryNotPatient", patient=p.address):
            chain.as_(chain.actors.a).consents.set_delegate_by_sig(
                p.address, manages(d.address, excluded_categories=0xFFFF), deadline, sig
            )
        # a delegate cannot appoint another delegate
        stranger = manages(chain.actors.stranger.address)
        deadline, sig = chain.sign_delegation(d, p.address, stranger)
        with reverts("ConsentRegistryNotPatient", patient=p.address, caller=d.address):
            chain.as_(chain.actors.a).consents.set_delegate_by_sig(p.address, stranger, deadline, sig)


class TestRelayedBySignature:
    def test_member_relays_a_patient_signed_grant_and_revocation(self, chain: Chain) -> None:
        p, a, b = chain.actors.patient, chain.actors.a, chain.actors.b.address
        terms = chain.terms(b)
        deadline, sig = chain.sign_grant(p, p.address, terms)
        receipt = chain.as_(a).consents.grant_by_sig(p.address, terms, deadline, sig)
        assert receipt.event("ConsentGranted").args["signer"] == p.address
        cid = _consent_id(receipt)
        assert chain.read.consents.is_permitted(p.address, b, LABS, TREATMENT)
        assert chain.read.consents.nonce(p.address) == 1
        deadline, sig = chain.sign_revocation(p, cid, p.address)
        receipt = chain.as_(a).consents.revoke_by_sig(cid, deadline, sig)
        assert receipt.event("ConsentRevoked").args["signer"] == p.address
        assert not chain.read.consents.is_permitted(p.address, b, LABS, TREATMENT)
        assert chain.read.consents.nonce(p.address) == 2

    def test_delegate_signature_is_accepted_and_recorded(self, chain: Chain) -> None:
        p, d = chain.actors.patient, chain.actors.delegate
        chain.as_(p).consents.set_delegate(manages(d.address))
        terms = chain.terms(chain.actors.b.address)
        deadline, sig = chain.sign_grant(d, p.address, terms)
        receipt = chain.as_(chain.actors.a).consents.grant_by_sig(p.address, terms, deadline, sig)
        assert receipt.event("ConsentGranted").args["signer"] == d.address

    def test_signature_by_a_stranger_is_refused(self, chain: Chain) -> None:
        p, s = chain.actors.patient, chain.actors.stranger
        terms = chain.terms(chain.actors.b.address)
        deadline, sig = chain.sign_grant(s, p.address, terms)
        with reverts("ConsentRegistryNotPatientOrDelegate", patient=p.address, caller=s.address):
            chain.as_(chain.actors.a).consents.grant_by_sig(p.address, terms, deadline, sig)

    def test_signature_for_another_chain_id_is_refused(self, chain: Chain) -> None:
        self._assert_foreign_signature_refused(chain, chain_id=chain.backend.chain_id + 1)

    def test_signature_for_another_contract_is_refused(self, chain: Chain) -> None:
        self._assert_foreign_signature_refused(chain, contract=chain.manifest.address("RecordRegistry"))

    def _assert_foreign_signature_refused(self, chain: Chain, **domain: object) -> None:
        p = chain.actors.patient
        terms = chain.terms(chain.actors.b.address)
        deadline, sig = chain.sign_grant(p, p.address, terms, **domain)  # type: ignore[arg-type]
        # recovery yields some unrelated address: neither patient nor delegate
        with reverts("ConsentRegistryNotPatientOrDelegate", patient=p.address):
            chain.as_(chain.actors.a).consents.grant_by_sig(p.address, terms, deadline, sig)

    def test_used_nonce_cannot_be_replayed(self, chain: Chain) -> None:
        p = chain.actors.patient
        terms = chain.terms(chain.actors.b.address)
        deadline, sig = chain.sign_grant(p, p.address, terms)
        relayer = chain.as_(chain.actors.a).consents
        relayer.grant_by_sig(p.address, terms, deadline, sig)
        with reverts("ConsentRegistryNotPatientOrDelegate", patient=p.address):
            relayer.grant_by_sig(p.address, terms, deadline, sig)
        assert chain.read.consents.consent_count(p.address) == 1

    def test_future_nonce_is_refused(self, chain: Chain) -> None:
        p = chain.actors.patient
        terms = chain.terms(chain.actors.b.address)
        deadline, sig = chain.sign_grant(p, p.address, terms, nonce=5)
        with reverts("ConsentRegistryNotPatientOrDelegate"):
            chain.as_(chain.actors.a).consents.grant_by_sig(p.address, terms, deadline, sig)

    def test_passed_deadline_is_refused(self, chain: Chain) -> None:
        p = chain.actors.patient
        terms = chain.terms(chain.actors.b.address)
        deadline = chain.now() + 60
        _, sig = chain.sign_grant(p, p.address, terms, deadline=deadline)
        chain.backend.increase_time(120)
        with reverts("ConsentRegistryExpiredSignature", deadline=deadline):
            chain.as_(chain.actors.a).consents.grant_by_sig(p.address, terms, deadline, sig)
        cid = _consent_id(chain.as_(p).consents.grant(p.address, chain.terms(chain.actors.b.address)))
        deadline = chain.now() - 1
        _, sig = chain.sign_revocation(p, cid, p.address, deadline=deadline)
        with reverts("ConsentRegistryExpiredSignature", deadline=deadline):
            chain.as_(chain.actors.a).consents.revoke_by_sig(cid, deadline, sig)

    def test_tampered_terms_do_not_match_the_signature(self, chain: Chain) -> None:
        p = chain.actors.patient
        terms = chain.terms(chain.actors.b.address, categories=bitset([Category.LABS]))
        deadline, sig = chain.sign_grant(p, p.address, terms)
        widened = terms.model_copy(update={"categories": 0xFFFF})
        with reverts("ConsentRegistryNotPatientOrDelegate"):
            chain.as_(chain.actors.a).consents.grant_by_sig(p.address, widened, deadline, sig)

    def test_malformed_signatures_are_refused(self, chain: Chain) -> None:
        p = chain.actors.patient
        terms = chain.terms(chain.actors.b.address)
        deadline, (v, r, s) = chain.sign_grant(p, p.address, terms)
        relayer = chain.as_(chain.actors.a).consents
        order = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
        malleable_twin = (55 - v, r, (order - int.from_bytes(s, "big")).to_bytes(32, "big"))  # same signer, high s
        for bad in ((0, r, s), (29, r, s), malleable_twin, (v, b"\x00" * 32, s)):
            with reverts("ConsentRegistryInvalidSignature"):
                relayer.grant_by_sig(p.address, terms, deadline, bad)
        flipped_v = (55 - v, r, s)  # recovers some other account
        with reverts("ConsentRegistryNotPatientOrDelegate", patient=p.address):
            relayer.grant_by_sig(p.address, terms, deadline, flipped_v)

    def test_only_active_members_may_relay(self, chain: Chain) -> None:
        p = chain.actors.patient
        terms = chain.terms(chain.actors.b.address)
        deadline, sig = chain.sign_grant(p, p.address, terms)
        for relayer in (chain.actors.auditor, chain.actors.stranger, p):
            with reverts("ConsentRegistryNotActiveMember", account=relayer.address):
                chain.as_(relayer).consents.grant_by_sig(p.address, terms, deadline, sig)

    def test_contract_domain_matches_eth_account_typed_data(self, chain: Chain) -> None:
        from eth_account.messages import encode_typed_data
        from medledger_crypto import ConsentGrant

        terms = chain.terms(chain.actors.b.address)
        message = ConsentGrant.of(chain.actors.patient.address, terms, nonce=0, deadline=1)
        doc = message.document(chain_id=chain.backend.chain_id, contract=chain.manifest.address("ConsentRegistry"))
        assert encode_typed_data(full_message=doc).header == chain.read.consents.domain_separator()


class TestBreakGlass:
    def test_break_glass_grants_time_limited_access_flagged_for_review(self, chain: Chain) -> None:
        p, c = chain.actors.patient, chain.actors.c
        justification = b"\x42" * 32
        receipt = chain.as_(c).consents.declare_break_glass(p.address, justification)
        event = receipt.event("BreakGlassDeclared").args
        bg_id = event["breakGlassId"]
        # who, for whom, until when, and a commitment: the reason and justification stay with the member
        assert set(event) == {"breakGlassId", "patient", "member", "justificationHash", "expiresAt"}
        assert (event["patient"], event["member"], event["justificationHash"]) == (p.address, c.address, justification)
        consents = chain.read.consents
        assert consents.emergency_access(p.address, c.address) == bg_id
        assert consents.emergency_access(p.address, chain.actors.b.address) is None
        declared = consents.break_glass(bg_id)
        assert declared.review == Review.PENDING and declared.justification_hash == justification
        assert declared.expires_at - declared.declared_at == consents.break_glass_duration()
        assert consents.break_glass_count() == 1
        # break-glass is not consent
        assert not consents.is_permitted(p.address, c.address, LABS, TREATMENT)
        chain.backend.increase_time(consents.break_glass_duration())
        assert consents.emergency_access(p.address, c.address) is None

    def test_auditor_reviews_each_declaration_once(self, chain: Chain) -> None:
        p = chain.actors.patient
        bg_id = (
            chain.as_(chain.actors.c)
            .consents.declare_break_glass(p.address, b"\x01" * 32)
            .event("BreakGlassDeclared")
            .args["breakGlassId"]
        )
        with reverts("ConsentRegistryNotActiveAuditor", account=chain.actors.a.address):
            chain.as_(chain.actors.a).consents.review_break_glass(bg_id, True, b"\x02" * 32)
        receipt = chain.as_(chain.actors.auditor).consents.review_break_glass(bg_id, False, b"\x02" * 32)
        assert receipt.event("BreakGlassReviewed").args["review"] == int(Review.NOT_JUSTIFIED)
        assert chain.read.consents.break_glass(bg_id).review == Review.NOT_JUSTIFIED
        assert chain.read.consents.break_glass(bg_id).review_reason_hash == b"\x02" * 32
        with reverts("ConsentRegistryAlreadyReviewed", breakGlassId=bg_id):
            chain.as_(chain.actors.auditor).consents.review_break_glass(bg_id, True, b"\x02" * 32)
        with reverts("ConsentRegistryUnknownBreakGlass", breakGlassId=0):
            chain.read.consents.break_glass(0)
        with reverts("ConsentRegistryUnknownBreakGlass", breakGlassId=9):
            chain.as_(chain.actors.auditor).consents.review_break_glass(9, True, b"\x02" * 32)

    def test_a_not_justified_review_ends_the_access_and_blocks_the_member_for_that_patient(self, chain: Chain) -> None:
        p, c, auditor = chain.actors.patient, chain.actors.c, chain.actors.auditor
        other = chain.actors.delegate.address
        bg_id = (
            chain.as_(c)
            .consents.declare_break_glass(p.address, b"\x01" * 32)
            .event("BreakGlassDeclared")
            .args["breakGlassId"]
        )
        assert chain.read.consents.emergency_access(p.address, c.address) == bg_id
        receipt = chain.as_(auditor).consents.review_break_glass(bg_id, False, b"\x02" * 32)
        assert receipt.event("BreakGlassBlocked").args == {
            "patient": p.address,
            "member": c.address,
            "breakGlassId": bg_id,
        }
        assert chain.read.consents.emergency_access(p.address, c.address) is None  # at once, not at expiry
        assert chain.read.consents.break_glass_blocked(p.address, c.address)
        with reverts("ConsentRegistryBreakGlassBlocked", patient=p.address, member=c.address):
            chain.as_(c).consents.declare_break_glass(p.address, b"\x03" * 32)
        chain.as_(c).consents.declare_break_glass(other, b"\x03" * 32)  # another patient: not blocked
        chain.as_(chain.actors.b).consents.declare_break_glass(p.address, b"\x03" * 32)  # another member: not
        with reverts("ConsentRegistryNotActiveAuditor", account=chain.actors.a.address):
            chain.as_(chain.actors.a).consents.lift_break_glass_block(p.address, c.address)
        lifted = chain.as_(auditor).consents.lift_break_glass_block(p.address, c.address)
        assert lifted.event("BreakGlassBlockLifted").args == {
            "patient": p.address,
            "member": c.address,
            "auditor": auditor.address,
        }
        with reverts("ConsentRegistryBreakGlassNotBlocked", patient=p.address, member=c.address):
            chain.as_(auditor).consents.lift_break_glass_block(p.address, c.address)
        again = (
            chain.as_(c)
            .consents.declare_break_glass(p.address, b"\x04" * 32)
            .event("BreakGlassDeclared")
            .args["breakGlassId"]
        )
        assert chain.read.consents.emergency_access(p.address, c.address) == again

    def test_a_justified_review_leaves_the_access_running(self, chain: Chain) -> None:
        p, c = chain.actors.patient, chain.actors.c
        bg_id = (
            chain.as_(c)
            .consents.declare_break_glass(p.address, b"\x01" * 32)
            .event("BreakGlassDeclared")
            .args["breakGlassId"]
        )
        chain.as_(chain.actors.auditor).consents.review_break_glass(bg_id, True, b"\x02" * 32)
        assert chain.read.consents.emergency_access(p.address, c.address) == bg_id
        assert not chain.read.consents.break_glass_blocked(p.address, c.address)

    def test_a_member_declares_at_most_the_limit_in_any_window(self, chain: Chain) -> None:
        c = chain.as_(chain.actors.c)
        limit, window = chain.read.consents.break_glass_limit()
        assert (limit, window) == (chain.manifest.break_glass_limit, chain.manifest.break_glass_window)
        patients = [Account.create().address for _ in range(limit + 1)]
        first = c.consents.declare_break_glass(patients[0], b"\x01" * 32)
        started = chain.w3.eth.get_block(first.block_number)["timestamp"]
        for patient in patients[1:limit]:
            c.consents.declare_break_glass(patient, b"\x01" * 32)
        with reverts(
            "ConsentRegistryBreakGlassLimit",
            member=chain.actors.c.address,
            limit=limit,
            window=window,
            retryAt=started + window,
        ):
            c.consents.declare_break_glass(patients[limit], b"\x01" * 32)
        chain.as_(chain.actors.b).consents.declare_break_glass(patients[limit], b"\x01" * 32)  # per member
        chain.backend.increase_time(window)
        c.consents.declare_break_glass(patients[limit], b"\x01" * 32)  # the oldest left the window

    def test_only_active_members_declare_and_never_for_no_patient(self, chain: Chain) -> None:
        for outsider in (chain.actors.auditor, chain.actors.stranger, chain.actors.patient):
            with reverts("ConsentRegistryNotActiveMember", account=outsider.address):
                chain.as_(outsider).consents.declare_break_glass(chain.actors.patient.address, b"\x01" * 32)
        with reverts("ConsentRegistryInvalidPatient"):
            chain.as_(chain.actors.c).consents.declare_break_glass("0x" + "00" * 20, b"\x01" * 32)


def test_consents_of_lists_every_consent_with_its_state(chain: Chain) -> None:
    p = chain.actors.patient
    ids = [
        _consent_id(chain.as_(p).consents.grant(p.address, chain.terms(m.address)))
        for m in (chain.actors.a, chain.actors.b)
    ]
    chain.as_(p).consents.revoke(ids[0])
    listed = chain.read.consents.consents_of(p.address)
    assert [c.consent_id for c in listed] == ids
    assert [c.state for c in listed] == [ConsentState.REVOKED, ConsentState.ACTIVE]
    assert chain.read.consents.consents_of(Account.create().address) == []


class TestEveryRelayPathChecksRelayerDeadlineAndSigner:
    def test_revocation_relay(self, chain: Chain) -> None:
        p = chain.actors.patient
        cid = _consent_id(chain.as_(p).consents.grant(p.address, chain.terms(chain.actors.b.address)))
        deadline, sig = chain.sign_revocation(p, cid, p.address)
        with reverts("ConsentRegistryNotActiveMember", account=chain.actors.auditor.address):
            chain.as_(chain.actors.auditor).consents.revoke_by_sig(cid, deadline, sig)
        deadline, sig = chain.sign_revocation(chain.actors.stranger, cid, p.address)
        with reverts("ConsentRegistryNotPatientOrDelegate", patient=p.address, caller=chain.actors.stranger.address):
            chain.as_(chain.actors.a).consents.revoke_by_sig(cid, deadline, sig)
        with reverts("ConsentRegistryInvalidSignature"):
            chain.as_(chain.actors.a).consents.revoke_by_sig(cid, deadline, (0, sig[1], sig[2]))
        assert chain.read.consents.consent(cid).state == ConsentState.ACTIVE

    def test_delegation_relay(self, chain: Chain) -> None:
        p, d = chain.actors.patient, chain.actors.delegate
        terms = manages(d.address)
        deadline, sig = chain.sign_delegation(p, p.address, terms)
        with reverts("ConsentRegistryNotActiveMember", account=chain.actors.stranger.address):
            chain.as_(chain.actors.stranger).consents.set_delegate_by_sig(p.address, terms, deadline, sig)
        with reverts("ConsentRegistryInvalidSignature"):
            chain.as_(chain.actors.a).consents.set_delegate_by_sig(p.address, terms, deadline, (29, sig[1], sig[2]))
        chain.backend.increase_time(3601)
        with reverts("ConsentRegistryExpiredSignature", deadline=deadline):
            chain.as_(chain.actors.a).consents.set_delegate_by_sig(p.address, terms, deadline, sig)
        assert not chain.read.consents.is_delegate(p.address, d.address)


def test_suspended_member_loses_consent_and_emergency_access(chain: Chain) -> None:
    from ledger_api.chain.types import ProposalKind

    p, c = chain.actors.patient, chain.actors.c
    chain.as_(p).consents.grant(p.address, chain.terms(c.address))
    chain.as_(c).consents.declare_break_glass(p.address, b"\x01" * 32)
    assert chain.read.consents.is_permitted(p.address, c.address, LABS, TREATMENT)
    pid = (
        chain.as_(chain.actors.a)
        .registry.propose_status_change(ProposalKind.SUSPEND_MEMBER, c.address)
        .event("ProposalCreated")
        .args["proposalId"]
    )
    chain.as_(chain.actors.b).registry.vote(pid, True)
    chain.as_(chain.actors.b).registry.execute(pid)
    assert not chain.read.consents.is_permitted(p.address, c.address, LABS, TREATMENT)
    assert chain.read.consents.emergency_access(p.address, c.address) is None


class TestSharingRestriction:
    """A patient's erasure request where the records must be kept: no consent permits anything while it
    stands (the consents stay), break-glass still does, and it is lifted the same way."""

    def test_a_restriction_overrides_consents_without_revoking_them_until_lifted(self, chain: Chain) -> None:
        p, b, c = chain.actors.patient, chain.actors.b, chain.actors.c
        cid = _consent_id(chain.as_(p).consents.grant(p.address, chain.terms(b.address)))
        receipt = chain.as_(p).consents.restrict_sharing(p.address, True)
        assert receipt.event("SharingRestrictionChanged").args["restricted"] is True
        consents = chain.read.consents
        assert consents.is_restricted(p.address)
        assert consents.permitting_consent(p.address, b.address, LABS, TREATMENT) is None
        assert consents.consent(cid).state == ConsentState.ACTIVE  # overridden, not revoked
        chain.as_(c).consents.declare_break_glass(p.address, b"\x01" * 32)
        assert consents.emergency_access(p.address, c.address) is not None  # life and health still come first
        with reverts("ConsentRegistryRestrictionUnchanged", patient=p.address, restricted=True):
            chain.as_(p).consents.restrict_sharing(p.address, True)
        chain.as_(p).consents.restrict_sharing(p.address, False)
        assert consents.permitting_consent(p.address, b.address, LABS, TREATMENT) == cid

    def test_a_member_relays_the_patients_signed_restriction_and_nobody_else_may_restrict(self, chain: Chain) -> None:
        p, a, stranger = chain.actors.patient, chain.actors.a, chain.actors.stranger
        deadline, signature = chain.sign_restriction(p, p.address, True)
        chain.as_(a).consents.restrict_sharing_by_sig(p.address, True, deadline, signature)
        assert chain.read.consents.is_restricted(p.address) and chain.read.consents.nonce(p.address) == 1
        with reverts("ConsentRegistryNotPatientOrDelegate", patient=p.address, caller=stranger.address):
            chain.as_(stranger).consents.restrict_sharing(p.address, False)
        deadline, forged = chain.sign_restriction(stranger, p.address, False)
        with reverts("ConsentRegistryNotPatientOrDelegate", patient=p.address, caller=stranger.address):
            chain.as_(a).consents.restrict_sharing_by_sig(p.address, False, deadline, forged)
