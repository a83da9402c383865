"""Versions on the last update mutations without one (issue 16): patientArchive, visitCodeSetStatus,
messageGatewaySet, institutionSecurityUpdate, scheduleExceptionCancel, messageTemplateReset, and
questionnaireActivate / questionnaireRetire (which state the questionnaire's ``revision``, as questionnaireUpdate
does). For each: the version read goes through and moves the version; one read before another clerk's write is
a CONFLICT that writes nothing (no row, no audit event); without a version the change goes over the current
one, as before; a caller without the right is refused whatever version it states, on the trail."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from models import (
    Institution,
    MessageGateway,
    MessageTemplate,
    Patient,
    Questionnaire,
    ScheduleException,
    Session,
    VisitCode,
)
from tests.api.test_message_templates import SET as TEMPLATE_SET
from tests.api.test_message_templates import a_template
from tests.api.test_questionnaires import UPDATE as QUESTIONNAIRE_UPDATE
from tests.api.test_questionnaires import answered
from tests.api.test_questionnaires import create as a_questionnaire
from tests.api.test_schedules import EXCEPTION_ADD, a_schedule
from tests.api.test_visits import ADD_CODE, CATALOGUE, a_visit
from tests.factories import Response, Tenant, make_patient

Variables = dict[str, Any]
Snapshot = Callable[[], Awaitable[Any]]  # everything the mutation may write, to prove a refusal wrote nothing


@dataclass
class Prepared:
    variables: Variables  # the change, without its version
    read: int  # the version (revision) the clerk read
    rows: Snapshot
    other_clerk: Callable[[], Awaitable[None]] | None  # a write by someone else that moves the version
    answered: int | None = None  # the version the answer carries; None: the one read plus one


@dataclass(frozen=True)
class Case:
    name: str
    role: str  # may make the change
    denied: str  # may not
    query: str  # takes $version (or $revision); answers it at the mutation's root
    prepare: Callable[[Tenant], Awaitable[Prepared]]
    arg: str = "version"

    @property
    def root(self) -> str:
        return self.query.split("{", 1)[1].split("(")[0].strip()


def ok(reply: Response, root: str) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data[root]


async def values_of(model: Any, **where: Any) -> list[dict[str, Any]]:
    return list(await model.filter(**where).order_by("id").values())


# -- patientArchive --------------------------------------------------------------------------------------------

ARCHIVE = "mutation($id: ID!, $version: Int) { patientArchive(id: $id, version: $version) { version status } }"
PATIENT_UPDATE = """mutation($id: ID!, $input: PatientUpdateInput!) {
  patientUpdate(id: $id, input: $input) { version } }"""


async def a_patient(tenant: Tenant) -> Prepared:
    patient = await make_patient(tenant)

    async def other_clerk() -> None:
        ok(await tenant.call("front_desk", PATIENT_UPDATE, id=str(patient), input={"occupation": "Teacher"}),
           "patientUpdate")

    return Prepared({"id": str(patient)}, 1, lambda: values_of(Patient, id=patient), other_clerk)


UNARCHIVE = "mutation($id: ID!, $version: Int) { patientUnarchive(id: $id, version: $version) { version status } }"


async def an_archived_patient(tenant: Tenant) -> Prepared:
    ready = await a_patient(tenant)
    ok(await tenant.call("front_desk", ARCHIVE, id=ready.variables["id"]), "patientArchive")
    return Prepared(ready.variables, 2, ready.rows, ready.other_clerk)


# -- visitCodeSetStatus ----------------------------------------------------------------------------------------

CODE_STATUS = """mutation($id: ID!, $status: ProcedureStatus!, $version: Int) {
  visitCodeSetStatus(id: $id, status: $status, version: $version) { version status } }"""


async def a_pending_procedure(tenant: Tenant) -> Prepared:
    ok(await tenant.call("admin", CATALOGUE, code="IMPLANT"), "serviceItemCreate")
    visit = (await a_visit(tenant, await make_patient(tenant), role="nurse"))["id"]
    code = ok(await tenant.call("nurse", ADD_CODE, id=visit, input={"kind": "PROCEDURE", "code": "IMPLANT",
                                                                   "status": "PENDING"}), "visitCodeAdd")["id"]

    async def other_clerk() -> None:
        ok(await tenant.call("doctor", CODE_STATUS, id=code, status="NOT_DONE"), "visitCodeSetStatus")

    return Prepared({"id": code, "status": "DONE"}, 1, lambda: values_of(VisitCode, id=uuid.UUID(code)), other_clerk)


# -- messageGatewaySet -----------------------------------------------------------------------------------------

GATEWAY = """mutation($input: MessageGatewayInput!, $version: Int) {
  messageGatewaySet(input: $input, version: $version) { version timeoutMs updatedAt } }"""
SECRET = "s3cret-Signing-Key-0123456789"


async def a_gateway(tenant: Tenant) -> Prepared:
    ok(await tenant.call("admin", GATEWAY, input={"channel": "SMS", "url": "https://sms.example.com/send",
                                                  "secret": SECRET}, version=0), "messageGatewaySet")

    async def other_clerk() -> None:
        ok(await tenant.call("admin", GATEWAY, input={"channel": "SMS", "active": False}), "messageGatewaySet")

    return Prepared({"input": {"channel": "SMS", "timeoutMs": 3000}}, 1,
                    lambda: values_of(MessageGateway, institution_id=tenant.id), other_clerk)


# -- institutionSecurityUpdate ---------------------------------------------------------------------------------

SECURITY = """mutation($required: Boolean!, $version: Int) {
  institutionSecurityUpdate(totpRequired: $required, version: $version) { version totpRequired } }"""


async def the_institution(tenant: Tenant) -> Prepared:
    async def rows() -> Any:  # the row, and the sessions requiring a second factor would end
        return (await values_of(Institution, id=tenant.id),
                await Session.filter(staff__institution_id=tenant.id, revoked_at=None).count())

    async def other_clerk() -> None:
        ok(await tenant.call("admin", SECURITY, required=False), "institutionSecurityUpdate")

    return Prepared({"required": True}, 1, rows, other_clerk)


# -- scheduleExceptionCancel -----------------------------------------------------------------------------------

EXCEPTION_CANCEL = """mutation($id: ID!, $version: Int) {
  scheduleExceptionCancel(id: $id, version: $version) { version cancelledAt } }"""


async def a_leave(tenant: Tenant) -> Prepared:
    schedule = await a_schedule(tenant)
    day = (datetime.now(UTC) + timedelta(days=30)).astimezone(ZoneInfo("Asia/Shanghai")).replace(
        hour=9, minute=0, second=0, microsecond=0)
    leave = ok(await tenant.call("admin", EXCEPTION_ADD, id=schedule["id"], input={
        "kind": "LEAVE", "startsAt": day.isoformat(), "endsAt": (day + timedelta(hours=1)).isoformat()}),
        "scheduleExceptionAdd")["id"]
    # cancelling is an exception's only change: no other clerk can move its version without cancelling it
    return Prepared({"id": leave}, 1, lambda: values_of(ScheduleException, id=uuid.UUID(leave)), None)


# -- messageTemplateReset --------------------------------------------------------------------------------------

RESET = """mutation($cause: TemplateCause!, $channel: TemplateChannel!, $language: TemplateLanguage!,
                     $version: Int) {
  messageTemplateReset(cause: $cause, channel: $channel, language: $language, version: $version) {
    version isDefault } }"""


async def an_own_template(tenant: Tenant) -> Prepared:
    ok(await tenant.call("admin", TEMPLATE_SET, input=a_template(), version=0), "messageTemplateSet")

    async def other_clerk() -> None:
        ok(await tenant.call("admin", TEMPLATE_SET, input=a_template(subject="改约")), "messageTemplateSet")

    # dropped, the default is in force again: version 0 (what the next messageTemplateSet states)
    return Prepared({"cause": "APPOINTMENT_CONFIRMATION", "channel": "SMS", "language": "ZH_CN"}, 1,
                    lambda: values_of(MessageTemplate, institution_id=tenant.id), other_clerk, answered=0)


# -- questionnaireActivate / questionnaireRetire (the revision) ------------------------------------------------

ACTIVATE = """mutation($id: ID!, $revision: Int) {
  questionnaireActivate(id: $id, revision: $revision) { revision status } }"""
RETIRE = """mutation($id: ID!, $revision: Int) {
  questionnaireRetire(id: $id, revision: $revision) { revision status } }"""


def questionnaire_rows(tenant: Tenant) -> Snapshot:
    return lambda: values_of(Questionnaire, institution_id=tenant.id)


def editor(tenant: Tenant, questionnaire: str, revision: int) -> Callable[[], Awaitable[None]]:
    async def other_clerk() -> None:  # an edit in place (no responses): the next revision
        ok(await tenant.call("department_head", QUESTIONNAIRE_UPDATE, id=questionnaire, revision=revision,
                             input={"anonymous": True}), "questionnaireUpdate")
    return other_clerk


async def a_draft(tenant: Tenant) -> Prepared:
    draft = (await a_questionnaire(tenant))["id"]
    return Prepared({"id": draft}, 1, questionnaire_rows(tenant), editor(tenant, draft, 1))


async def an_active_questionnaire(tenant: Tenant) -> Prepared:
    active = (await a_questionnaire(tenant))["id"]
    assert ok(await tenant.call("admin", ACTIVATE, id=active), "questionnaireActivate")["revision"] == 2
    return Prepared({"id": active}, 2, questionnaire_rows(tenant), editor(tenant, active, 2))


CASES = [
    Case("patientArchive", "front_desk", "nurse", ARCHIVE, a_patient),
    Case("patientUnarchive", "department_head", "nurse", UNARCHIVE, an_archived_patient),
    Case("visitCodeSetStatus", "nurse", "front_desk", CODE_STATUS, a_pending_procedure),
    Case("messageGatewaySet", "admin", "department_head", GATEWAY, a_gateway),
    Case("institutionSecurityUpdate", "admin", "department_head", SECURITY, the_institution),
    Case("scheduleExceptionCancel", "admin", "nurse", EXCEPTION_CANCEL, a_leave),
    Case("messageTemplateReset", "admin", "department_head", RESET, an_own_template),
    Case("questionnaireActivate", "admin", "nurse", ACTIVATE, a_draft, arg="revision"),
    Case("questionnaireRetire", "department_head", "nurse", RETIRE, an_active_questionnaire, arg="revision"),
]
IDS = [case.name for case in CASES]


async def stored_version(case: Case, ready: Prepared) -> int | None:
    """The version (revision) the row holds now (a reset template's tombstone holds one too)."""
    rows = await ready.rows()
    found = rows[0] if isinstance(rows, tuple) else rows
    if case.arg == "revision":
        found = [row for row in found if str(row["id"]) == ready.variables["id"]]
    return int(found[0][case.arg]) if found else None


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_the_version_read_goes_through_and_moves_the_version(tenant: Tenant, case: Case) -> None:
    ready = await case.prepare(tenant)
    before = await ready.rows()
    assert await stored_version(case, ready) == ready.read

    reply = await tenant.call(case.role, case.query, **ready.variables, **{case.arg: ready.read})

    answer = ok(reply, case.root)
    assert answer[case.arg] == (ready.read + 1 if ready.answered is None else ready.answered)
    assert await ready.rows() != before
    # a dropped template stays as a tombstone whose version moved too (the answer is the default: 0)
    assert await stored_version(case, ready) == ready.read + 1


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_a_version_read_before_another_clerks_write_is_a_conflict(tenant: Tenant, case: Case) -> None:
    ready = await case.prepare(tenant)
    stale = ready.read
    if ready.other_clerk is not None:
        await ready.other_clerk()
    else:
        stale = ready.read + 1  # a version the record never had
    before, events = await ready.rows(), await tenant.audit_count()

    reply = await tenant.call(case.role, case.query, **ready.variables, **{case.arg: stale})

    assert reply.codes == ["CONFLICT"], reply.body
    assert reply.errors[0]["extensions"]["field"] == case.arg
    assert reply.errors[0]["extensions"]["reason"] == "stale_version"  # a revision's too
    assert await ready.rows() == before
    assert await tenant.audit_count() == events  # nothing written: no record of a write either


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_without_a_version_the_change_goes_over_the_current_one(tenant: Tenant, case: Case) -> None:
    ready = await case.prepare(tenant)
    current = ready.read
    if ready.other_clerk is not None:
        await ready.other_clerk()
        current += 1

    reply = await tenant.call(case.role, case.query, **ready.variables)

    answer = ok(reply, case.root)
    assert answer[case.arg] == (current + 1 if ready.answered is None else ready.answered)
    assert await stored_version(case, ready) == current + 1


@pytest.mark.parametrize("case", CASES, ids=IDS)
async def test_a_caller_without_the_right_is_refused_whatever_its_version(tenant: Tenant, case: Case) -> None:
    ready = await case.prepare(tenant)
    before, denied = await ready.rows(), len(await tenant.audit_events(outcome="denied"))

    reply = await tenant.call(case.denied, case.query, **ready.variables, **{case.arg: ready.read})

    assert reply.codes == ["FORBIDDEN"], reply.body
    assert await ready.rows() == before
    assert [e.actor_id for e in (await tenant.audit_events(outcome="denied"))[denied:]] == [
        tenant.staff_ids[case.denied]]


async def test_a_gateway_not_yet_set_is_version_0(tenant: Tenant) -> None:
    """As messagingSettingsUpdate and messageTemplateSet: 0 states that the channel has no gateway yet."""
    new = {"channel": "WECHAT", "url": "https://wechat.example.com/send", "secret": SECRET}
    stale = await tenant.call("admin", GATEWAY, input=new, version=1)
    assert stale.codes == ["CONFLICT"] and not await MessageGateway.exists(institution_id=tenant.id)

    made = ok(await tenant.call("admin", GATEWAY, input=new, version=0), "messageGatewaySet")
    again = await tenant.call("admin", GATEWAY, input=new, version=0)  # someone else set it meanwhile

    assert made["version"] == 1
    assert again.codes == ["CONFLICT"]
    assert [row["version"] for row in await values_of(MessageGateway, institution_id=tenant.id)] == [1]


async def test_a_gateway_change_moves_updated_at(tenant: Tenant) -> None:
    ready = await a_gateway(tenant)
    [read] = await values_of(MessageGateway, institution_id=tenant.id)

    changed = ok(await tenant.call("admin", GATEWAY, **ready.variables, version=1), "messageGatewaySet")

    [after] = await values_of(MessageGateway, institution_id=tenant.id)
    assert (changed["version"], changed["timeoutMs"]) == (2, 3000)
    assert after["updated_at"] > read["updated_at"]


async def test_activating_moves_the_revision_of_the_version_it_retires(tenant: Tenant) -> None:
    """Both rows are written, so both revisions move."""
    first = await an_active_questionnaire(tenant)  # revision 2
    old = first.variables["id"]
    await answered(tenant, old)
    edited = ok(await tenant.call("admin", QUESTIONNAIRE_UPDATE, id=old, revision=2, input={"anonymous": True}),
                "questionnaireUpdate")
    new = edited["questionnaire"]["id"]
    assert (edited["newVersion"], edited["questionnaire"]["revision"]) == (True, 1)

    ok(await tenant.call("admin", ACTIVATE, id=new, revision=1), "questionnaireActivate")

    rows = {str(row["id"]): (row["status"], row["revision"]) for row in await questionnaire_rows(tenant)()}
    assert rows == {old: ("retired", 3), new: ("active", 2)}
