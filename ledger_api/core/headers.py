"""The ``X-MedLedger-*`` header names, one constant each, shared by the node that sends or reads them
and by its clients (the CLI, peer nodes, the tests). Written as the documents spell them; HTTP
header names are case-insensitive, and the request signature lower-cases them (``auth.signing``).
"""

from __future__ import annotations

# -- a member's signed request (docs/request-signature.md)
SIGNER = "X-MedLedger-Signer"
TIMESTAMP = "X-MedLedger-Timestamp"
NONCE = "X-MedLedger-Nonce"
CONTENT_SHA256 = "X-MedLedger-Content-SHA256"
SIGNATURE = "X-MedLedger-Signature"

# -- a patient's proof carried by a member's request (auth.patient_proof)
ON_BEHALF_OF = "X-MedLedger-On-Behalf-Of"

# -- a released record: what decrypting it needs, and where the release stands in the access log
RECORD_ID = "X-MedLedger-Record-Id"
VERSION = "X-MedLedger-Version"
CUSTODIAN = "X-MedLedger-Custodian"
SEALED_BY = "X-MedLedger-Sealed-By"
PATIENT = "X-MedLedger-Patient"
CATEGORY = "X-MedLedger-Category"
MEDIA_TYPE = "X-MedLedger-Media-Type"
CONTENT_HASH = "X-MedLedger-Content-Hash"
WRAPPED_KEY = "X-MedLedger-Wrapped-Key"
ACCESS_SEQUENCE = "X-MedLedger-Access-Sequence"
BASIS = "X-MedLedger-Basis"
#: a record fetched through another member: the release's sequence in the custodian's log
CUSTODIAN_ACCESS_SEQUENCE = "X-MedLedger-Custodian-Access-Sequence"
#: a handed-over record: the salt that opens its anchor's subject commitment with patient and category
SUBJECT_SALT = "X-MedLedger-Subject-Salt"
#: a handed-over record: the day of care its anchor's commitment binds (ISO date; absent when not stated)
ENCOUNTER_DATE = "X-MedLedger-Encounter-Date"

# -- a webhook delivery (notifications)
EVENT = "X-MedLedger-Event"
EVENT_ID = "X-MedLedger-Event-Id"
#: the public key a patient's own copy of a record is wrapped for (base64; see records.self_access)
READER_KEY = "X-MedLedger-Reader-Key"
#: a patient's own copy: the record's FHIR resource type, and the salt that opens its anchor
FHIR_RESOURCE_TYPE = "X-MedLedger-Fhir-Resource-Type"
