"""The patient's signed requests behind a record's restriction and hiding, checked by the auditor.

A custodian changes a record's restriction or hiding (on chain: ``RecordRegistry``, which only the
custodian may call) only at its patient's request, and logs the change (``restrict``, ``unrestrict``,
``hide``, ``unhide``; basis ``patient``) with the keccak-256 of the patient's EIP-712 signature as the
entry's authorisation. It keeps the signed request and exports it with its record manifest
(``patient_requests`` on the record's first version). So, without trusting the custodian, the auditor
checks that

- each such entry is backed by a kept request that its requester signed, for this record and this very
  change (a restriction in person, the patient's own ``DELETE`` signed in at the custodian, carries no
  signature: it can only ever restrict, never lift or hide);
- each change the chain shows for a record whose custodians were all audited is logged: a lift (or a
  showing again) that no entry records is the custodian's own doing, and every release after it would
  otherwise pass as consented.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from eth_utils import keccak
from medledger_crypto import RecordHiding, RecordRestriction, recover_typed

from ledger_api.audit.chain_view import RecordFact

#: trail action -> (the EIP-712 type the patient signs, the flag's value after the change)
ACTIONS: dict[str, tuple[str, bool]] = {
    "restrict": (RecordRestriction.primary_type, True),
    "unrestrict": (RecordRestriction.primary_type, False),
    "hide": (RecordHiding.primary_type, True),
    "unhide": (RecordHiding.primary_type, False),
}
_MESSAGES = {RecordRestriction.primary_type: RecordRestriction, RecordHiding.primary_type: RecordHiding}


class SignedRequests:
    """The requests members exported, and the changes their trails logged, for one audit run."""

    def __init__(self, chain_id: int, consent_registry: str) -> None:
        self.chain_id, self.contract = chain_id, consent_registry
        #: (member, keccak of the signature) -> (record id, the request as exported)
        self._kept: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        #: (record id, signed type, value) -> how many trail entries record that change
        self._logged: Counter[tuple[str, str, bool]] = Counter()

    def keep(self, member: str, line: dict[str, Any]) -> None:
        """Takes the requests a record manifest line carries (malformed ones are kept out: unproven)."""
        requests = line.get("patient_requests")
        for request in requests if isinstance(requests, list) else []:
            try:
                proof = keccak(bytes.fromhex(str(request["signature"]))).hex()
            except (KeyError, TypeError, ValueError):
                continue
            self._kept[(member, proof)] = (str(line.get("record_id")), request)

    def problem(self, member: str, doc: dict[str, Any]) -> tuple[str, str] | None:
        """Why a patient-basis restriction or hiding entry is not the patient's signed change, or None;
        counts the change as logged either way."""
        action = str(doc.get("action"))
        if action not in ACTIONS:
            return None
        kind, value = ACTIONS[action]
        record_id = str(doc.get("record_id"))
        self._logged[(record_id, kind, value)] += 1
        proof = str(doc.get("authorization") or "")
        if not proof:
            if action == "restrict":  # in person: the patient's own DELETE within retention
                return None
            return "patient-request-unproven", f"a {action} names no signed request of the patient"
        kept = self._kept.get((member, proof))
        if kept is None:
            return "patient-request-unproven", f"the member keeps no signed request for this {action}"
        kept_record, request = kept
        try:
            message = _MESSAGES[kind](
                request["patient"], bytes.fromhex(record_id), value, int(request["issued_at"]), int(request["deadline"])
            )
            raw = bytes.fromhex(str(request["signature"]))
            document = message.document(chain_id=self.chain_id, contract=self.contract)
            signer = recover_typed(document, raw[64], raw[:32], raw[32:64])
        except Exception:  # whatever a member exported that does not encode or recover is no signature
            return "patient-request-forged", f"the request kept for this {action} is malformed"
        if (
            kept_record != record_id
            or request.get("kind") != kind
            or request.get("value") is not value
            or str(request["patient"]).lower() != str(doc.get("patient")).lower()
            or signer != doc.get("requester")
        ):
            return (
                "patient-request-forged",
                f"the request kept for this {action} was not signed by its requester for this record and change",
            )
        return None

    def unlogged(self, records: Iterable[RecordFact], audited: set[str]) -> list[tuple[str, str, bool, int]]:
        """Changes on chain no trail entry records: (record id, signed type, value, how many), for records
        whose every custodian was audited (another member's trail may hold the rest)."""
        missing = []
        for fact in records:
            holders = {fact.custodian, *(source for source, _, _ in fact.transfers)}
            if not holders <= audited:
                continue
            for kind, changes in (
                (RecordRestriction.primary_type, fact.restrictions),
                (RecordHiding.primary_type, fact.hidings),
            ):
                on_chain = Counter(value for value, _ in changes)
                for value, count in on_chain.items():
                    short = count - self._logged[(fact.record_id, kind, value)]
                    if short > 0:
                        missing.append((fact.record_id, kind, value, short))
        return missing
