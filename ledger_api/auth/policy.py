"""Who may do what: every authorisation rule of the node, in one table, named after what it allows.

Why one module: a rule written where it is used drifts (the same "patient or delegate" check was
spelled five ways in twelve files, one of them re-checking with a 400 what a dependency had
refused with a 403). Here each rule says who passes it, in the roles below, and the sentence a
refused caller reads. Routes declare their rule (``Allowed(rule)`` as their caller dependency:
the caller's role is checked before anything else runs); where the rule is about one patient and
the patient is known only later (a record's), the service applies the same rule with the patient
(``require``). The authorisation-matrix test reads this table and the routes' declarations, and
the OpenAPI document's security follows from them.

Roles (of a caller towards one patient):
- ``local``: this node's own hospital system;
- ``remote``: another member's system;
- ``auditor``: an active auditor;
- ``patient``: the patient themself (signed in here, or through a member's node with their proof);
- ``delegate``: an account the chain names as the patient's delegate (guardian) who manages their consents;
- ``viewing-delegate``: a delegate the patient appointed to view only (records, consents, history);
- ``other-patient``: any other patient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ledger_api.auth.caller import Caller
from ledger_api.auth.delegation import standing
from ledger_api.chain.types import DelegateScope
from ledger_api.errors import Forbidden, NotFound
from ledger_api.node import Node

Role = Literal["local", "remote", "auditor", "patient", "delegate", "viewing-delegate", "other-patient"]
PATIENT_ROLES: frozenset[Role] = frozenset({"patient", "delegate", "viewing-delegate"})


@dataclass(frozen=True)
class Rule:
    """One authorisation rule. ``allows``: the roles that pass; ``denial``: what a refused caller reads
    (code ``role-not-allowed``, or ``patient-scope`` for a patient asking about another patient, or
    ``remote_code`` for another member). ``hidden_code``: refuse with a 404 of that code instead, saying
    nothing more than a missing thing would (the caller may not learn that it exists). ``in_person``: a
    patient must be signed in here, not reach this node through another member's node."""

    name: str
    allows: frozenset[Role]
    denial: str
    remote_code: str = "role-not-allowed"
    hidden_code: str = ""
    in_person: bool = False

    @property
    def patients_may(self) -> bool:
        return bool(self.allows & PATIENT_ROLES)


def _rule(
    name: str,
    allows: set[Role],
    denial: str,
    *,
    remote_code: str = "role-not-allowed",
    hidden_code: str = "",
    in_person: bool = False,
) -> Rule:
    return Rule(name, frozenset(allows), denial, remote_code, hidden_code, in_person)


# --------------------------------------------------------------------------- the rules

OWN_SYSTEM = _rule("this node's own hospital system", {"local"}, "only this node's own hospital system may do this")
MEMBER_OR_AUDITOR = _rule(
    "a member system or an auditor", {"local", "remote", "auditor"}, "only members and auditors may do this"
)
ANOTHER_MEMBER = _rule(
    "another member's system (not this node's own)", {"remote"}, "only another member's node may do this"
)
ANYONE_SIGNED_IN = _rule(
    "any member, auditor or patient",
    {"local", "remote", "auditor", "patient", "delegate", "viewing-delegate", "other-patient"},
    "sign the request as a member, or sign in as a patient",
)

OWN_SYSTEM_OR_AUDITOR = _rule(
    "this node's own hospital system or an auditor",
    {"local", "auditor"},
    "only this node's own hospital system or an auditor may do this",
)
OWN_SYSTEM_OR_AUDITOR_READS_MEMBER_LOG = _rule(
    "this node's own hospital system or an auditor reads this member's access log",
    {"local", "auditor"},
    "a member sees (and exports) its own log, not another member's",
    remote_code="member-scope",
)
PATIENT_DELEGATE_OR_MEMBER_READS_RECORDS = _rule(
    "the patient, a delegate or a member lists the patient's records (another member: the categories it may read now)",
    {"patient", "delegate", "viewing-delegate", "local", "remote"},
    "patients see only their own records (or those of patients they are delegate for); auditors see the trail "
    "and hashes, not record listings",
)
CUSTODIAN_OR_CONSENTED_MEMBER_READS_CONTENT = _rule(
    "the custodian's own system, or a member a consent or its break-glass allows now, reads a record's content",
    {"local", "remote"},
    "only members receive records (auditors never see content)",
)
PATIENT_OR_DELEGATE_READS_OWN_CONTENT = _rule(
    "the patient or a delegate takes a copy of the patient's own record (wrapped for a key only they hold)",
    {"patient", "delegate", "viewing-delegate"},
    "a record's own copy is for its patient (or their delegate); members read under consent at "
    "/v1/records/{record_id}/content",
)
PATIENT_DELEGATE_OR_MEMBER_RESTRICTS = _rule(
    "the patient, a delegate or a member (passing on their signed request) restricts a patient's record",
    {"patient", "delegate", "local", "remote"},
    "only the patient (or a delegate), or a member passing on their signed request, changes a restriction",
)
AUDITOR_APPROVES = _rule("an auditor", {"auditor"}, "only an active auditor approves a legal erasure order")
CUSTODIAN_OR_PATIENT_ERASES = _rule(
    "the custodian's own system or the patient erases a record",
    {"local", "patient"},
    "only the custodian or the patient may erase a record",
)
PATIENT_DELEGATE_OR_ANY_MEMBER_READS_CONSENTS = _rule(
    "the patient, a delegate, a member or an auditor reads the patient's consents",
    {"patient", "delegate", "viewing-delegate", "local", "remote", "auditor"},
    "patients see only their own consents (or those they are delegate for)",
)
PATIENT_DELEGATE_OR_MEMBER_RELAYS = _rule(
    "the patient, a delegate or a member relays a patient-signed message",
    {"patient", "delegate", "local", "remote"},
    "auditors do not relay consents; patients relay only their own consents (or those they are delegate for)",
)
PATIENT_DELEGATE_MEMBER_OR_AUDITOR_FOLLOWS_RELAY = _rule(
    "the patient, a delegate, a member or an auditor follows a relay",
    {"patient", "delegate", "viewing-delegate", "local", "remote", "auditor"},
    "no such relay",
    hidden_code="relay-not-found",
)
PATIENT_DELEGATE_OR_OWN_SYSTEM_LISTS_DELEGATES = _rule(
    "the patient, a delegate or this node's own system lists the patient's delegates",
    {"patient", "delegate", "viewing-delegate", "local"},
    "only this node's own hospital system or the patient lists delegates; auditors do not",
)
PATIENT_DELEGATE_OR_OWN_SYSTEM_READS_SUCCESSION = _rule(
    "the patient, a delegate or this node's own system reads which key signs for the account and the recovery "
    "under way",
    {"patient", "delegate", "viewing-delegate", "local"},
    "an account's keys and recovery are for the patient (or a delegate) and the desk of the hospital approving it",
)
PATIENT_OR_DELEGATE_READS_ACCOUNT_HISTORY = _rule(
    "the patient or a delegate reads who changed the patient's consents, delegates and restriction",
    {"patient", "delegate", "viewing-delegate"},
    "a patient's account history is theirs (and their delegates') to see; members read consents at "
    "/v1/patients/{patient}/consents",
)
PATIENT_DELEGATE_OWN_SYSTEM_OR_AUDITOR_READS_ACCESS_LOG = _rule(
    "the patient, a delegate, this node's own system or an auditor reads who accessed the patient's records here",
    {"patient", "delegate", "viewing-delegate", "local", "auditor"},
    "patients see only their own history (or that of patients they are delegate for); "
    "a member sees its own log, not another member's",
    remote_code="member-scope",
)
PATIENT_DELEGATE_OR_OWN_SYSTEM_READS_NOTIFICATIONS = _rule(
    "the patient, a delegate or this node's own system reads the notifications owed for the patient's account",
    {"patient", "delegate", "viewing-delegate", "local"},
    "a patient's notifications are theirs (and their delegate's) to see",
)
PATIENT_OR_DELEGATE_SUBSCRIBES = _rule(
    "a patient subscribes to their own account's events (or to one they are delegate for); an auditor to "
    "break-glass; this node's own system to grants, revocations and request outcomes naming its hospital",
    {"patient", "delegate", "viewing-delegate", "auditor", "local"},
    "subscriptions are for patients (to their own account, or one they are delegate for), auditors, and a "
    "member's own system at its own node",
)
PATIENT_OR_DELEGATE_SEES_OVERVIEW = _rule(
    "the patient or a delegate sees the patient's overview across the consortium",
    {"patient", "delegate", "viewing-delegate"},
    "this view is the patient's own: patients see only themselves (or patients they are delegate for); "
    "members ask through /v1/consortium/...",
)
PATIENT_OR_DELEGATE_OFFERS_LINK = _rule(
    "a patient (or delegate) signed in here offers this hospital a signed link to its patient number",
    {"patient", "delegate"},
    "only the patient (or a delegate), signed in at this hospital, offers a link to its patient number",
    in_person=True,
)
PATIENT_DELEGATE_OR_OWN_SYSTEM_READS_LINKS = _rule(
    "the patient, a delegate or this node's own system reads the patient's link to this hospital's number",
    {"patient", "delegate", "viewing-delegate", "local"},
    "a patient's link to a hospital's number is for the patient (or a delegate) and that hospital",
)
PATIENT_DELEGATE_OR_MEMBER_REMOVES_LINK = _rule(
    "the patient or a delegate (through any member's node) removes a link to a hospital's number",
    {"patient", "delegate", "remote"},
    "only the patient (or a delegate) removes their link; the signed statement says so",
)
PATIENT_DELEGATE_OR_OWN_SYSTEM_READS_REQUESTS = _rule(
    "the patient, a delegate or this node's own system reads the consent requests this hospital raised for the patient",
    {"patient", "delegate", "viewing-delegate", "local"},
    "a hospital's consent requests are for the patient it asks (or a delegate) and the hospital itself",
)
PATIENT_DELEGATE_OR_MEMBER_ANSWERS_REQUEST = _rule(
    "the patient or a delegate (through any member's node) answers a hospital's consent request",
    {"patient", "delegate", "remote"},
    "only the patient (or a delegate) answers a consent request; the signed refusal says so",
)
PATIENT_ENDS_OWN_SESSION = _rule(
    "a patient signed in here ends their own session",
    {"patient", "other-patient"},
    "only patient sessions can be closed",
    in_person=True,
)

#: every rule, by name: what the authorisation-matrix test and the API reference read
RULES: dict[str, Rule] = {
    rule.name: rule
    for rule in (
        OWN_SYSTEM,
        MEMBER_OR_AUDITOR,
        ANOTHER_MEMBER,
        ANYONE_SIGNED_IN,
        OWN_SYSTEM_OR_AUDITOR,
        OWN_SYSTEM_OR_AUDITOR_READS_MEMBER_LOG,
        PATIENT_DELEGATE_OR_MEMBER_READS_RECORDS,
        CUSTODIAN_OR_CONSENTED_MEMBER_READS_CONTENT,
        CUSTODIAN_OR_PATIENT_ERASES,
        PATIENT_OR_DELEGATE_READS_OWN_CONTENT,
        PATIENT_DELEGATE_OR_MEMBER_RESTRICTS,
        AUDITOR_APPROVES,
        PATIENT_DELEGATE_OR_ANY_MEMBER_READS_CONSENTS,
        PATIENT_DELEGATE_OR_MEMBER_RELAYS,
        PATIENT_DELEGATE_MEMBER_OR_AUDITOR_FOLLOWS_RELAY,
        PATIENT_DELEGATE_OR_OWN_SYSTEM_LISTS_DELEGATES,
        PATIENT_OR_DELEGATE_READS_ACCOUNT_HISTORY,
        PATIENT_DELEGATE_OR_OWN_SYSTEM_READS_SUCCESSION,
        PATIENT_DELEGATE_OWN_SYSTEM_OR_AUDITOR_READS_ACCESS_LOG,
        PATIENT_DELEGATE_OR_OWN_SYSTEM_READS_NOTIFICATIONS,
        PATIENT_OR_DELEGATE_SUBSCRIBES,
        PATIENT_OR_DELEGATE_SEES_OVERVIEW,
        PATIENT_OR_DELEGATE_OFFERS_LINK,
        PATIENT_DELEGATE_OR_OWN_SYSTEM_READS_LINKS,
        PATIENT_DELEGATE_OR_MEMBER_REMOVES_LINK,
        PATIENT_DELEGATE_OR_OWN_SYSTEM_READS_REQUESTS,
        PATIENT_DELEGATE_OR_MEMBER_ANSWERS_REQUEST,
        PATIENT_ENDS_OWN_SESSION,
    )
}


# --------------------------------------------------------------------------- applying a rule


def role_of(node: Node, caller: Caller, patient: str | None = None) -> Role:
    """The caller's role towards ``patient``; without one, a patient caller counts as ``patient``
    (the patient is checked when it is known). The chain is read only to tell a delegate apart."""
    if caller.kind == "auditor":
        return "auditor"
    if caller.kind == "member":
        return "local" if caller.local else "remote"
    if patient is None or caller.address == patient:
        return "patient"
    delegation = standing(node, patient, caller.address)
    if delegation is None:
        return "other-patient"
    return "delegate" if delegation.scope == DelegateScope.MANAGE else "viewing-delegate"


def require(rule: Rule, node: Node, caller: Caller, patient: str | None = None) -> Role:
    """Refuses the caller unless ``rule`` allows its role (towards ``patient``, when given); the role."""
    if rule.in_person and caller.kind == "patient" and caller.via is not None:
        raise Forbidden(rule.denial, code="role-not-allowed")
    role = role_of(node, caller, patient)
    if caller.kind == "patient" and patient is None and rule.patients_may:
        return role  # the patient is checked once known
    if role in rule.allows:
        return role
    if rule.hidden_code:
        raise NotFound(rule.denial, code=rule.hidden_code)
    if role == "viewing-delegate" and "delegate" in rule.allows:
        raise Forbidden(
            "the patient appointed you to view, not to manage: only the patient or a delegate who manages their "
            "consents may do this",
            code="delegate-may-only-view",
        )
    if role == "other-patient" and rule.patients_may:
        raise Forbidden(rule.denial, code="patient-scope")
    raise Forbidden(rule.denial, code=rule.remote_code if role == "remote" else "role-not-allowed")


def allows(rule: Rule, node: Node, caller: Caller, patient: str | None = None) -> bool:
    """Whether ``rule`` lets the caller through (for answers that differ, rather than refusals)."""
    try:
        require(rule, node, caller, patient)
    except (Forbidden, NotFound):
        return False
    return True
