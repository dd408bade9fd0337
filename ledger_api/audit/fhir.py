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

Disclosures follow IHE Basic Audit Log Patterns (BALP): a release to another member is a
``PrivacyDisclosure`` at the custodian (``IHE.BasicAudit.PrivacyDisclosure.Source``: DICOM 110106 Export,
ISO 21089 ``disclose``, agents for the source and the recipient), and the recipient's import entry is the
matching ``PrivacyDisclosure.Recipient`` event (110107 Import), both naming the custodian's log entry.
Every purpose of use is a CodeableConcept of its own (one ActReason code each).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.consent import Consent
from pydantic import ValidationError

from ledger_api.consents.schemas import ConsentView
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
_LIFECYCLE = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit"
BALP_SOURCE, BALP_RECIPIENT = f"{BALP}.PrivacyDisclosure.Source", f"{BALP}.PrivacyDisclosure.Recipient"

#: MedLedger's own naming systems (pseudonymous accounts and on-chain ids)
MEMBER_SYSTEM = "urn:medledger:member-account"
PATIENT_SYSTEM = "urn:medledger:patient-account"
CLINICIAN_SYSTEM = "urn:medledger:clinician"
RECORD_SYSTEM = "urn:medledger:record"
CONSENT_SYSTEM = "urn:medledger:consent"
#: the privacy notice a consent was signed under: ``<this>:<version>:sha256:<hex>`` (GET /v1/privacy-notice/{version})
NOTICE_SYSTEM = "urn:medledger:privacy-notice"
BREAK_GLASS_SYSTEM = "urn:medledger:break-glass"
CATEGORY_SYSTEM = "urn:medledger:data-category"

_PURPOSE_DISPLAY = {
    "TREAT": "treatment",
    "HPAYMT": "healthcare payment",
    "HOPERAT": "healthcare operations",
    "HRESCH": "healthcare research",
    "PUBHLTH": "public health",
    "CAREMGT": "care management",
    "PATRQT": "patient requested",
    "HLEGAL": "legal",
}


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


def _validated(model: type[Any], resource: dict[str, Any]) -> dict[str, Any]:
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


def _purposes(purpose: int, break_glass: bool) -> list[dict[str, Any]]:
    """purposeOfEvent: one CodeableConcept per purpose (a break-glass access adds BTG and ETREAT)."""
    concepts = [{"coding": [purpose_coding(purpose)]}]
    if break_glass:
        concepts += [
            _concept(ACT_REASON, "BTG", "break the glass"),
            _concept(ACT_REASON, "ETREAT", "Emergency Treatment"),
        ]
    return concepts


def _entry_entity(custodian: str, sequence: int, details: list[dict[str, str]]) -> dict[str, Any]:
    """The custodian's access-log entry: what pairs the source's and the recipient's events."""
    what = {"identifier": {"system": "urn:medledger:access-entry", "value": f"{custodian.lower()}/{sequence}"}}
    return {"what": what, "type": _coding(_AUDIT_ENTITY_TYPE, "4", "Other"), "detail": details}


def _record_entity(record_id: str, version: int) -> dict[str, Any]:
    return {
        "what": _account(RECORD_SYSTEM, record_id),
        "type": _coding(_AUDIT_ENTITY_TYPE, "2", "System Object"),
        "role": _coding(_OBJECT_ROLE, "4", "Domain Resource"),
        "detail": [{"type": "record-version", "valueString": str(version)}],
    }


def _patient_entity(patient: str) -> dict[str, Any]:
    return {
        "what": _account(PATIENT_SYSTEM, patient),
        "type": _coding(_AUDIT_ENTITY_TYPE, "1", "Person"),
        "role": _coding(_OBJECT_ROLE, "1", "Patient"),
    }


def _disclosure_agents(
    custodian: str, recipient: str, clinician: str, purpose: int, names: dict[str, str]
) -> list[dict[str, Any]]:
    """BALP's source and recipient agents, and the clinician who asked at the recipient."""
    return [
        {
            "type": _concept(_DCM, "110153", "Source Role ID"),
            "who": _account(MEMBER_SYSTEM, custodian, names.get(custodian.lower())),
            "requestor": False,
        },
        {
            "type": _concept(_DCM, "110152", "Destination Role ID"),
            "who": _account(MEMBER_SYSTEM, recipient, names.get(recipient.lower())),
            "requestor": True,
            "purposeOfUse": [{"coding": [purpose_coding(purpose)]}],
        },
        {
            "type": _concept(_PARTICIPATION, "AUT", "author (originator)"),
            "who": {"identifier": {"system": f"{CLINICIAN_SYSTEM}:{recipient.lower()}", "value": clinician}},
            "requestor": True,
        },
    ]


def audit_event(entry: dict[str, Any], names: dict[str, str] | None = None) -> dict[str, Any]:
    """One exported access-log entry (its canonical document plus ``entry_hash``) as an AuditEvent: a BALP
    PrivacyDisclosure at the source when another member received the record."""
    names = {k.lower(): v for k, v in (names or {}).items()}
    erase, handover = entry["action"] == "erase", entry["action"] == "handover"
    break_glass = entry["basis"] == "break_glass"
    requester, custodian = entry["requester"], entry["member"]
    disclosure = entry["action"] == "read" and requester.lower() != custodian.lower()
    entities: list[dict[str, Any]] = [
        _record_entity(entry["record_id"], entry["record_version"]),
        _patient_entity(entry["patient"]),
        _entry_entity(
            custodian,
            entry["sequence"],
            [
                {"type": "entry-hash", "valueString": entry["entry_hash"]},
                {"type": "sequence", "valueString": str(entry["sequence"])},
                {"type": "basis", "valueString": entry["basis"]},
                *(
                    [{"type": "chain-block", "valueString": str(entry["chain_block"])}]
                    if entry.get("chain_block") is not None
                    else []
                ),
            ],
        ),
    ]
    if entry["basis"] == "consent" and entry["authorization"]:
        consent_id = int(entry["authorization"], 16)
        entities.append(
            {
                "what": {
                    "reference": f"Consent/{consent_fhir_id(consent_id)}",
                    "identifier": {"system": CONSENT_SYSTEM, "value": str(consent_id)},
                },
                "type": _coding(_AUDIT_ENTITY_TYPE, "2", "System Object"),
                "role": _coding(_OBJECT_ROLE, "13", "Security Resource"),
            }
        )
    elif break_glass and entry["authorization"]:
        entities.append(
            {
                "what": {"identifier": {"system": BREAK_GLASS_SYSTEM, "value": str(int(entry["authorization"], 16))}},
                "type": _coding(_AUDIT_ENTITY_TYPE, "2", "System Object"),
                "role": _coding(_OBJECT_ROLE, "13", "Security Resource"),
            }
        )
    if disclosure:
        kind = {
            "meta": {"profile": [BALP_SOURCE]},
            "type": _coding(_DCM, "110106", "Export"),
            "subtype": [_coding(_LIFECYCLE, "disclose", "Disclose Record Lifecycle Event"), _coding(_RESTFUL, "read")],
            "action": "R",
        }
        agents = _disclosure_agents(custodian, requester, entry["clinician"], entry["purpose"], names)
    else:
        # the patient's own restriction and hiding changes update the record's processing; everything else reads
        # or deletes
        update = entry["action"] in ("restrict", "unrestrict", "hide", "unhide")
        kind = {
            "type": _coding(_DCM, "110106", "Export") if handover else _coding(_DCM, "110110", "Patient Record"),
            "subtype": [_coding(_RESTFUL, "delete" if erase else "update" if update else "read")],
            "action": "D" if erase else "U" if update else "R",
        }
        by_patient = entry["basis"] == "patient"
        agents = [
            {
                "type": _concept(_PARTICIPATION, "IRCP", "information recipient"),
                "who": _account(PATIENT_SYSTEM, requester)
                if by_patient
                else _account(MEMBER_SYSTEM, requester, names.get(requester.lower())),
                "requestor": True,
                "purposeOfUse": [{"coding": [purpose_coding(entry["purpose"])]}],
            },
            {
                "type": _concept(_PARTICIPATION, "AUT", "author (originator)"),
                "who": {
                    "identifier": {"system": f"{CLINICIAN_SYSTEM}:{requester.lower()}", "value": entry["clinician"]}
                },
                "requestor": True,
            },
            {
                "type": _concept(_PARTICIPATION, "CST", "custodian"),
                "who": _account(MEMBER_SYSTEM, custodian, names.get(custodian.lower())),
                "requestor": False,
            },
        ]
    resource = {
        "resourceType": "AuditEvent",
        "id": entry["entry_hash"],
        **kind,
        "recorded": _instant(entry["created_at"]),
        "outcome": "0",
        "purposeOfEvent": _purposes(entry["purpose"], break_glass),
        "agent": agents,
        "source": {
            "site": names.get(custodian.lower(), custodian.lower()),
            "observer": _account(MEMBER_SYSTEM, custodian, names.get(custodian.lower())),
            "type": [_coding(_SOURCE_TYPE, "4", "Application Server")],
        },
        "entity": entities,
    }
    return _validated(AuditEvent, resource)


def import_event(entry: dict[str, Any], recipient: str, names: dict[str, str] | None = None) -> dict[str, Any]:
    """The recipient's import entry (see access.imports) as a BALP PrivacyDisclosure at the recipient;
    its access-entry entity names the custodian's log entry, as the custodian's own event does."""
    names = {k.lower(): v for k, v in (names or {}).items()}
    custodian = entry["custodian"]
    entity_id = hashlib.sha256(f"import:{custodian.lower()}/{entry['custodian_sequence']}".encode()).hexdigest()
    resource = {
        "resourceType": "AuditEvent",
        "id": entity_id,
        "meta": {"profile": [BALP_RECIPIENT]},
        "type": _coding(_DCM, "110107", "Import"),
        "subtype": [_coding(_LIFECYCLE, "disclose", "Disclose Record Lifecycle Event")],
        "action": "C",
        "recorded": _instant(entry["created_at"]),
        "outcome": "0",
        "purposeOfEvent": _purposes(entry["purpose"], entry["basis"] == "break_glass"),
        "agent": _disclosure_agents(custodian, recipient, entry["clinician"], entry["purpose"], names),
        "source": {
            "site": names.get(recipient.lower(), recipient.lower()),
            "observer": _account(MEMBER_SYSTEM, recipient, names.get(recipient.lower())),
            "type": [_coding(_SOURCE_TYPE, "4", "Application Server")],
        },
        "entity": [
            _record_entity(entry["record_id"], entry["record_version"]),
            _patient_entity(entry["patient"]),
            _entry_entity(
                custodian,
                entry["custodian_sequence"],
                [
                    {"type": "sequence", "valueString": str(entry["custodian_sequence"])},
                    {"type": "basis", "valueString": entry["basis"]},
                    {"type": "content-hash", "valueString": entry["content_hash"]},
                ],
            ),
        ],
    }
    return _validated(AuditEvent, resource)


#: MedLedger's consent states in FHIR's Consent.status vocabulary
CONSENT_STATUS = {
    "active": "active",
    "not-yet-valid": "active",
    "expired": "inactive",
    "revoked": "inactive",
    "pending": "proposed",
}


def consent_resource(
    consent: ConsentView,
    names: dict[str, str] | None = None,
    *,
    granted_at: int | None = None,
    revoked_at: int | None = None,
) -> dict[str, Any]:
    """A patient's consent (as the API lists it) as an R4 Consent (privacy scope, opt-in, one permit
    provision); ``granted_at`` / ``revoked_at`` are block times when the caller knows them."""
    names = {k.lower(): v for k, v in (names or {}).items()}
    actors = [
        {
            "role": _concept(_PARTICIPATION, "IRCP", "information recipient"),
            "reference": _account(MEMBER_SYSTEM, grantee, names.get(grantee.lower())),
        }
        for grantee in consent.grantees
    ]
    care = {
        **({"start": consent.care_from.isoformat()} if consent.care_from else {}),
        **({"end": consent.care_to.isoformat()} if consent.care_to else {}),
    }
    notice = (
        {"policy": [{"uri": f"{NOTICE_SYSTEM}:{consent.notice_version}:sha256:{consent.notice_hash}"}]}
        if consent.notice_version and consent.notice_hash
        else {}
    )
    revoked = (
        {"extension": [{"url": "urn:medledger:consent-revoked-at", "valueInstant": _instant(revoked_at)}]}
        if revoked_at is not None
        else {}
    )
    resource = {
        "resourceType": "Consent",
        "id": consent_fhir_id(consent.consent_id),
        **revoked,
        **(
            {}
            if consent.status == "pending"
            else {"identifier": [{"system": CONSENT_SYSTEM, "value": str(consent.consent_id)}]}
        ),
        "status": CONSENT_STATUS[consent.status],
        "scope": _concept("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy", "Privacy Consent"),
        "category": [_concept("http://loinc.org", "59284-0", "Patient Consent")],
        "patient": _account(PATIENT_SYSTEM, consent.patient),
        "performer": [_account(PATIENT_SYSTEM, consent.patient)],
        **({"dateTime": _instant(granted_at)} if granted_at is not None else {}),
        **notice,
        "policyRule": _concept("http://terminology.hl7.org/CodeSystem/v3-ActCode", "OPTIN", "opt-in"),
        "provision": {
            "type": "permit",
            "period": {"start": _instant(consent.valid_from), "end": _instant(consent.valid_until)},
            **({"dataPeriod": care} if care else {}),
            "actor": actors,
            "purpose": [purpose_coding(p) for p in from_bitset(Purpose, consent.purposes)],
            "code": [
                _concept(CATEGORY_SYSTEM, c.name.lower(), c.name.replace("_", " ").lower())
                for c in from_bitset(Category, consent.categories)
            ],
        },
    }
    return _validated(Consent, resource)


#: a consent request's state as an R4 Consent status: asked for, then agreed to, refused, or lapsed
REQUEST_STATUS = {
    "requested": "proposed",
    "granted": "active",
    "denied": "rejected",
    "expired": "inactive",
    "withdrawn": "inactive",
}
CONSENT_REQUEST_SYSTEM = "urn:medledger:consent-request"


def consent_request_resource(request: Any) -> dict[str, Any]:
    """A hospital's consent request (``consent_requests.models.RequestView``) as an R4 Consent: ``proposed``
    while it waits, then ``active`` (granted: the grant's id as a second identifier), ``rejected`` or
    ``inactive`` (expired, withdrawn). The care whose records are wanted is the provision's ``dataPeriod``."""
    start = datetime.combine(request.access_from, datetime.min.time(), UTC)
    end = start.timestamp() + request.access_days * 86_400
    identifiers = [{"system": CONSENT_REQUEST_SYSTEM, "value": request.id}]
    if request.consent_id is not None:
        identifiers.append({"system": CONSENT_SYSTEM, "value": request.consent_id})
    data_period = {
        **({"start": request.care_from.isoformat()} if request.care_from else {}),
        **({"end": request.care_to.isoformat()} if request.care_to else {}),
    }
    resource = {
        "resourceType": "Consent",
        "id": f"request-{request.id}",
        "identifier": identifiers,
        "status": REQUEST_STATUS[request.state],
        "scope": _concept("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy", "Privacy Consent"),
        "category": [_concept("http://loinc.org", "59284-0", "Patient Consent")],
        "patient": _account(PATIENT_SYSTEM, request.patient),
        "dateTime": _instant(request.created_at.isoformat()),
        "organization": [_account(MEMBER_SYSTEM, request.requester, request.requester_name)],
        "policyRule": _concept("http://terminology.hl7.org/CodeSystem/v3-ActCode", "OPTIN", "opt-in"),
        "provision": {
            "type": "permit",
            "period": {"start": _instant(int(start.timestamp())), "end": _instant(int(end))},
            "actor": [
                {
                    "role": _concept(_PARTICIPATION, "IRCP", "information recipient"),
                    "reference": _account(MEMBER_SYSTEM, request.requester, request.requester_name),
                }
            ],
            "purpose": [purpose_coding(Purpose[p.upper()]) for p in request.purposes],
            "code": [_concept(CATEGORY_SYSTEM, c, c.replace("_", " ")) for c in request.categories],
            **({"dataPeriod": data_period} if data_period else {}),
        },
    }
    return _validated(Consent, resource)


def ndjson(resources: Iterable[dict[str, Any]]) -> Iterator[str]:
    """FHIR bulk-data NDJSON: one resource per line."""
    for resource in resources:
        yield json.dumps(resource, separators=(",", ":")) + "\n"


#: fullUrls of resources that have no RESTful location: stable urn:uuid names derived from type and id
_FULL_URL_NAMESPACE = uuid.UUID("6f1d3a52-8d0b-5c2e-9a51-0c6d6d1e4c10")


def full_url(resource: dict[str, Any]) -> str:
    """The entry's fullUrl: FHIR asks for an absolute URI; these resources are not served one by one, so a
    ``urn:uuid`` (RFC 4122 name-based, the same for the same resource in every export)."""
    name = f"{resource['resourceType']}/{resource['id']}"
    return f"urn:uuid:{uuid.uuid5(_FULL_URL_NAMESPACE, name)}"


def bundle(resources: Iterable[dict[str, Any]], *, bundle_type: str = "collection") -> dict[str, Any]:
    """A validated Bundle of the given resources (a searchset's entries are marked ``search.mode`` match)."""
    search = {"search": {"mode": "match"}} if bundle_type == "searchset" else {}
    entries = [{"fullUrl": full_url(r), "resource": r, **search} for r in resources]
    now = int(datetime.now(UTC).timestamp())
    resource = {
        "resourceType": "Bundle",
        "type": bundle_type,
        "timestamp": _instant(now),
        "total": len(entries) if bundle_type == "searchset" else None,
        "entry": entries,
    }
    resource = {k: v for k, v in resource.items() if v is not None}
    return _validated(Bundle, resource)
