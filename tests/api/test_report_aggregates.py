"""``visitReport`` and ``ticketReport`` computed in SQL, differentially: on a realistic mix (two departments, a year
in New York across both DST changes, cancelled and merged files, rows on the month boundaries to the microsecond,
retention windows ending in a DST gap or fold, ties and negative spans), every answer equals the one the reports gave
when they loaded every row of the department's month into Python (the oracle below is that code, kept as it was).
And they no longer load those rows: the rows each statement returns, and the statements a report costs, are the
same for a month of a few rows and one of many."""

from __future__ import annotations

import itertools
import math
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import FollowUpTask, Institution, Ticket, Visit
from resolvers import visit_report
from resolvers.visit_report import _window_shifts
from tests.conftest import RowsRead, SqlCounter
from tests.factories import Tenant, make_patient

ZONE = ZoneInfo("America/New_York")  # DST from 8 March 02:00 to 1 November 02:00 (2026)
MERGE = "mutation($s: ID!, $d: ID!) { patientMerge(survivorId: $s, duplicateId: $d) { survivor { id } } }"
VISIT_REPORT = """query($month: String!, $dep: ID!, $n: Int) { visitReport(month: $month, departmentId: $dep,
  retentionMonths: $n) {
    departmentId month visitsByKind { kind visits } noShows
    followUp { due doneOnTime doneLate notReached stillOpen completionRate }
    satisfactionResponses averageSatisfaction retentionMonths patientsSeen patientsReturned retentionRate
    waitingTime { count medianMinutes p90Minutes } } }"""
TICKET_REPORT = """query($month: String!, $dep: ID!) { ticketReport(month: $month, departmentId: $dep) {
  departmentId month tickets byChannel { channel tickets } byCategory { category tickets }
  firstResponse { count medianMinutes p90Minutes } resolution { count medianMinutes p90Minutes }
  slaComplianceRate complaints patientsServed complaintRatePer1000 } }"""
MONTHS = [f"2026-{m:02d}" for m in range(1, 13)]
EMPTY = "2025-06"  # no data: null rates and durations
KINDS = ("outpatient", "procedure", "dental", "check_up")
CHANNELS = ("hotline", "app", "wechat", "email")
CATEGORIES = ("enquiry", "request", "complaint", "suggestion")
NOT_READ = b"sealed"  # a ticket's subject: reports never open it


# -- the oracle: the reports as they were, every row of the month read into Python ----------------------------------


def _bounds(first: date, following: date) -> tuple[datetime, datetime]:
    return (datetime.combine(first, time(0), ZONE).astimezone(UTC),
            datetime.combine(following, time(0), ZONE).astimezone(UTC))


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _add_months_at(moment: datetime, months: int) -> datetime:
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    last = (_next_month(date(year, month, 1)) - timedelta(days=1)).day
    return moment.replace(year=year, month=month, day=min(moment.day, last))


def _durations(spans: list[timedelta]) -> dict[str, Any]:
    minutes = sorted(span.total_seconds() / 60 for span in spans)
    if not minutes:
        return {"count": 0, "medianMinutes": None, "p90Minutes": None}

    def rank(share: float) -> float:
        return round(minutes[max(0, math.ceil(share * len(minutes)) - 1)], 1)

    return {"count": len(minutes), "medianMinutes": rank(0.5), "p90Minutes": rank(0.9)}


async def naive_visit_report(institution: uuid.UUID, department: uuid.UUID, month: str, n: int) -> dict[str, Any]:
    first_day = date.fromisoformat(f"{month}-01")
    next_month = _next_month(first_day)
    since, until = _bounds(first_day, next_month)
    tenant = {"institution_id": institution}
    finishing = Visit.filter(**tenant, department_id=department, status="finished", ended_at__gte=since,
                             ended_at__lt=until)
    finished = await finishing.values_list("kind", "patient_id", "ended_at")
    no_shows = await Visit.filter(**tenant, department_id=department, status="no_show", planned_at__gte=since,
                                  planned_at__lt=until).count()
    started = await Visit.filter(**tenant, department_id=department, started_at__gte=since, started_at__lt=until,
                                 arrived_at__isnull=False).values_list("arrived_at", "started_at")
    tasks = await FollowUpTask.filter(**tenant, department_id=department, due_on__gte=first_day,
                                      due_on__lt=next_month).exclude(status="cancelled").values_list(
        "status", "due_on", "completed_at")
    scores = await FollowUpTask.filter(**tenant, department_id=department, status="completed",
                                       completed_at__gte=since, completed_at__lt=until,
                                       satisfaction__isnull=False).values_list("satisfaction", flat=True)
    on_time = late = 0
    for status, due_on, completed_at in tasks:
        if status == "completed" and completed_at is not None:
            if completed_at.astimezone(ZONE).date() <= due_on:
                on_time += 1
            else:
                late += 1
    first_visit: dict[uuid.UUID, datetime] = {}
    for _kind, patient_id, ended_at in finished:
        if patient_id not in first_visit or ended_at < first_visit[patient_id]:
            first_visit[patient_id] = ended_at
    back = set()
    if first_visit:
        later = await Visit.filter(**tenant, patient_id__in=list(first_visit), status="finished").values_list(
            "patient_id", "ended_at")
        for patient_id, ended_at in later:
            first = first_visit[patient_id]
            if first < ended_at <= _add_months_at(first.astimezone(ZONE), n):
                back.add(patient_id)
    numbers = [int(s) for s in scores]
    due = len(tasks)
    seen = len(first_visit)
    return {
        "departmentId": str(department), "month": month,
        "visitsByKind": [{"kind": k.upper(), "visits": v}
                         for k, v in sorted(Counter(k for k, _, _ in finished).items())],
        "noShows": no_shows,
        "followUp": {"due": due, "doneOnTime": on_time, "doneLate": late,
                     "notReached": sum(1 for t in tasks if t[0] == "failed"),
                     "stillOpen": sum(1 for t in tasks if t[0] in ("requested", "accepted")),
                     "completionRate": (on_time + late) / due if due else None},
        "satisfactionResponses": len(numbers),
        "averageSatisfaction": round(sum(numbers) / len(numbers), 2) if numbers else None,
        "retentionMonths": n, "patientsSeen": seen, "patientsReturned": len(back),
        "retentionRate": len(back) / seen if seen else None,
        "waitingTime": _durations([start - arrival for arrival, start in started if start >= arrival]),
    }


def _sla_outcome(now: datetime, responded: datetime | None, resolved: datetime | None,
                 response_due: datetime | None, resolution_due: datetime | None) -> bool | None:
    for done, due in ((responded, response_due), (resolved, resolution_due)):
        if due is not None and ((done is not None and done > due) or (done is None and now >= due)):
            return False
    if responded is not None and resolved is not None:
        return True
    return None


async def naive_ticket_report(institution: uuid.UUID, department: uuid.UUID, month: str) -> dict[str, Any]:
    first_day = date.fromisoformat(f"{month}-01")
    since, until = _bounds(first_day, _next_month(first_day))
    rows = await Ticket.filter(institution_id=institution, department_id=department, received_at__gte=since,
                               received_at__lt=until).values_list(
        "channel", "category", "received_at", "first_responded_at", "resolved_at", "response_due_at",
        "resolution_due_at")
    now = datetime.now(UTC)
    outcomes = [_sla_outcome(now, *r[3:]) for r in rows]
    decided, met = sum(o is not None for o in outcomes), sum(o is True for o in outcomes)
    seen = len(set(await Visit.filter(institution_id=institution, department_id=department, status="finished",
                                      ended_at__gte=since, ended_at__lt=until).values_list("patient_id", flat=True)))
    complaints = sum(1 for r in rows if r[1] == "complaint")
    return {
        "departmentId": str(department), "month": month, "tickets": len(rows),
        "byChannel": [{"channel": c.upper(), "tickets": v} for c, v in sorted(Counter(r[0] for r in rows).items())],
        "byCategory": [{"category": c.upper(), "tickets": v}
                       for c, v in sorted(Counter(r[1] for r in rows).items())],
        "firstResponse": _durations([r[3] - r[2] for r in rows if r[3] is not None]),
        "resolution": _durations([r[4] - r[2] for r in rows if r[4] is not None]),
        "slaComplianceRate": met / decided if decided else None, "complaints": complaints,
        "patientsServed": seen, "complaintRatePer1000": 1000 * complaints / seen if seen else None,
    }


# -- the world --------------------------------------------------------------------------------------------------------


def at(text: str, fold: int = 0) -> datetime:
    """A New York wall time (``fold`` 1: the second 01:xx of 1 November), in UTC as the API stores it."""
    return datetime.fromisoformat(text).replace(tzinfo=ZONE, fold=fold).astimezone(UTC)


def month_edges() -> list[datetime]:
    """Every local month start of the year (and the next January's), a microsecond either side, and the DST changes."""
    edges = []
    for month in range(1, 14):
        start = datetime.combine(date(2026 + month // 13, month % 13 or 1, 1), time(0), ZONE).astimezone(UTC)
        edges += [start - timedelta(microseconds=1), start, start + timedelta(microseconds=1)]
    for change in (datetime(2026, 3, 8, 7, tzinfo=UTC), datetime(2026, 11, 1, 6, tzinfo=UTC)):
        edges += [change - timedelta(microseconds=1), change, change + timedelta(minutes=30)]
    return edges


# (first visit, N, the window's end): the clamp to a shorter month, a window ending in the March gap (read with the
# offset before it) and in the November fold (its first 01:30; from its second 01:30, a month on), the last
# microsecond of a month, three months on from the 31st
EDGES = ((at("2026-01-31T10:00:00"), 1, at("2026-02-28T10:00:00")),
         (at("2026-02-08T02:30:00"), 1, datetime(2026, 3, 8, 7, 30, tzinfo=UTC)),
         (at("2026-10-01T01:30:00"), 1, datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
         (at("2026-11-01T01:30:00", fold=1), 1, datetime(2026, 12, 1, 6, 30, tzinfo=UTC)),
         (at("2026-03-31T23:59:59.999999"), 1, at("2026-04-30T23:59:59.999999")),
         (at("2026-05-31T00:00:00"), 3, at("2026-08-31T00:00:00")))


@dataclass
class World:
    tenant: Tenant
    departments: tuple[uuid.UUID, uuid.UUID]


def _moment(rng: random.Random, edges: list[datetime]) -> datetime:
    if rng.random() < 0.25:
        return rng.choice(edges)
    base = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(365 * 86400))
    return base + timedelta(microseconds=rng.choice((0, 0, 1, 499_999, 500_000, 999_999, rng.randrange(10**6))))


def _span(rng: random.Random) -> timedelta:
    """A wait or a response time: ties, zero, negative, sub-second and days long."""
    return rng.choice((timedelta(0), timedelta(minutes=5), timedelta(minutes=5), timedelta(seconds=-90),
                       timedelta(minutes=1, seconds=15), timedelta(microseconds=rng.randrange(1, 10**7)),
                       timedelta(minutes=rng.randrange(1, 3000), microseconds=rng.randrange(10**6)),
                       timedelta(days=rng.randrange(1, 40))))


async def build_world(tenant: Tenant, rng: random.Random, visits: int = 400, tasks: int = 300,
                      tickets: int = 300, patients: int = 14) -> World:
    await Institution.filter(id=tenant.id).update(time_zone=ZONE.key)
    dep_a, dep_b = tenant.departments["A"].id, tenant.departments["B"].id
    people = [await make_patient(tenant) for _ in range(patients)]
    edges = month_edges()
    rows: list[Visit] = []

    def visit(patient: uuid.UUID, ended: datetime | None, department: uuid.UUID | None = dep_a,
              status: str = "finished", **times: Any) -> None:
        rows.append(Visit(institution_id=tenant.id, patient_id=patient, kind=rng.choice(KINDS), status=status,
                          department_id=department, planned_at=times.pop("planned_at", ended or _moment(rng, edges)),
                          ended_at=ended, **times))

    for _ in range(visits):
        ended = _moment(rng, edges)
        started = ended - timedelta(minutes=rng.randrange(1, 90))
        arrived = None if rng.random() < 0.2 else started - _span(rng)
        status = rng.choice(("finished",) * 6 + ("no_show", "cancelled", "in_progress"))
        visit(rng.choice(people), ended if status == "finished" else None, rng.choice((dep_a, dep_a, dep_b, None)),
              status, planned_at=rng.choice((ended, _moment(rng, edges))), started_at=started, arrived_at=arrived)
    # retention windows on the edges (EDGES): a patient back at the window's end, one a microsecond later
    for first, _months, end in EDGES:
        inside, outside = await make_patient(tenant), await make_patient(tenant)
        for patient, back in ((inside, end), (outside, end + timedelta(microseconds=1))):
            visit(patient, first)
            visit(patient, first)  # a tie for the first visit
            visit(patient, back, rng.choice((dep_b, None)))
    # merged files: each duplicate's visits (and its first visit) move to the survivor, counted once
    for survivor, duplicate in ((people[0], people[1]), (people[2], people[3])):
        visit(duplicate, at("2026-06-15T09:00:00"))
        visit(survivor, at("2026-06-20T09:00:00"))
    await Visit.bulk_create(rows)
    for survivor, duplicate in ((people[0], people[1]), (people[2], people[3])):
        merged = await tenant.call("front_desk", MERGE, s=str(survivor), d=str(duplicate))
        assert merged.errors == [], merged.errors

    jobs = []
    for _ in range(tasks):
        due = date(2026, 1, 1) + timedelta(days=rng.randrange(365))
        status = rng.choice(("requested", "accepted", "completed", "completed", "completed", "failed", "cancelled"))
        completed = None
        if status == "completed" and rng.random() < 0.95:  # a completed task without its time: neither in nor late
            midnight = datetime.combine(due + timedelta(days=1), time(0), ZONE).astimezone(UTC)
            completed = rng.choice((midnight, midnight - timedelta(microseconds=1), midnight + timedelta(hours=5),
                                    midnight - timedelta(days=rng.randrange(0, 5)), _moment(rng, edges)))
        jobs.append(FollowUpTask(institution_id=tenant.id, patient_id=rng.choice(people), due_on=due, status=status,
                                 department_id=rng.choice((dep_a, dep_a, dep_b)), completed_at=completed,
                                 satisfaction=rng.choice((None, 1, 2, 3, 4, 5, 5)) if completed else None))
    await FollowUpTask.bulk_create(jobs)

    now = datetime.now(UTC)
    moments = [*edges, *(now - timedelta(days=d, minutes=rng.randrange(600)) for d in range(0, 20))]
    made = []
    for _ in range(tickets):
        received = rng.choice(moments) if rng.random() < 0.4 else _moment(rng, edges)
        responded = None if rng.random() < 0.25 else received + _span(rng)
        resolved = None if rng.random() < 0.4 else received + _span(rng) + timedelta(hours=1)
        far = timedelta(days=rng.choice((-3, 2)))  # a target a day or more from now: decided the same either run
        response_due = rng.choice((None, received + timedelta(hours=4), now + far))
        resolution_due = rng.choice((None, received + timedelta(days=2), now + far, responded))
        made.append(Ticket(institution_id=tenant.id, patient_id=rng.choice(people), channel=rng.choice(CHANNELS),
                           category=rng.choice(CATEGORIES), level=2, subject=NOT_READ,
                           department_id=rng.choice((dep_a, dep_a, dep_b)), received_at=received,
                           first_responded_at=responded, resolved_at=resolved, response_due_at=response_due,
                           resolution_due_at=resolution_due))
    await Ticket.bulk_create(made)
    return World(tenant, (dep_a, dep_b))


@pytest.fixture
async def world(tenant: Tenant) -> World:
    return await build_world(tenant, random.Random(20261206))


async def test_the_visit_report_gives_the_answers_it_gave_reading_every_row(world: World) -> None:
    tenant, (dep_a, _) = world.tenant, world.departments
    reports = []
    for month in (*MONTHS, EMPTY):
        for n in (1, 3, 12):
            reply = await tenant.call("department_head", VISIT_REPORT, month=month, dep=str(dep_a), n=n)
            assert reply.errors == [], reply.errors
            assert reply.data["visitReport"] == await naive_visit_report(tenant.id, dep_a, month, n), (month, n)
            reports.append(reply.data["visitReport"])
    assert {(r["retentionRate"], r["followUp"]["completionRate"], r["averageSatisfaction"],
             r["waitingTime"]["medianMinutes"]) for r in reports if r["month"] == EMPTY} == {(None, None, None, None)}
    reports = [r for r in reports if r["month"] != EMPTY]
    # the mix reaches every figure: not a comparison of empty months
    assert all(r["patientsSeen"] > 3 and r["waitingTime"]["count"] > 5 and r["followUp"]["due"] > 5 for r in reports)
    assert all(sum(r[k] for r in reports) > 0 for k in ("noShows", "patientsReturned", "satisfactionResponses"))
    assert all(sum(r["followUp"][k] for r in reports) > 0 for k in ("doneOnTime", "doneLate", "notReached"))


async def test_the_ticket_report_gives_the_answers_it_gave_reading_every_row(world: World) -> None:
    tenant = world.tenant
    months = sorted({*MONTHS, datetime.now(ZONE).strftime("%Y-%m"), EMPTY})
    reports = []
    for dep in world.departments:
        for month in months:
            reply = await tenant.call("support_agent", TICKET_REPORT, month=month, dep=str(dep))
            assert reply.errors == [], reply.errors
            assert reply.data["ticketReport"] == await naive_ticket_report(tenant.id, dep, month), (dep, month)
            reports.append(reply.data["ticketReport"])
    assert [(r["tickets"], r["slaComplianceRate"], r["complaintRatePer1000"], r["resolution"]["p90Minutes"])
            for r in reports if r["month"] == EMPTY] == [(0, None, None, None)] * 2
    reports = [r for r in reports if r["month"] != EMPTY]
    assert all(r["tickets"] > 3 for r in reports) and sum(r["firstResponse"]["count"] for r in reports) > 100
    rates = [r["slaComplianceRate"] for r in reports]
    assert 0 in rates and any(rate not in (None, 0, 1) for rate in rates) and None not in rates


async def test_the_retention_windows_on_the_edges(tenant: Tenant) -> None:
    """Each EDGES window counts the patient back at its end and not the one back a microsecond later."""
    world = await build_world(tenant, random.Random(1), visits=0, tasks=0, tickets=0, patients=4)
    for first, months, _end in EDGES:
        month = first.astimezone(ZONE).strftime("%Y-%m")
        reply = await tenant.call("department_head", VISIT_REPORT, month=month, dep=str(world.departments[0]),
                                  n=months)
        report = reply.data["visitReport"]
        assert (report["patientsSeen"], report["patientsReturned"]) == (2, 1), (month, report)


# -- the rows are not loaded ----------------------------------------------------------------------------------------


async def _cost(tenant: Tenant, dep: uuid.UUID, sql_counter: SqlCounter, watches: list[RowsRead]) -> tuple[int, int]:
    """The statements of one visit report and one ticket report, and the most rows any statement on the reports'
    tables returned."""
    for watch in watches:
        watch.rows.clear()
        watch.queries.clear()
    start = len(sql_counter.statements)
    for query, name, role in ((VISIT_REPORT, "visitReport", "department_head"),
                              (TICKET_REPORT, "ticketReport", "support_agent")):
        extra = {"n": 12} if name == "visitReport" else {}
        reply = await tenant.call(role, query, month="2026-11", dep=str(dep), **extra)
        assert reply.errors == [], reply.errors
    return len(sql_counter.statements) - start, max(n for watch in watches for n in watch.rows)


async def test_a_month_of_many_rows_costs_the_statements_and_rows_of_a_month_of_few(
        tenant: Tenant, sql_counter: SqlCounter, rows_read: Callable[[str], RowsRead]) -> None:
    watches = [rows_read("visit"), rows_read("follow_up_task"), rows_read("ticket")]
    rng = random.Random(7)
    few = await build_world(tenant, rng, visits=20, tasks=10, tickets=10, patients=4)
    small = await _cost(tenant, few.departments[0], sql_counter, watches)
    await add_november(tenant, few.departments[0], rng, 600)
    large = await _cost(tenant, few.departments[0], sql_counter, watches)
    assert large[0] == small[0], (small, large)
    # a row per kind, channel and category (and a few percentile candidates), never one per visit, task or ticket
    assert large[1] <= len(CHANNELS) * len(CATEGORIES), large


async def add_november(tenant: Tenant, dep: uuid.UUID, rng: random.Random, n: int) -> None:
    """``n`` finished visits (with waits), follow-up tasks and tickets of the department in November."""
    patients = [await make_patient(tenant) for _ in range(3)]
    start = at("2026-11-01T00:00:00")
    moments = [start + timedelta(seconds=rng.randrange(29 * 86400)) for _ in range(n)]
    await Visit.bulk_create([Visit(institution_id=tenant.id, patient_id=rng.choice(patients), kind=rng.choice(KINDS),
                                   status="finished", department_id=dep, planned_at=m, arrived_at=m,
                                   started_at=m + timedelta(minutes=rng.randrange(60)), ended_at=m + timedelta(hours=2))
                             for m in moments])
    await FollowUpTask.bulk_create([
        FollowUpTask(institution_id=tenant.id, patient_id=rng.choice(patients), department_id=dep,
                     due_on=m.astimezone(ZONE).date(), status="completed", completed_at=m, satisfaction=4)
        for m in moments])
    await Ticket.bulk_create([
        Ticket(institution_id=tenant.id, patient_id=rng.choice(patients), channel=rng.choice(CHANNELS),
               category=rng.choice(CATEGORIES), level=2, subject=NOT_READ, department_id=dep, received_at=m,
               first_responded_at=m + timedelta(minutes=rng.randrange(90)),
               resolved_at=m + timedelta(hours=rng.randrange(48)), response_due_at=m + timedelta(hours=4))
        for m in moments])


# -- the retention windows' stretches, against the rule itself ------------------------------------------------------

ZONES = ("America/New_York", "Europe/Berlin", "Europe/Dublin", "Australia/Lord_Howe", "Asia/Kathmandu",
         "Pacific/Chatham", "America/Santiago", "Africa/Casablanca", "Asia/Tehran", "Pacific/Apia", "America/St_Johns",
         "Antarctica/Troll", "Asia/Shanghai", "Pacific/Kiritimati", "America/Godthab")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(zone=st.sampled_from(ZONES), year=st.integers(2000, 2199), month=st.integers(1, 12),
       months=st.integers(1, 24), data=st.data())
def test_a_first_visit_plus_its_stretchs_shift_is_its_window_end(zone: str, year: int, month: int, months: int,
                                                                 data: st.DataObject) -> None:
    """``_window_shifts``: for any first visit of the month (random ones, and each side of every stretch's start),
    the first visit plus its stretch's shift is the end of its window as ``_add_months_at`` computes it."""
    tz = ZoneInfo(zone)
    first_day = date(year, month, 1)
    since, until = (datetime.combine(first_day, time(0), tz).astimezone(UTC),
                    datetime.combine(_next_month(first_day), time(0), tz).astimezone(UTC))
    stretches = _window_shifts(tz, since, until, months)
    assert stretches[0][0] == since and all(a[0] < b[0] for a, b in itertools.pairwise(stretches))
    span = (until - since) // timedelta(microseconds=1)
    moments = [since + timedelta(microseconds=data.draw(st.integers(0, span - 1))) for _ in range(20)]
    for start, _ in stretches:
        moments += [m for m in (start - timedelta(microseconds=1), start) if since <= m < until]
    moments.append(until - timedelta(microseconds=1))
    for moment in moments:
        shift = next(s for start, s in reversed(stretches) if start <= moment)
        # in UTC: an aware datetime in a DST fold or gap is never == one of another zone (PEP 495), though it is
        # <= and >= it (the reports' rule compares with <=)
        window_end = visit_report._add_months_at(moment.astimezone(tz), months).astimezone(UTC)
        assert moment + shift == window_end, (moment, shift)
