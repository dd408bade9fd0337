"""The trail and the consents as FHIR R4 resources, so hospital systems can ingest them.

Access-log entries become ``AuditEvent`` resources and consents become ``Consent`` resources.
Every resource is validated with ``fhir.resources`` before it is emitted (its ``R4B`` models:
R4B left AuditEvent, Consent and every data type they use unchanged from R4 4.0.1, so what passes
here is valid R4). Purposes of use are HL7 v3 ActReason codes; a break-glass access carries
``BTG`` (break the glass) and ``ETREAT`` (emergency treatment) besides its declared purpose.

People and members are pseudonymous accounts, so they appear as logical references (an
``identifier`` under a MedLedger naming system), never as resolvable Patient/Practitioner links:
the export carries no more personal data than the trail itself. Consent ids are the on-chain ids,
so an AuditEvent's authorising consent points at the exported ``Consent/<id>``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.consent import Consent
from pydantic import ValidationError

from ledger_api.chain.clients import ANY_MEMBER
from ledger_api.consents.service import ConsentView
from ledger_api.errors import LedgerError
from ledger_api.vocabulary import Category, Purpose, from_bitset

FHIR_NDJSON = "application/fhir+ndjson"
FHIR_JSON = "application/fhir+json"

ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_AUDIT_ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
_OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
_SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
_RESTFUL = "http://hl7.org/fhir/restful-interaction"

#: MedLedger's own naming systems (pseudonymous accounts and on-chain ids)
MEMBER_SYSTEM = "urn:medledger:member-account"
PATIENT_SYSTEM = "urn:medledger:patient-account"
CLINICIAN_SYSTEM = "urn:medledger:clinician"
RECORD_SYSTEM = "urn:medledger:record"
CONSENT_SYSTEM = "urn:medledger:consent"
BREAK_GLASS_SYSTEM = "urn:medledger:break-glass"
CATEGORY_SYSTEM = "urn:medledger:data-category"

_PURPOSE_DISPLAY = {
    "TREAT": "treatment", "HPAYMT": "healthcare payment", "HOPERAT": "healthcare operations",
    "HRESCH": "healthcare research", "PUBHLTH": "public health", "CAREMGT": "care management",
    "PATRQT": "patient requested", "HLEGAL": "legal",
}  # fmt: skip


class FhirInvalid(LedgerError):
    """A resource failed FHIR validation: a bug in the mapping, never something to emit anyway."""

    status = 500
    code = "fhir-invalid"
    title = "An exported resource is not valid FHIR"


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    return {"system": system, "code": code, **({"display": display} if display else {})}


def _concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"coding": [_coding(system, code, display)]}


def _account(system: str, address: str, display: str | None = None) -> dict[str, Any]:
    return {"identifier": {"system": system, "value": address.lower()}, **({"display": display} if display else {})}


def purpose_coding(purpose: int) -> dict[str, str]:
    code = Purpose(purpose).hl7_code
    return _coding(ACT_REASON, code, _PURPOSE_DISPLAY[code])


def _instant(value: str | int) -> str:
    moment = datetime.fromtimestamp(value, UTC) if isinstance(value, int) else datetime.fromisoformat(value)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _validated(model: type, resource: dict[str, Any]) -> dict[str, Any]:
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        raise FhirInvalid(f"{resource.get('resourceType')}/{resource.get('id')}: {exc.errors()[0]['msg']}") from None
    return resource


def consent_fhir_id(consent_id: int | str) -> str:
    """FHIR ids are at most 64 characters: the on-chain uint256 id as 64 hex digits (a grant still
    waiting for the chain keeps its relay's ``pending-N`` name)."""
    if isinstance(consent_id, str) and consent_id.startswith("pending-"):
        return consent_id
    return f"{int(consent_id):064x}"


def audit_event(entry: dict[str, Any], names: dict[str, str] | None = None) -> dict[str, Any]:
    """One exported access-log entry (its canonical document plus ``entry_hash``) as an AuditEvent."""
    names = {k.lower(): v for k, v in (names or {}).items()}
    erase, handover = entry["action"] == "erase", entry["action"] == "handover"
    break_glass = entry["basis"] == "break_glass"
    purposes = [purpose_coding(entry["purpose"])]
    if break_glass:
        purposes += [_coding(ACT_REASON, "BTG", "break the glass"),
                     _coding(ACT_REASON, "ETREAT", "Emergency Treatment")]
    requester, custodian = entry["requester"], entry["member"]
    entities: list[dict[str, Any]] = [
        {"what": _account(RECORD_SYSTEM, entry["record_id"]), "type": _coding(_AUDIT_ENTITY_TYPE, "2", "System Object"),
         "role": _coding(_OBJECT_ROLE, "4", "Domain Resource"),
         "detail": [{"type": "record-version", "valueString": str(entry["record_version"])}]},
        {"what": _account(PATIENT_SYSTEM, entry["patient"]), "type": _coding(_AUDIT_ENTITY_TYPE, "1", "Person"),
         "role": _coding(_OBJECT_ROLE, "1", "Patient")},
        {"what": {"identifier": {"system": "urn:medledger:access-entry", "value": f"{custodian.lower()}/"
                                 f"{entry['sequence']}"}},
         "type": _coding(_AUDIT_ENTITY_TYPE, "4", "Other"),
         "detail": [{"type": "entry-hash", "valueString": entry["entry_hash"]},
                    {"type": "sequence", "valueString": str(entry["sequence"])},
                    {"type": "basis", "valueString": entry["basis"]},
                    *([{"type": "chain-block", "valueString": str(entry["chain_block"])}]
                      if entry.get("chain_block") is not None else [])]},
    ]  # fmt: skip
    if entry["basis"] == "consent" and entry["authorization"]:
        consent_id = int(entry["authorization"], 16)
        entities.append({"what": {"reference": f"Consent/{consent_fhir_id(consent_id)}",
                                  "identifier": {"system": CONSENT_SYSTEM, "value": str(consent_id)}},
                         "type": _coding(_AUDIT_ENTITY_TYPE, "2", "System Object"),
                         "role": _coding(_OBJECT_ROLE, "13", "Security Resource")})  # fmt: skip
    elif break_glass and entry["authorization"]:
        entities.append({"what": {"identifier": {"system": BREAK_GLASS_SYSTEM,
                                                 "value": str(int(entry["authorization"], 16))}},
                         "type": _coding(_AUDIT_ENTITY_TYPE, "2", "System Object"),
                         "role": _coding(_OBJECT_ROLE, "13", "Security Resource")})  # fmt: skip
    resource = {
        "resourceType": "AuditEvent",
        "id": entry["entry_hash"],
        "type": _coding(_DCM, "110106", "Export") if handover else _coding(_DCM, "110110", "Patient Record"),
        "subtype": [_coding(_RESTFUL, "delete" if erase else "read")],
        "action": "D" if erase else "R",
        "recorded": _instant(entry["created_at"]),
        "outcome": "0",
        "purposeOfEvent": [{"coding": purposes}],
        "agent": [
            {"type": _concept(_PARTICIPATION, "IRCP", "information recipient"),
             "who": _account(MEMBER_SYSTEM, requester, names.get(requester.lower())), "requestor": True,
             "purposeOfUse": [{"coding": [purpose_coding(entry["purpose"])]}]},
            {"type": _concept(_PARTICIPATION, "AUT", "author (originator)"),
             "who": {"identifier": {"system": f"{CLINICIAN_SYSTEM}:{requester.lower()}", "value": entry["clinician"]}},
             "requestor": True},
            {"type": _concept(_PARTICIPATION, "CST", "custodian"),
             "who": _account(MEMBER_SYSTEM, custodian, names.get(custodian.lower())), "requestor": False},
        ],
        "source": {"site": names.get(custodian.lower(), custodian.lower()),
                   "observer": _account(MEMBER_SYSTEM, custodian, names.get(custodian.lower())),
                   "type": [_coding(_SOURCE_TYPE, "4", "Application Server")]},
        "entity": entities,
    }  # fmt: skip
    return _validated(AuditEvent, resource)


#: MedLedger's consent states in FHIR's Consent.status vocabulary
CONSENT_STATUS = {"active": "active", "not-yet-valid": "active", "expired": "inactive", "revoked": "inactive",
                  "pending": "proposed"}  # fmt: skip


def consent_resource(consent: ConsentView, names: dict[str, str] | None = None, *, granted_at: int | None = None,
                     revoked_at: int | None = None) -> dict[str, Any]:  # fmt: skip
    """A patient's consent (as the API lists it) as an R4 Consent (privacy scope, opt-in, one permit
    provision); ``granted_at`` / ``revoked_at`` are block times when the caller knows them."""
    names = {k.lower(): v for k, v in (names or {}).items()}
    grantee = consent.grantee
    actor_ref = ({"display": "every active member of the consortium"} if grantee.lower() == ANY_MEMBER.lower()
                 else _account(MEMBER_SYSTEM, grantee, names.get(grantee.lower())))  # fmt: skip
    revoked = {"extension": [{"url": "urn:medledger:consent-revoked-at", "valueInstant": _instant(revoked_at)}]} \
        if revoked_at is not None else {}  # fmt: skip
    resource = {
        "resourceType": "Consent",
        "id": consent_fhir_id(consent.consent_id),
        **revoked,
        **({} if consent.status == "pending" else {"identifier": [{"system": CONSENT_SYSTEM,
                                                                 "value": str(consent.consent_id)}]}),
        "status": CONSENT_STATUS[consent.status],
        "scope": _concept("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy", "Privacy Consent"),
        "category": [_concept("http://loinc.org", "59284-0", "Patient Consent")],
        "patient": _account(PATIENT_SYSTEM, consent.patient),
        "performer": [_account(PATIENT_SYSTEM, consent.patient)],
        **({"dateTime": _instant(granted_at)} if granted_at is not None else {}),
        "policyRule": _concept("http://terminology.hl7.org/CodeSystem/v3-ActCode", "OPTIN", "opt-in"),
        "provision": {
            "type": "permit",
            "period": {"start": _instant(consent.valid_from), "end": _instant(consent.valid_until)},
            "actor": [{"role": _concept(_PARTICIPATION, "IRCP", "information recipient"), "reference": actor_ref}],
            "purpose": [purpose_coding(p) for p in from_bitset(Purpose, consent.purposes)],
            "code": [_concept(CATEGORY_SYSTEM, c.name.lower(), c.name.replace("_", " ").lower())
                     for c in from_bitset(Category, consent.categories)],
        },
    }  # fmt: skip
    return _validated(Consent, resource)


def ndjson(resources: Iterable[dict[str, Any]]) -> Iterator[str]:
    """FHIR bulk-data NDJSON: one resource per line."""
    for resource in resources:
        yield json.dumps(resource, separators=(",", ":")) + "\n"


def bundle(resources: Iterable[dict[str, Any]], *, bundle_type: str = "collection") -> dict[str, Any]:
    """A validated Bundle of the given resources (each entry with its logical fullUrl)."""
    entries = [{"fullUrl": f"urn:medledger:{r['resourceType']}/{r['id']}", "resource": r} for r in resources]
    now = int(datetime.now(UTC).timestamp())
    resource = {"resourceType": "Bundle", "type": bundle_type, "timestamp": _instant(now),
                "total": len(entries) if bundle_type == "searchset" else None, "entry": entries}  # fmt: skip
    resource = {k: v for k, v in resource.items() if v is not None}
    return _validated(Bundle, resource)
