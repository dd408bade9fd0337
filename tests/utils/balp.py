"""IHE Basic Audit Log Patterns (BALP) PrivacyDisclosure rules, checked on exported AuditEvents.

What was used, and why: BALP's StructureDefinitions are published as the FHIR package ``ihe.iti.balp``
on packages.fhir.org only (not on npm, PyPI or Maven Central); this machine and CI cannot reach that
registry, so no FHIR validator here can load the profile. The constraints below are the profile's
(IHE.BasicAudit.PrivacyDisclosure.Source / .Recipient, BALP 1.1), written out as checks, applied after
the resource passed base FHIR R4 validation (``fhir.resources``). Each returns the rules a resource breaks.
"""

from __future__ import annotations

from typing import Any

DCM = "http://dicom.nema.org/resources/ontology/DCM"
LIFECYCLE = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
PROFILE = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PrivacyDisclosure."


def _agents(event: dict[str, Any], code: str) -> list[dict[str, Any]]:
    return [
        a
        for a in event.get("agent", [])
        for c in a.get("type", {}).get("coding", [])
        if c.get("system") == DCM and c.get("code") == code
    ]


def _entities(event: dict[str, Any], entity_type: str, role: str) -> list[dict[str, Any]]:
    return [
        e
        for e in event.get("entity", [])
        if e.get("type", {}).get("system") == ENTITY_TYPE
        and e["type"].get("code") == entity_type
        and e.get("role", {}).get("system") == OBJECT_ROLE
        and e["role"].get("code") == role
    ]


def privacy_disclosure_violations(event: dict[str, Any], side: str) -> list[str]:
    """``side``: "Source" (the custodian's event) or "Recipient" (the receiving member's)."""
    broken = []
    expected_type = {"Source": ("110106", "Export"), "Recipient": ("110107", "Import")}[side]
    if PROFILE + side not in event.get("meta", {}).get("profile", []):
        broken.append(f"meta.profile does not name PrivacyDisclosure.{side}")
    if (event.get("type", {}).get("system"), event.get("type", {}).get("code")) != (DCM, expected_type[0]):
        broken.append(f"type must be DCM#{expected_type[0]} ({expected_type[1]})")
    if not any(s.get("system") == LIFECYCLE and s.get("code") == "disclose" for s in event.get("subtype", [])):
        broken.append("subtype must include iso-21089-lifecycle#disclose")
    for code, name in (("110153", "source"), ("110152", "recipient")):
        found = _agents(event, code)
        if len(found) != 1 or not found[0].get("who"):
            broken.append(f"exactly one {name} agent (DCM#{code}) with who")
    if len(_entities(event, "1", "1")) != 1 or not _entities(event, "1", "1")[0].get("what"):
        broken.append("exactly one patient entity (type 1 Person, role 1 Patient) with what")
    if not _entities(event, "2", "4"):
        broken.append("at least one data entity (type 2 System Object, role 4 Domain Resource)")
    if not event.get("recorded") or "outcome" not in event or "source" not in event:
        broken.append("recorded, outcome and source are required")
    if event.get("modifierExtension"):
        broken.append("modifierExtension is not allowed")
    return broken
