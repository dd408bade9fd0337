"""The consortium's shared vocabulary: data categories and purposes of use.

Both are bit positions in the consent registry's bit sets (16 categories, 8 purposes), so their
numbers are part of the on-chain format: append, never renumber. Purposes carry their HL7 v3
ActReason (PurposeOfUse) code for interoperability (FHIR AuditEvent / Consent).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum, StrEnum


class Category(IntEnum):
    """Kinds of medical data a consent can cover (bit i of a category set)."""

    LABS = 0
    IMAGING = 1
    MEDICATION = 2
    DIAGNOSES = 3
    MENTAL_HEALTH = 4
    GENOMICS = 5
    NOTES = 6
    ALLERGIES = 7
    IMMUNIZATIONS = 8
    PROCEDURES = 9
    VITAL_SIGNS = 10
    REPRODUCTIVE_HEALTH = 11
    SUBSTANCE_USE = 12
    INFECTIOUS_DISEASE = 13
    DOCUMENTS = 14


class Purpose(IntEnum):
    """Purposes of use a consent can cover (bit i of a purpose set)."""

    TREATMENT = 0
    BILLING = 1
    OPERATIONS = 2
    RESEARCH = 3
    PUBLIC_HEALTH = 4
    CARE_COORDINATION = 5
    PATIENT_REQUEST = 6
    LEGAL = 7

    @property
    def hl7_code(self) -> str:
        """HL7 v3 ActReason code (system http://terminology.hl7.org/CodeSystem/v3-ActReason)."""
        return _HL7_PURPOSE[self]


_HL7_PURPOSE = {
    Purpose.TREATMENT: "TREAT",
    Purpose.BILLING: "HPAYMT",
    Purpose.OPERATIONS: "HOPERAT",
    Purpose.RESEARCH: "HRESCH",
    Purpose.PUBLIC_HEALTH: "PUBHLTH",
    Purpose.CARE_COORDINATION: "CAREMGT",
    Purpose.PATIENT_REQUEST: "PATRQT",
    Purpose.LEGAL: "HLEGAL",
}


def bitset(items: Iterable[IntEnum]) -> int:
    """The bit set of the given categories or purposes."""
    value = 0
    for item in items:
        value |= 1 << int(item)
    return value


def from_bitset(enum: type[Category] | type[Purpose], value: int) -> list[IntEnum]:
    """The members of ``enum`` present in bit set ``value``."""
    return [member for member in enum if value >> int(member) & 1]


#: The API's names for categories and purposes (``labs``, ``treatment`` ...): readable in URLs and
#: OpenAPI, while the numbers above stay the on-chain format.
CategoryName = StrEnum("CategoryName", {c.name: c.name.lower() for c in Category})  # type: ignore[misc]
PurposeName = StrEnum("PurposeName", {p.name: p.name.lower() for p in Purpose})  # type: ignore[misc]


def category_of(name: StrEnum) -> Category:
    return Category[name.name]


def purpose_of(name: StrEnum) -> Purpose:
    return Purpose[name.name]
