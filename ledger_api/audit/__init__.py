"""Independent audit of the access trail: chain view, verification, reports, FHIR export."""
