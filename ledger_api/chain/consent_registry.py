"""The ConsentRegistry's typed client: consents, delegates, break-glass and their by-signature relays."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ledger_api.chain.calldata import checksum_address
from ledger_api.chain.contract import ContractClient, W
from ledger_api.chain.ids import consent_id_base, patient_of
from ledger_api.chain.transactions import chain_call
from ledger_api.chain.types import BreakGlass, Consent, ConsentState, GrantTerms, Review


@dataclass(frozen=True)
class ConsentEvent:
    """A grant or revocation as its event states it (``grantees``: the members a grant names; a revocation's
    are empty)."""

    kind: Literal["grant", "revocation"]
    consent_id: int
    block: int
    log_index: int
    signer: str
    grantees: tuple[str, ...]
    #: a grant's privacy notice: (version, SHA-256)
    notice: tuple[int, bytes] | None = None


@dataclass(frozen=True)
class BreakGlassEvent:
    """A break-glass declaration on a patient's records, or an auditor's review of one (``review``)."""

    kind: Literal["break_glass", "review"]
    break_glass_id: int
    block: int
    log_index: int
    member: str
    review: Review | None


class ConsentRegistryClient(ContractClient[W]):
    contract_name = "ConsentRegistry"

    # reads
    def consent(self, consent_id: int, *, block: int | str = "latest") -> Consent:
        _, categories, purposes, state, valid_from, valid_until, care_from, care_to = self._read(
            "consent", consent_id, block=block
        )
        named = self._read("grantees", consent_id, block=block)
        return Consent(
            consent_id=consent_id,
            patient=patient_of(consent_id),
            grantees=tuple(checksum_address(g) for g in named),
            categories=categories,
            purposes=purposes,
            state=ConsentState(state),
            valid_from=valid_from,
            valid_until=valid_until,
            care_from=care_from,
            care_to=care_to,
        )

    def consent_count(self, patient: str) -> int:
        return int(self._read("consentCount", checksum_address(patient)))

    def consents_of(self, patient: str) -> list[Consent]:
        base = consent_id_base(patient)
        return [self.consent(base | i) for i in range(self.consent_count(patient))]

    def nonce(self, patient: str) -> int:
        return int(self._read("nonces", checksum_address(patient)))

    def is_delegate(self, patient: str, delegate: str) -> bool:
        return bool(self._read("isDelegate", checksum_address(patient), checksum_address(delegate)))

    def delegates_of(self, patient: str) -> list[str]:
        """The patient's current delegates, replayed from ``DelegateChanged`` (the contract keeps no list)."""
        events = chain_call(
            self.contract.events.DelegateChanged.get_logs,
            from_block=0,
            argument_filters={"patient": checksum_address(patient)},
            contract=self.contract_name,
        )
        current: dict[str, bool] = {}
        for event in sorted(events, key=lambda e: (e["blockNumber"], e["logIndex"])):
            current[event["args"]["delegate"]] = bool(event["args"]["appointed"])
        return [delegate for delegate, appointed in current.items() if appointed]

    def consent_events_of(self, patient: str) -> list[ConsentEvent]:
        """The patient's grants and revocations in chain order, from their events (filtered by the
        patient's indexed topic: the node reads only this patient's)."""
        found: list[ConsentEvent] = []
        for name in ("ConsentGranted", "ConsentRevoked"):
            events = chain_call(
                getattr(self.contract.events, name).get_logs,
                from_block=0,
                argument_filters={"patient": checksum_address(patient)},
                contract=self.contract_name,
            )
            for event in events:
                args = event["args"]
                found.append(
                    ConsentEvent(
                        kind="grant" if name == "ConsentGranted" else "revocation",
                        consent_id=int(args["consentId"]),
                        block=int(event["blockNumber"]),
                        log_index=int(event["logIndex"]),
                        signer=checksum_address(args["signer"]),
                        grantees=tuple(checksum_address(g) for g in args.get("grantees", ())),
                        notice=(int(args["noticeVersion"]), bytes(args["noticeHash"]))
                        if "noticeVersion" in args
                        else None,
                    )
                )
        return sorted(found, key=lambda e: (e.block, e.log_index))

    def break_glass_events_of(self, patient: str) -> list[BreakGlassEvent]:
        """Break-glass declared on the patient's records and the auditors' reviews of them, in chain order."""
        found: list[BreakGlassEvent] = []
        declared = chain_call(
            self.contract.events.BreakGlassDeclared.get_logs,
            from_block=0,
            argument_filters={"patient": checksum_address(patient)},
            contract=self.contract_name,
        )
        for event in declared:
            found.append(
                BreakGlassEvent(
                    kind="break_glass",
                    break_glass_id=int(event["args"]["breakGlassId"]),
                    block=int(event["blockNumber"]),
                    log_index=int(event["logIndex"]),
                    member=checksum_address(event["args"]["member"]),
                    review=None,
                )
            )
        members = {e.break_glass_id: e.member for e in found}
        if members:
            reviewed = chain_call(
                self.contract.events.BreakGlassReviewed.get_logs,
                from_block=0,
                argument_filters={"breakGlassId": sorted(members)},
                contract=self.contract_name,
            )
            for event in reviewed:
                identifier = int(event["args"]["breakGlassId"])
                found.append(
                    BreakGlassEvent(
                        kind="review",
                        break_glass_id=identifier,
                        block=int(event["blockNumber"]),
                        log_index=int(event["logIndex"]),
                        member=members[identifier],
                        review=Review(int(event["args"]["review"])),
                    )
                )
        return sorted(found, key=lambda e: (e.block, e.log_index))

    def is_permitted(self, patient: str, requester: str, category: int, purpose: int, encounter_day: int = 0) -> bool:
        """Whether a consent lets ``requester`` read a record of ``category`` about care on ``encounter_day``
        (``chain.days``; 0 = not stated: only consents without a care range cover it) for ``purpose``."""
        return bool(
            self._read(
                "isPermitted", checksum_address(patient), checksum_address(requester), category, purpose, encounter_day
            )
        )

    def permitting_consent(
        self,
        patient: str,
        requester: str,
        category: int,
        purpose: int,
        encounter_day: int = 0,
        block: int | str = "latest",
    ) -> int | None:
        """The id of a consent that permits the access at ``block`` (default: now), or ``None``."""
        permitted, consent_id = self._read(
            "permittingConsent",
            checksum_address(patient),
            checksum_address(requester),
            category,
            purpose,
            encounter_day,
            block=block,
        )
        return int(consent_id) if permitted else None

    def is_restricted(self, patient: str, block: int | str = "latest") -> bool:
        """Whether the patient has restricted the sharing of all their records (at ``block``)."""
        return bool(self._read("isRestricted", checksum_address(patient), block=block))

    def break_glass(self, break_glass_id: int) -> BreakGlass:
        member, declared, expires, review, patient, justification, review_reason = self._read(
            "breakGlass", break_glass_id
        )
        return BreakGlass(
            break_glass_id=break_glass_id,
            member=member,
            declared_at=declared,
            expires_at=expires,
            review=Review(review),
            patient=patient,
            justification_hash=bytes(justification),
            review_reason_hash=bytes(review_reason),
        )

    def break_glass_count(self) -> int:
        return int(self._read("breakGlassCount"))

    def emergency_access(self, patient: str, member: str, block: int | str = "latest") -> int | None:
        """The id of a break-glass declaration by ``member`` for ``patient`` unexpired at ``block``, or ``None``."""
        active, bg_id = self._read("emergencyAccess", checksum_address(patient), checksum_address(member), block=block)
        return int(bg_id) if active else None

    def break_glass_duration(self) -> int:
        return int(self._read("breakGlassDuration"))

    def break_glass_blocked(self, patient: str, member: str) -> bool:
        """Whether a not-justified review keeps ``member`` from declaring break-glass for ``patient``."""
        return bool(self._read("breakGlassBlocked", checksum_address(patient), checksum_address(member)))

    def break_glass_limit(self) -> tuple[int, int]:
        """``(declarations, window seconds)``: how many break-glass declarations a member may make per window."""
        limit, window = self._read("breakGlassLimit")
        return int(limit), int(window)

    def domain_separator(self) -> bytes:
        return bytes(self._read("DOMAIN_SEPARATOR"))

    # writes
    def grant(self, patient: str, terms: GrantTerms) -> W:
        return self._write("grant", checksum_address(patient), terms.as_tuple())

    def grant_by_sig(self, patient: str, terms: GrantTerms, deadline: int, signature: tuple[int, bytes, bytes]) -> W:
        return self._write("grantBySig", checksum_address(patient), terms.as_tuple(), deadline, *signature)

    def revoke(self, consent_id: int) -> W:
        return self._write("revoke", consent_id)

    def revoke_by_sig(self, consent_id: int, deadline: int, signature: tuple[int, bytes, bytes]) -> W:
        return self._write("revokeBySig", consent_id, deadline, *signature)

    def set_delegate(self, delegate: str, appointed: bool) -> W:
        return self._write("setDelegate", checksum_address(delegate), appointed)

    def set_delegate_by_sig(
        self, patient: str, delegate: str, appointed: bool, deadline: int, signature: tuple[int, bytes, bytes]
    ) -> W:
        return self._write(
            "setDelegateBySig", checksum_address(patient), checksum_address(delegate), appointed, deadline, *signature
        )

    def restrict_sharing(self, patient: str, restricted: bool) -> W:
        return self._write("restrictSharing", checksum_address(patient), restricted)

    def restrict_sharing_by_sig(
        self, patient: str, restricted: bool, deadline: int, signature: tuple[int, bytes, bytes]
    ) -> W:
        return self._write("restrictSharingBySig", checksum_address(patient), restricted, deadline, *signature)

    def declare_break_glass(self, patient: str, justification_hash: bytes) -> W:
        """``justification_hash``: the salted commitment to the reason and justification the member keeps."""
        return self._write("declareBreakGlass", checksum_address(patient), justification_hash)

    def review_break_glass(self, break_glass_id: int, justified: bool, reason_hash: bytes) -> W:
        return self._write("reviewBreakGlass", break_glass_id, justified, reason_hash)

    def lift_break_glass_block(self, patient: str, member: str) -> W:
        return self._write("liftBreakGlassBlock", checksum_address(patient), checksum_address(member))
