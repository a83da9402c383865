"""Messages the calendar brings: care reminders, follow-up call announcements and greetings.

A sweep (run every few minutes by the app's worker, and safe to run as often as wanted) looks at what
falls due today or tomorrow in each institution's zone and schedules its message through the outbox:
- a re-visit (a finished visit's ``revisit_on``, a care plan's revisit activity) and pending treatment (a
  care plan's other activities): a reminder at 09:00 local the day before;
- a follow-up call (a follow-up task, a care plan's call activity): an announcement the day before;
- a birthday, and the first day of each run of holidays on the business calendar: a greeting at 09:00.
A message found late (the worker was down) goes at once while its day has not passed. Keys name the cause
and its date, so a moved date schedules anew and a repeated sweep schedules nothing twice; the consent
gate decides, as for every message.
"""

from __future__ import annotations

import uuid
from calendar import isleap
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from tortoise.expressions import Q, Subquery
from tortoise.transactions import in_transaction

from core.validation import EARLIEST_BIRTH_DATE
from models import CarePlan, CarePlanActivity, Communication, Department, FollowUpTask, Institution, Patient, Visit
from models.follow_up import OPEN_TASK_STATUSES
from resolvers import access
from resolvers import communication as communications
from resolvers import message_template as templates
from resolvers import sla as slas

SEND_AT = time(9)  # local time of reminders and greetings
BATCH = 500  # messages scheduled per transaction
T = TypeVar("T")
HOLIDAY_WORD = {"zh-CN": "节日", "en": "holidays"}  # the calendar knows holidays' dates, not their names


@dataclass(frozen=True)
class Due:
    """One message the calendar brings: for ``patient_id`` about ``on`` (a local date)."""

    key: str
    cause: str
    patient_id: uuid.UUID
    on: date
    before: bool  # sent the day before ``on`` (a reminder), else on the day (a greeting)
    department_id: uuid.UUID | None = None
    about: tuple[str, uuid.UUID] | None = None  # the record it is about (``cause_prefix``'s kind and id), if any


def _now() -> datetime:
    return datetime.now(UTC)


async def sweep(now: datetime | None = None) -> int:
    """Schedule what falls due in every institution; answers how many messages were scheduled."""
    now = now or _now()
    scheduled = 0
    for institution in await Institution.all():
        scheduled += await sweep_institution(institution, now)
    return scheduled


async def sweep_institution(institution: Institution, now: datetime) -> int:
    zone = ZoneInfo(institution.time_zone)
    today = now.astimezone(zone).date()
    window = (today, today + timedelta(days=1))
    due = [*await _revisits(institution.id, window), *await _plan_activities(institution.id, window),
           *await _follow_up_calls(institution.id, window), *await _birthdays(institution.id, today),
           *await _holidays(institution.id, today, zone)]
    return await _schedule(institution.id, zone, today, now, due)


# -- what falls due ---------------------------------------------------------------------------


async def _revisits(institution_id: uuid.UUID, window: tuple[date, date]) -> list[Due]:
    found = await Visit.filter(institution_id=institution_id, status="finished", revisit_on__gte=window[0],
                               revisit_on__lte=window[1]).values_list("id", "patient_id", "revisit_on",
                                                                      "department_id")
    return [Due(f"{communications.cause_prefix('revisit', vid)}{on}", "revisit_reminder", pid, on, True, dep,
                ("revisit", vid)) for vid, pid, on, dep in found]


async def _plan_activities(institution_id: uuid.UUID, window: tuple[date, date]) -> list[Due]:
    """A care plan's re-visits and pending treatment (its calls are follow-up tasks, announced as such)."""
    plans = CarePlan.filter(institution_id=institution_id, status="active")
    found = await (CarePlanActivity.filter(institution_id=institution_id, status="scheduled", due_on__gte=window[0],
                                           due_on__lte=window[1], plan_id__in=Subquery(plans.values("id")))
                   .exclude(kind="call")
                   .values_list("id", "kind", "due_on", "plan__patient_id", "plan__department_id"))
    return [Due(f"{communications.cause_prefix('care_plan_activity', aid)}{on}",
                "revisit_reminder" if kind == "revisit" else "pending_treatment_reminder", pid, on, True, dep,
                ("care_plan_activity", aid)) for aid, kind, on, pid, dep in found]


async def _follow_up_calls(institution_id: uuid.UUID, window: tuple[date, date]) -> list[Due]:
    """Open follow-up calls, but those a plan's re-visit made (the re-visit reminder speaks for them)."""
    found = await (FollowUpTask.filter(institution_id=institution_id, status__in=OPEN_TASK_STATUSES,
                                       due_on__gte=window[0], due_on__lte=window[1])
                   .filter(Q(activity_id__isnull=True) | ~Q(activity__kind="revisit"))
                   .values_list("id", "patient_id", "due_on", "department_id"))
    return [Due(f"{communications.cause_prefix('follow_up', tid)}{on}", "follow_up_announcement", pid, on, True, dep,
                ("follow_up", tid)) for tid, pid, on, dep in found]


async def _birthdays(institution_id: uuid.UUID, today: date) -> list[Due]:
    """The files born on this day of the year, found by the database (found in review: every file with a birth date
    was read, six times an hour, to keep the few born on the day): the day in each year since the earliest birth
    date a file takes, a bounded list that reads the same on either database, and 29 February on a 28 February of
    a common year."""
    found = await Patient.filter(institution_id=institution_id, status="active", contact_consent=True,
                                 contact_purposes__contains="|greeting|", birth_date__in=_birth_dates(today)
                                 ).values_list("id", "birth_date")
    return [Due(f"birthday:{pid}:{today}", "birthday_greeting", pid, today, False)
            for pid, born in found if communications.birthday_of(born, today.year) == today]


async def _holidays(institution_id: uuid.UUID, today: date, zone: ZoneInfo) -> list[Due]:
    calendar = await slas.calendar(institution_id, zone)
    if today not in calendar.holidays or today - timedelta(days=1) in calendar.holidays:
        return []  # greet once, on the first day of a run of holidays
    # the patients greeted today already are left out (found in review: every run of the day, six an hour, read every
    # patient who wants greetings and their keys to schedule nothing): a greeting of theirs due from today's start on
    # (one deferred by the quiet hours goes out before the next run of holidays begins: a day apart at least)
    greeted = Communication.filter(institution_id=institution_id, cause="holiday_greeting",
                                   due_at__gte=datetime.combine(today, time(0), zone).astimezone(UTC)
                                   ).exclude(status="cancelled").values("patient_id")
    found = await Patient.filter(institution_id=institution_id, status="active", contact_consent=True,
                                 contact_purposes__contains="|greeting|").exclude(
        id__in=Subquery(greeted)).values_list("id", flat=True)
    return [Due(f"holiday:{pid}:{today}", "holiday_greeting", uuid.UUID(str(pid)), today, False) for pid in found]


# -- scheduling -------------------------------------------------------------------------------


async def _schedule(institution_id: uuid.UUID, zone: ZoneInfo, today: date, now: datetime,
                    due: list[Due]) -> int:
    """Schedule the messages not scheduled before, a batch per transaction. A message of the day cancelled since (a
    visit update naming ``revisitOn`` cancels the visit's, and the sweep queues the day's anew) is queued again: its
    cause is due once more (found in review: its key was known, so a date moved back, or sent again unchanged, was
    never reminded)."""
    known: set[str] = set()
    for keys in _chunks([d.key for d in due], BATCH):
        known |= {str(key) for key, status in await Communication.filter(
            institution_id=institution_id, key__in=keys).values_list("key", "status") if status != "cancelled"}
    fresh = [d for d in due if d.key not in known]
    if not fresh:
        return 0
    departments = dict(await Department.filter(institution_id=institution_id).values_list("id", "name"))
    scheduled = 0
    for chunk in _chunks(fresh, BATCH):
        # the chunk's patients alone (found in review: every patient of the day in one statement, one parameter
        # each, and a statement takes at most 32,767: a holiday greeting of a larger institution failed)
        patients = {pid: (name, language) for pid, name, language in await Patient.filter(
            institution_id=institution_id, id__in=list({d.patient_id for d in chunk})).values_list(
            "id", "full_name", "preferred_language")}
        async with in_transaction():
            standing = await _still_due(institution_id, chunk)
            requests = [_request(d, zone, today, now, patients, departments) for d in chunk
                        if d.patient_id in patients and d.key in standing]
            await Communication.filter(institution_id=institution_id, key__in=[r.key for r in requests],
                                       status="cancelled").update(status="queued", settled_at=None, refusal=None)
            await communications.schedule_many(institution_id, requests)
        scheduled += len(requests)
    return scheduled


async def _still_due(institution_id: uuid.UUID, chunk: list[Due]) -> set[str]:
    """The keys of ``chunk`` whose cause still stands, read again inside the transaction that queues them, with the
    records they are about locked (found in review: a call cancelled, a plan revoked or a re-visit day moved after the
    sweep read them had their messages queued all the same, those the close had just cancelled queued again). A
    close under way is waited for and then seen; one beginning later waits and cancels what is queued here. The files
    are held first (``access.current_files``, as ``schedule_many`` holds them), as a merge locks them before it moves
    the records; then visits, plans and calls, the order in which their own writes lock them (a visit cancelled
    closes its calls, a plan ended closes its calls and activities)."""
    await access.current_files({d.patient_id for d in chunk})
    ids: dict[str, list[uuid.UUID]] = {}
    for d in chunk:
        if d.about is not None:
            ids.setdefault(d.about[0], []).append(d.about[1])
    days: dict[uuid.UUID, date | None] = {}
    if ids.get("revisit"):
        days |= {row.id: row.revisit_on for row in await Visit.filter(
            institution_id=institution_id, id__in=sorted(ids["revisit"]), status="finished").order_by("id")
            .select_for_update(no_key=True).only("id", "revisit_on")}
    if ids.get("care_plan_activity"):
        activities = CarePlanActivity.filter(institution_id=institution_id, id__in=sorted(ids["care_plan_activity"]))
        plans = await CarePlan.filter(institution_id=institution_id, status="active", id__in=Subquery(
            activities.values("plan_id"))).order_by("id").select_for_update(no_key=True).only("id")
        days |= {row.id: row.due_on for row in await activities.filter(
            status="scheduled", plan_id__in=[plan.id for plan in plans]).only("id", "due_on")}
    if ids.get("follow_up"):
        days |= {row.id: row.due_on for row in await FollowUpTask.filter(
            institution_id=institution_id, id__in=sorted(ids["follow_up"]), status__in=OPEN_TASK_STATUSES)
            .order_by("id").select_for_update(no_key=True).only("id", "due_on")}
    return {d.key for d in chunk if d.about is None or days.get(d.about[1], None) == d.on}


def _request(due: Due, zone: ZoneInfo, today: date, now: datetime,
             patients: dict[uuid.UUID, tuple[str, str]], departments: dict[uuid.UUID, str]) -> communications.Request:
    name, language = patients[due.patient_id]
    send_on = due.on - timedelta(days=1) if due.before else due.on
    at = max(datetime.combine(max(send_on, today), SEND_AT, tzinfo=zone).astimezone(UTC), now)
    variables = {"patient_name": name, "date": due.on.isoformat()}
    if due.department_id is not None and due.department_id in departments:
        # for an institution's own template that asks for it: no built-in text names the department, which a lock
        # screen would show ("Oncology"; docs/messages.md)
        variables["department_name"] = departments[due.department_id]
    if due.cause == "holiday_greeting":
        variables["holiday_name"] = HOLIDAY_WORD[templates.language_of(language)]
    return communications.Request(due.key, due.cause, due.patient_id, at, variables)


def _birth_dates(today: date) -> list[date]:
    """The birth dates whose birthday is ``today`` (``communication.birthday_of``), since the earliest a file takes."""
    days = []
    for year in range(EARLIEST_BIRTH_DATE.year, today.year + 1):
        with suppress(ValueError):  # 29 February in a common year
            days.append(today.replace(year=year))
        if (today.month, today.day) == (2, 28) and not isleap(today.year) and isleap(year):
            days.append(date(year, 2, 29))
    return days


def _chunks(items: list[T], size: int) -> Iterable[list[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
