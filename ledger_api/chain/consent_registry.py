"""The ConsentRegistry's typed client: consents, delegates, break-glass and their by-signature relays."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

from ledger_api.chain.calldata import checksum_address
from ledger_api.chain.consortium_registry import ConsortiumRegistryClient
from ledger_api.chain.contract import ContractClient, W
from ledger_api.chain.events import decode_log, event_topic
from ledger_api.chain.ids import consent_id_base, patient_of
from ledger_api.chain.transactions import chain_call
from ledger_api.chain.types import (
    BreakGlass,
    Consent,
    ConsentState,
    DelegateScope,
    Delegation,
    GrantTerms,
    Recovery,
    Review,
    Succession,
    member_indices,
)


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


AccountEventKind = Literal[
    "grant",
    "revocation",
    "confirmation",
    "delegate",
    "restriction",
    "key",
    "recovery-started",
    "recovery-cancelled",
    "minor",
]


@dataclass(frozen=True)
class AccountEvent:
    """A change to a patient's account as the chain recorded it, and who signed it: a grant or revocation
    (``consent_id``), a delegate's appointment, change or removal (``delegation``; always the patient's own),
    or a restriction of all their records (``restricted``)."""

    kind: AccountEventKind
    block: int
    log_index: int
    signer: str
    consent_id: int | None = None
    delegation: Delegation | None = None
    restricted: bool | None = None
    #: a succession's or recovery's key, how it came (``KeyRotated``), when a recovery may complete
    new_key: str | None = None
    how: Succession | None = None
    ready_at: int | None = None


class ConsentRegistryClient(ContractClient[W]):
    contract_name = "ConsentRegistry"

    # reads
    def members_named(self, recipients: int) -> tuple[str, ...]:
        """The accounts a consent's recipient set names (bit i: the member at consortium index i), in index
        order. A member's index is given once and never reused, so each is read once per client."""
        named = []
        for index in member_indices(recipients):
            if index not in self._member_at:
                self._member_at[index] = self._members.member_at(index).account
            named.append(self._member_at[index])
        return tuple(named)

    def granted_terms(self, args: Any) -> GrantTerms:
        """The terms a ``ConsentGranted`` event states: its ``terms`` word, ``noticeHash`` and the members its
        ``recipients`` name."""
        grantees = self.members_named(int(args["recipients"]))
        return GrantTerms.unpacked(grantees, int(args["terms"]), bytes(args["noticeHash"]))

    @cached_property
    def _members(self) -> ConsortiumRegistryClient[Any]:
        return ConsortiumRegistryClient(self.w3, self._read("registry"), reader=self.reader)

    @cached_property
    def _member_at(self) -> dict[int, str]:
        return {}

    def consent(self, consent_id: int, *, block: int | str = "latest") -> Consent:
        recipients, categories, purposes, state, valid_from, valid_until, care_from, care_to = self._read(
            "consent", consent_id, block=block
        )
        return Consent(
            consent_id=consent_id,
            patient=patient_of(consent_id),
            grantees=self.members_named(recipients),
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
        """Whether ``delegate`` is the patient's delegate now (any scope, before its end; chain time)."""
        return bool(self._read("isDelegate", checksum_address(patient), checksum_address(delegate)))

    def delegation(self, patient: str, delegate: str) -> Delegation | None:
        """The delegate's standing with the patient now (chain time), or None if not a delegate now."""
        scope, valid_until, excluded = self._read("delegation", checksum_address(patient), checksum_address(delegate))
        stored = Delegation(
            delegate=checksum_address(delegate),
            scope=DelegateScope(scope),
            valid_until=valid_until,
            excluded_categories=excluded,
        )
        if stored.scope == DelegateScope.NONE:
            return None
        if valid_until and not stored.live(self.now()):
            return None
        return stored

    def account_of(self, key: str) -> str | None:
        """The account ``key`` signs for now, or None: an account's own address whose key was replaced."""
        account = checksum_address(self._read("accountOf", checksum_address(key)))
        return None if int(account, 16) == 0 else account

    def key_of(self, account: str) -> str:
        """The key that signs for ``account`` now."""
        return checksum_address(self._read("keyOf", checksum_address(account)))

    def recovery(self, account: str) -> Recovery:
        new_key, round_, approvals, ready_at = self._read("recovery", checksum_address(account))
        pending = checksum_address(new_key)
        return Recovery(
            new_key=None if int(pending, 16) == 0 else pending, round=round_, approvals=approvals, ready_at=ready_at
        )

    def recovery_policy(self) -> tuple[int, int]:
        """Approvals a recovery needs, and the seconds of its time lock."""
        threshold, delay = self._read("recoveryPolicy")
        return int(threshold), int(delay)

    def accounts_recovering_to(self, key: str) -> list[str]:
        """The accounts whose recovery approvals named ``key`` (its indexed topic), newest first."""
        return self._accounts_naming("RecoveryApproved", "newKey", key, "account")

    def _accounts_naming(self, event: str, topic: str, value: str, account: str) -> list[str]:
        """The accounts (argument ``account``) of the ``event`` logs whose indexed ``topic`` is ``value``, newest
        first, each once."""
        events = chain_call(
            getattr(self.contract.events, event).get_logs,
            from_block=0,
            argument_filters={topic: checksum_address(value)},
            contract=self.contract_name,
        )
        ordered = sorted(events, key=lambda e: (e["blockNumber"], e["logIndex"]), reverse=True)
        return list(dict.fromkeys(checksum_address(e["args"][account]) for e in ordered))

    def minor_until(self, account: str) -> int:
        """The day (``chain.days``) from which a minor's account may be claimed; 0: not a minor."""
        return int(self._read("minorUntil", checksum_address(account)))

    def delegates_of(self, patient: str) -> list[Delegation]:
        """The patient's delegates now, replayed from ``DelegateChanged`` (the contract keeps no list); an
        ended delegation is left out."""
        now = self.now()
        return [d for d in self.delegation_history(patient).values() if d.live(now)]

    def accounts_delegated_to(self, delegate: str) -> list[str]:
        """The accounts that ever appointed ``delegate`` (its indexed topic), newest first; read
        ``delegation`` for where it stands now."""
        return self._accounts_naming("DelegateChanged", "delegate", delegate, "patient")

    def delegation_history(self, patient: str) -> dict[str, Delegation]:
        """Each delegate's last stored delegation, ended or removed ones included, in order of appointment."""
        events = chain_call(
            self.contract.events.DelegateChanged.get_logs,
            from_block=0,
            argument_filters={"patient": checksum_address(patient)},
            contract=self.contract_name,
        )
        current: dict[str, Delegation] = {}
        for event in sorted(events, key=lambda e: (e["blockNumber"], e["logIndex"])):
            delegation = Delegation.of_event(event["args"])
            current[delegation.delegate] = delegation
        return current

    def now(self) -> int:
        """The latest block's time: what the contract compares a delegation's end with."""
        return int(chain_call(self.w3.eth.get_block, "latest", contract=self.contract_name)["timestamp"])

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
                terms = self.granted_terms(args) if name == "ConsentGranted" else None
                found.append(
                    ConsentEvent(
                        kind="grant" if terms is not None else "revocation",
                        consent_id=int(args["consentId"]),
                        block=int(event["blockNumber"]),
                        log_index=int(event["logIndex"]),
                        signer=checksum_address(args["signer"]),
                        grantees=terms.grantees if terms is not None else (),
                        notice=(terms.notice_version, terms.notice_hash) if terms is not None else None,
                    )
                )
        return sorted(found, key=lambda e: (e.block, e.log_index))

    def account_events_of(self, patient: str, kinds: frozenset[str] | None = None) -> list[AccountEvent]:
        """Every change to the patient's account (consents, delegates, restriction, keys), in chain order, with
        who signed it: what the patient's history shows of who decided what for them. ``kinds``: only these.
        Two ``eth_getLogs`` (events naming the account first, and those naming it after a consent id)."""
        owner = checksum_address(patient)
        wanted = [name for name, kind in _ACCOUNT_EVENTS.items() if kinds is None or kind in kinds]
        found: list[AccountEvent] = []
        owner_topic = "0x" + "00" * 12 + owner[2:].lower()
        for position in (1, 2):
            names = [name for name in wanted if _OWNER_TOPIC[name] == position]
            if not names:
                continue
            topics: list[Any] = [[event_topic(self.contract_name, name) for name in names]]
            topics += [None] * (position - 1) + [owner_topic]
            logs = chain_call(
                self.w3.eth.get_logs,
                {"address": self.address, "fromBlock": 0, "toBlock": "latest", "topics": topics},
                contract=self.contract_name,
            )
            for log in logs:
                decoded = decode_log(self.w3, log)
                if decoded is not None:
                    block = int(log["blockNumber"])
                    found.append(_account_event(decoded.name, decoded.args, block, decoded.log_index, owner))
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
        return self._write("grant", checksum_address(patient), *_grant_arguments(terms))

    def grant_by_sig(self, patient: str, terms: GrantTerms, deadline: int, signature: tuple[int, bytes, bytes]) -> W:
        return self._write("grantBySig", checksum_address(patient), *_grant_arguments(terms), deadline, *signature)

    def revoke(self, consent_id: int) -> W:
        return self._write("revoke", consent_id)

    def revoke_by_sig(self, consent_id: int, deadline: int, signature: tuple[int, bytes, bytes]) -> W:
        return self._write("revokeBySig", consent_id, deadline, *signature)

    def set_delegate(self, terms: Delegation) -> W:
        """Appoints, changes or (scope NONE) removes ``terms.delegate``, sent by the patient."""
        return self._write("setDelegate", checksum_address(terms.delegate), terms.as_tuple())

    def set_delegate_by_sig(
        self, patient: str, terms: Delegation, deadline: int, signature: tuple[int, bytes, bytes]
    ) -> W:
        return self._write(
            "setDelegateBySig",
            checksum_address(patient),
            checksum_address(terms.delegate),
            terms.as_tuple(),
            deadline,
            *signature,
        )

    def confirm_by_sig(self, consent_id: int, deadline: int, signature: tuple[int, bytes, bytes]) -> W:
        return self._write("confirmBySig", consent_id, deadline, *signature)

    def rotate_key_by_sig(self, account: str, new_key: str, deadline: int, signature: tuple[int, bytes, bytes]) -> W:
        return self._write("rotateKeyBySig", checksum_address(account), checksum_address(new_key), deadline, *signature)

    def approve_recovery(self, account: str, new_key: str) -> W:
        return self._write("approveRecovery", checksum_address(account), checksum_address(new_key))

    def approve_recovery_by_sig(
        self, account: str, new_key: str, round_: int, deadline: int, signature: tuple[int, bytes, bytes]
    ) -> W:
        return self._write(
            "approveRecoveryBySig", checksum_address(account), checksum_address(new_key), round_, deadline, *signature
        )

    def cancel_recovery(self, account: str) -> W:
        return self._write("cancelRecovery", checksum_address(account))

    def cancel_recovery_by_sig(self, account: str, deadline: int, signature: tuple[int, bytes, bytes]) -> W:
        return self._write("cancelRecoveryBySig", checksum_address(account), deadline, *signature)

    def complete_recovery(self, account: str) -> W:
        return self._write("completeRecovery", checksum_address(account))

    def register_minor(self, account: str, guardian: str, minor_until: int) -> W:
        return self._write("registerMinor", checksum_address(account), checksum_address(guardian), minor_until)

    def claim_minor_by_sig(
        self, account: str, key: str, guardian_scope: int, deadline: int, signature: tuple[int, bytes, bytes]
    ) -> W:
        return self._write(
            "claimMinorBySig", checksum_address(account), checksum_address(key), guardian_scope, deadline, *signature
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


#: the chain's events about a patient's account, as the kind of change each is
_ACCOUNT_EVENTS: dict[str, AccountEventKind] = {
    "ConsentGranted": "grant",
    "ConsentRevoked": "revocation",
    "ConsentConfirmed": "confirmation",
    "DelegateChanged": "delegate",
    "SharingRestrictionChanged": "restriction",
    "KeyRotated": "key",
    "RecoveryStarted": "recovery-started",
    "RecoveryCancelled": "recovery-cancelled",
    "MinorRegistered": "minor",
}
#: where each names the account among its topics (after the event's own): first, or after a consent id
_OWNER_TOPIC = {name: 2 if name.startswith("Consent") else 1 for name in _ACCOUNT_EVENTS}


def _account_event(name: str, args: Any, block: int, index: int, owner: str) -> AccountEvent:
    """One change to the account, as its event states it; who signed it (a delegate change, a minor's
    registration and a completed recovery are no key's act of the account: the patient's own, a member's)."""
    if name in ("ConsentGranted", "ConsentRevoked"):
        kind: AccountEventKind = "grant" if name == "ConsentGranted" else "revocation"
        return AccountEvent(kind, block, index, checksum_address(args["signer"]), consent_id=int(args["consentId"]))
    if name == "DelegateChanged":
        return AccountEvent("delegate", block, index, owner, delegation=Delegation.of_event(args))
    if name == "SharingRestrictionChanged":
        signer = checksum_address(args["signer"])
        return AccountEvent("restriction", block, index, signer, restricted=bool(args["restricted"]))
    if name == "ConsentConfirmed":
        signer = checksum_address(args["signer"])
        return AccountEvent("confirmation", block, index, signer, consent_id=int(args["consentId"]))
    if name == "KeyRotated":
        key = checksum_address(args["newKey"])
        return AccountEvent("key", block, index, owner, new_key=key, how=Succession(args["how"]))
    if name == "RecoveryStarted":
        key = checksum_address(args["newKey"])
        return AccountEvent("recovery-started", block, index, owner, new_key=key, ready_at=int(args["readyAt"]))
    if name == "RecoveryCancelled":
        key = checksum_address(args["newKey"])
        signer = checksum_address(args["signer"])
        return AccountEvent("recovery-cancelled", block, index, signer, new_key=key)
    return AccountEvent("minor", block, index, checksum_address(args["member"]))


def _grant_arguments(terms: GrantTerms) -> tuple[list[str], int, bytes]:
    """A grant as the contract takes it: the members named, the other terms in one word, the notice hash."""
    return [checksum_address(g) for g in terms.grantees], terms.packed(), terms.notice_hash
