"""What a signed-in patient sees of themself across the whole consortium: records and access history.

The node the patient signed in to asks every member at once (``peers.ask_every_member``) with the
patient's consortium-view proof (``auth.patient_proof``); each member answers under its own
ownership rules, as if the patient had asked it directly. Members that are down or slow are
reported, not hidden, so the portal can say "Nan'ao did not answer" instead of showing a history
that looks complete but is not. Break-glass entries carry their review state, read from the chain.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from anyio.to_thread import run_sync
from pydantic import BaseModel, TypeAdapter

from ledger_api.access import service as access
from ledger_api.access.models import AccessEntryPublic
from ledger_api.auth import patient_proof, policy
from ledger_api.auth.caller import Caller
from ledger_api.chain.types import ReviewLabel
from ledger_api.consortium.peers import FANOUT_BUSY, MemberAnswer, ask_every_member, member_nodes, only_patients
from ledger_api.core import jsontext
from ledger_api.core.db import session_scope
from ledger_api.errors import ContractReverted
from ledger_api.node import Node
from ledger_api.records import service as records
from ledger_api.records.models import RecordPublic, RecordVersionPublic

_ENTRIES = TypeAdapter(list[AccessEntryPublic])
_RECORDS = TypeAdapter(list[RecordPublic])


class MemberOutcome(BaseModel):
    """How one member answered: "returned", or why not (a patient must know the view is partial)."""

    member: str
    name: str
    status: Literal["returned", "denied", "unreachable", "error"]
    detail: str | None = None


class PatientRecord(RecordPublic):
    custodian_name: str


class PatientRecords(BaseModel):
    patient: str
    elapsed_ms: float
    members: list[MemberOutcome]
    records: list[PatientRecord]


# RecordPublic names RecordVersionPublic before defining it; a subclass must resolve it itself
PatientRecord.model_rebuild(_types_namespace={"RecordVersionPublic": RecordVersionPublic})
PatientRecords.model_rebuild()


class TimelineEntry(AccessEntryPublic):
    #: the member whose log holds the entry (the custodian that released the record)
    logged_by: str
    logged_by_name: str
    requester_name: str
    #: break-glass entries: the auditor's review of the declaration, read from the chain now
    review: ReviewLabel | None = None


class PatientHistory(BaseModel):
    patient: str
    elapsed_ms: float
    members: list[MemberOutcome]
    timeline: list[TimelineEntry]


def _check_patient(node: Node, caller: Caller, patient: str) -> None:
    policy.require(policy.PATIENT_OR_DELEGATE_SEES_OVERVIEW, node, caller, patient)


async def ask_for_patient(node: Node, caller: Caller, patient: str, **kwargs: Any) -> list[MemberAnswer[Any]]:
    """The patient's own question to every member (with their consortium-view proof): checks the caller
    (now), then asks every member, at most ``peers.fanouts_per_key`` at once per patient."""
    await run_sync(_check_patient, node, caller, patient, limiter=node.request_threads)
    with node.fanout_slots.hold(f"patient:{patient}", FANOUT_BUSY):
        if caller.proof is not None:
            return await ask_every_member(node, headers={patient_proof.HEADER: caller.proof}, **kwargs)
        # signed in without the consortium-view resource: this node answers, the others are not asked
        answers: list[MemberAnswer[Any]] = []
        for member in await run_sync(member_nodes, node, limiter=node.request_threads):
            if member.account == node.address:
                value = await run_sync(kwargs["local"], limiter=node.request_threads)
                answers.append(MemberAnswer(member=member, status="returned", value=value))
            else:
                answers.append(
                    MemberAnswer(
                        member=member, status="denied", detail="the sign-in did not allow consortium-wide viewing"
                    )
                )
        return answers


def _outcomes(answers: list[MemberAnswer[Any]]) -> list[MemberOutcome]:
    return [
        MemberOutcome(member=a.member.account, name=a.member.name, status=a.status, detail=a.detail) for a in answers
    ]


async def patient_records(node: Node, caller: Caller, patient: str, *, deadline_s: float = 3.0) -> PatientRecords:
    """The patient's records at every member (metadata only), newest first; a member's answer about
    anyone else is dropped."""
    started = time.monotonic()
    answers = await ask_for_patient(
        node,
        caller,
        patient,
        local=lambda: records.list_records(node, caller, patient, None),
        path=f"/v1/patients/{patient}/records",
        params={},
        parse=lambda response: only_patients(_RECORDS.validate_python(jsontext.loads(response.content)), patient),
        deadline_s=deadline_s,
    )
    found = [
        PatientRecord(**record.model_dump(), custodian_name=a.member.name)
        for a in answers
        if a.status == "returned"
        for record in a.value or []
    ]
    found.sort(key=lambda r: r.created_at, reverse=True)
    return PatientRecords(
        patient=patient,
        elapsed_ms=round((time.monotonic() - started) * 1000, 1),
        members=_outcomes(answers),
        records=found,
    )


async def patient_history(
    node: Node, caller: Caller, patient: str, *, limit: int = 200, deadline_s: float = 3.0
) -> PatientHistory:
    """Who read the patient's records at every member: newest first, break-glass with its review state."""
    started = time.monotonic()

    def local() -> list[AccessEntryPublic]:
        with session_scope(node.engine) as session:
            return access.list_entries(session, patient=patient, limit=limit, newest_first=True)

    answers = await ask_for_patient(
        node,
        caller,
        patient,
        local=local,
        path=f"/v1/patients/{patient}/access-log",
        params={"limit": limit, "newest_first": "true"},
        parse=lambda response: _ENTRIES.validate_python(jsontext.loads(response.content)),
        deadline_s=deadline_s,
    )
    return await run_sync(_timeline, node, patient, answers, limit, started, limiter=node.request_threads)


def _timeline(node: Node, patient: str, answers: list[MemberAnswer[Any]], limit: int, started: float) -> PatientHistory:
    names = {m.account: m.name for m in node.chain.registry.members()}
    reviews: dict[str, ReviewLabel | None] = {}
    timeline = []
    for answer in answers:
        for entry in answer.value or []:
            if entry.member != answer.member.account or entry.patient.lower() != patient.lower():
                continue  # a member answers for its own log and this patient only; anything else is not trusted
            review = None
            if entry.break_glass:
                if entry.authorization not in reviews:
                    reviews[entry.authorization] = _review_of(node, entry.authorization)
                review = reviews[entry.authorization]
            timeline.append(
                TimelineEntry(
                    **entry.model_dump(),
                    logged_by=answer.member.account,
                    logged_by_name=answer.member.name,
                    requester_name=names.get(entry.requester, entry.requester),
                    review=review,
                )
            )
    timeline.sort(key=lambda e: e.created_at, reverse=True)
    return PatientHistory(
        patient=patient,
        elapsed_ms=round((time.monotonic() - started) * 1000, 1),
        members=_outcomes(answers),
        timeline=timeline[:limit],
    )


def _review_of(node: Node, authorization: str) -> ReviewLabel | None:
    try:
        return node.chain.consents.break_glass(int(authorization, 16)).review.label
    except (ValueError, ContractReverted):
        return None
