"""Messages the calendar brings, set up through the API and scheduled by the sweep: re-visit reminders (a visit's
after-visit instructions, a care plan's re-visit), pending-treatment reminders and follow-up call announcements
the day before at 09:00 local, birthday greetings and a greeting on the first day of a run of holidays; a
repeated sweep schedules nothing twice, a moved date schedules anew, and the consent gate decides."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from models import CarePlan, Communication, FollowUpTask, Institution
from resolvers import reminder
from tests.conftest import RowsRead, SqlCounter
from tests.factories import Tenant, make_patient

SHANGHAI = ZoneInfo("Asia/Shanghai")
VISIT = """mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"""
VISIT_UPDATE = """mutation($id: ID!, $input: VisitUpdateInput!, $v: Int) { visitUpdate(id: $id, input: $input,
  version: $v) { id version } }"""
PLAN = """mutation($input: CarePlanCreateInput!) { carePlanCreate(input: $input) { id } }"""
CANCEL_TASK = """mutation($id: ID!) { followUpTaskCancel(id: $id) { id } }"""
END_PLAN = """mutation($id: ID!) { carePlanTransition(id: $id, to: REVOKED) { id } }"""
CALENDAR = """mutation($input: BusinessCalendarInput!) { businessCalendarSet(input: $input) { levels { level } } }"""


def ok(reply: Any, root: str) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data[root]


def local(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=SHANGHAI).astimezone(UTC)


async def patient(tenant: Tenant, **more: Any) -> uuid.UUID:
    return await make_patient(tenant, contactConsent=True, contactChannels=["EMAIL"],
                              email=f"p{uuid.uuid4().hex[:8]}@example.org",
                              contactPurposes=["CARE", "GREETING"], **more)


async def sweep(tenant: Tenant, now: datetime) -> dict[str, Communication]:
    await reminder.sweep_institution(await Institution.get(id=tenant.id), now)
    return {row.key: row for row in await Communication.filter(institution_id=tenant.id)}


async def finished_visit(tenant: Tenant, pid: uuid.UUID, revisit_on: date) -> str:
    reply = await tenant.call("nurse", VISIT, input={
        "patientId": str(pid), "kind": "OUTPATIENT", "status": "FINISHED", "revisitOn": revisit_on.isoformat(),
        "departmentId": str(tenant.departments["A"].id), "startedAt": "2026-01-10T09:00:00+08:00",
        "endedAt": "2026-01-10T09:30:00+08:00"})
    return str(ok(reply, "visitCreate")["id"])


async def test_a_revisit_is_reminded_the_day_before_at_nine_and_a_moved_date_anew(tenant: Tenant) -> None:
    now = local(date(2031, 5, 12), time(7))  # a Monday, before nine
    pid = await patient(tenant)
    visit = await finished_visit(tenant, pid, date(2031, 5, 13))

    found = await sweep(tenant, now)

    row = found[f"revisit:{visit}:2031-05-13"]
    assert (row.cause, row.patient_id, row.status, row.due_at) == (
        "revisit_reminder", pid, "queued", local(date(2031, 5, 12), time(9)))
    assert row.variables["date"] == "2031-05-13" and row.variables["department_name"]
    assert await sweep(tenant, now + timedelta(minutes=5)) == found  # nothing twice

    ok(await tenant.call("nurse", VISIT_UPDATE, id=visit, input={"revisitOn": "2031-05-12"}), "visitUpdate")
    later = await sweep(tenant, local(date(2031, 5, 12), time(10)))  # found late: at once
    moved = later[f"revisit:{visit}:2031-05-12"]
    assert moved.due_at == local(date(2031, 5, 12), time(10))
    # the old day's reminder is not true any more (found in review: it was still sent)
    assert later[f"revisit:{visit}:2031-05-13"].status == "cancelled" and moved.status == "queued"


async def test_a_call_closed_or_a_plan_ended_takes_its_queued_messages_with_it(tenant: Tenant) -> None:
    """Found in review: a call cancelled, or a plan revoked, after the sweep queued its announcement and reminders,
    still had them sent the next morning."""
    today = date(2031, 5, 12)
    tomorrow = (today + timedelta(days=1)).isoformat()
    plans = []
    for _ in range(2):
        pid = await patient(tenant)
        plans.append(ok(await tenant.call("nurse", PLAN, input={
            "patientId": str(pid), "title": "Orthodontics", "startsOn": today.isoformat(),
            "departmentId": str(tenant.departments["A"].id),
            "activities": [{"kind": "REHABILITATION", "dueOn": tomorrow}, {"kind": "CALL", "dueOn": tomorrow}]}),
            "carePlanCreate")["id"])
    queued = await sweep(tenant, local(today, time(8)))
    assert sorted(row.status for row in queued.values()) == ["queued"] * 4
    [task] = await FollowUpTask.filter(activity__plan_id=plans[0]).values_list("id", flat=True)

    ok(await tenant.call("department_head", CANCEL_TASK, id=str(task)), "followUpTaskCancel")
    ok(await tenant.call("doctor", END_PLAN, id=plans[1]), "carePlanTransition")

    after = {(row.patient_id, row.cause): row.status for row in await Communication.filter(institution_id=tenant.id)}
    first, second = [await patient_of(plan) for plan in plans]
    assert after == {(first, "follow_up_announcement"): "cancelled", (first, "pending_treatment_reminder"): "queued",
                     (second, "follow_up_announcement"): "cancelled",
                     (second, "pending_treatment_reminder"): "cancelled"}


async def patient_of(plan_id: str) -> uuid.UUID:
    return (await CarePlan.get(id=plan_id)).patient_id


async def test_birthdays_and_the_first_day_of_holidays_are_greeted(tenant: Tenant) -> None:
    today = date(2031, 10, 1)
    born = await patient(tenant, birthDate="1960-10-01")
    other = await patient(tenant, birthDate="1960-10-02")
    ok(await tenant.call("admin", CALENDAR, input={
        "week": [{"weekday": d, "intervals": [{"start": "08:00", "end": "17:00"}]} for d in range(1, 6)],
        "holidays": ["2031-10-01", "2031-10-02", "2031-10-03"]}), "businessCalendarSet")

    first = await sweep(tenant, local(today, time(8)))
    second = await sweep(tenant, local(today + timedelta(days=1), time(8)))

    assert first[f"birthday:{born}:2031-10-01"].due_at == local(today, time(9))
    holidays = {k for k in first if k.startswith("holiday:")}
    assert holidays == {f"holiday:{born}:2031-10-01", f"holiday:{other}:2031-10-01"}
    assert first[f"holiday:{other}:2031-10-01"].variables["holiday_name"] == "节日"
    assert f"birthday:{other}:2031-10-02" in second
    assert not any(k.endswith("2031-10-02") and k.startswith("holiday:") for k in second)  # once per run


async def test_greetings_are_scheduled_only_for_patients_who_want_them(tenant: Tenant) -> None:
    today = date(2031, 10, 1)
    await make_patient(tenant, birthDate="1960-10-01", contactConsent=True, contactChannels=["EMAIL"],
                       email="care.only@example.org", contactPurposes=["CARE"])

    found = await sweep(tenant, local(today, time(8)))

    assert found == {}


async def test_the_gate_decides_a_reminder_for_a_patient_without_consent(tenant: Tenant) -> None:
    now = local(date(2031, 5, 12), time(7))
    pid = await make_patient(tenant, contactConsent=False)
    visit = await finished_visit(tenant, pid, date(2031, 5, 13))

    found = await sweep(tenant, now)

    row = found[f"revisit:{visit}:2031-05-13"]
    assert (row.status, row.refusal) == ("refused", "no_consent")


async def test_a_holiday_greets_every_patient_a_batch_at_a_time(
        tenant: Tenant, sql_counter: SqlCounter, monkeypatch: pytest.MonkeyPatch) -> None:
    """A holiday greets every patient who wants greetings, and a statement takes at most 32,767 parameters on either
    database: the sweep read every greeted patient in one statement, one parameter each, and failed on a holiday in a
    larger institution (found in review). No statement names more patients than a batch holds."""
    monkeypatch.setattr(reminder, "BATCH", 2)
    today = date(2031, 10, 1)
    greeted = {await patient(tenant) for _ in range(5)}
    ok(await tenant.call("admin", CALENDAR, input={
        "week": [{"weekday": d, "intervals": [{"start": "08:00", "end": "17:00"}]} for d in range(1, 6)],
        "holidays": ["2031-10-01"]}), "businessCalendarSet")

    found = await sweep(tenant, local(today, time(8)))

    assert {k for k in found if k.startswith("holiday:")} >= {f"holiday:{pid}:2031-10-01" for pid in greeted}
    named = [sum(str(pid) in statement for pid in greeted) for statement in sql_counter.statements
             if statement.startswith("SELECT") and '"patient"' in statement]
    assert named and max(named) <= 2, named


async def test_birthdays_are_looked_for_in_the_database_not_among_every_file(
        tenant: Tenant, rows_read: Callable[[str], RowsRead]) -> None:
    """The sweep runs every 10 minutes: it read every file with a birth date that wants greetings, to keep the few
    born on the day (found in review: a whole institution's files into memory, six times an hour). It reads those
    born on the day only, and a 29 February birthday is greeted on 28 February in other years."""
    today = date(2031, 2, 28)
    born = await patient(tenant, birthDate="1960-02-28")
    leap = await patient(tenant, birthDate="1964-02-29")
    others = [await patient(tenant, birthDate=f"1970-{month:02d}-{day:02d}") for month, day in
              ((2, 27), (3, 1), (3, 28), (1, 28))]
    patients = rows_read("patient")

    found = await sweep(tenant, local(today, time(8)))

    assert {k for k in found if k.startswith("birthday:")} == {f"birthday:{born}:2031-02-28",
                                                              f"birthday:{leap}:2031-02-28"}
    assert not any(str(pid) in k for pid in others for k in found)
    [looked] = [n for n, q in zip(patients.rows, patients.queries, strict=True)
                if '"birth_date"' in q.partition("WHERE")[2]]  # the statement that looks for birthdays
    assert looked == 2, patients.queries


async def test_a_revisit_moved_back_to_its_day_is_reminded_again(tenant: Tenant) -> None:
    """A visit update that names ``revisitOn`` cancels the queued reminders of the visit, and the sweep queues the
    day's anew; but the day's key was known already (cancelled), so a date moved back to the day it had, or an update
    that sent the same date again, left the patient with no reminder at all (found in review)."""
    now = local(date(2031, 5, 12), time(7))
    pid = await patient(tenant)
    visit = await finished_visit(tenant, pid, date(2031, 5, 13))
    key = f"revisit:{visit}:2031-05-13"
    assert (await sweep(tenant, now))[key].status == "queued"

    ok(await tenant.call("nurse", VISIT_UPDATE, id=visit, input={"revisitOn": "2031-05-14"}), "visitUpdate")
    ok(await tenant.call("nurse", VISIT_UPDATE, id=visit, input={"revisitOn": "2031-05-13"}), "visitUpdate")
    again = await sweep(tenant, now + timedelta(minutes=10))

    assert (again[key].status, again[key].due_at) == ("queued", local(date(2031, 5, 12), time(9)))
    assert await sweep(tenant, now + timedelta(minutes=20)) == again  # nothing twice

    ok(await tenant.call("nurse", VISIT_UPDATE, id=visit, input={"revisitOn": "2031-05-13"}), "visitUpdate")
    assert (await sweep(tenant, now + timedelta(minutes=30)))[key].status == "queued"


async def test_a_holiday_sweep_run_again_reads_no_patient_greeted_already(
        tenant: Tenant, rows_read: Callable[[str], RowsRead]) -> None:
    """The sweep runs every 10 minutes: on the first day of holidays each run read every patient who wants greetings,
    and looked up their day's keys a batch at a time, to schedule nothing (found in review: a whole institution's
    files and keys six times an hour, all day). A run after the first reads the patients not greeted yet only."""
    today = date(2031, 10, 1)
    greeted = {await patient(tenant) for _ in range(3)}
    ok(await tenant.call("admin", CALENDAR, input={
        "week": [{"weekday": d, "intervals": [{"start": "08:00", "end": "17:00"}]} for d in range(1, 6)],
        "holidays": ["2031-10-01"]}), "businessCalendarSet")
    first = await sweep(tenant, local(today, time(8)))
    assert {k for k in first if k.startswith("holiday:")} == {f"holiday:{pid}:2031-10-01" for pid in greeted}
    late = await patient(tenant)
    patients = rows_read("patient")

    second = await sweep(tenant, local(today, time(8, 10)))

    assert {k for k in second if k.startswith("holiday:")} == {f"holiday:{pid}:2031-10-01" for pid in greeted | {late}}
    assert all(second[k].id == row.id for k, row in first.items())  # nothing twice
    [looked] = [n for n, q in zip(patients.rows, patients.queries, strict=True)
                if "LIKE" in q and '"birth_date"' not in q]  # the statement that looks for the greeted
    assert looked == 1, patients.queries


async def test_a_message_of_the_calendar_the_quiet_hours_would_push_past_its_day_is_not_sent(tenant: Tenant) -> None:
    """Found late in the evening (a file registered at 21:30 on its birthday, a re-visit set for the same day), a
    greeting or a reminder was deferred by the quiet hours to 08:00 the next morning: a birthday greeted the day
    after, a re-visit reminded after its day. Like an appointment's notice pushed past its slot, it is refused
    (``quiet_hours``); one whose day is still to come waits for the morning."""
    today = date(2031, 10, 1)
    evening = local(today, time(21, 30))
    born = await patient(tenant, birthDate="1960-10-01")
    today_visit = await finished_visit(tenant, born, today)
    tomorrow_visit = await finished_visit(tenant, born, today + timedelta(days=1))

    found = await sweep(tenant, evening)

    birthday = found[f"birthday:{born}:2031-10-01"]
    same_day = found[f"revisit:{today_visit}:2031-10-01"]
    next_day = found[f"revisit:{tomorrow_visit}:2031-10-02"]
    assert (birthday.status, birthday.refusal) == (same_day.status, same_day.refusal) == ("refused", "quiet_hours")
    assert (next_day.status, next_day.due_at) == ("queued", local(today + timedelta(days=1), time(8)))
