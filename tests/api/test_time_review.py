"""Time review (dates, zones, calendars): each test but the last proves a defect found in review (each failed
before its fix); the last shows a fall-back day's slots, which were right.

Every test sends GraphQL over HTTP to the real app (the fixtures of tests/api); where "now" matters the module's
clock is frozen, as tests/api/test_sla_boundaries.py and tests/api/test_schedules.py do.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

import resolvers.care_plan as care_plan_module
import resolvers.institution as institution_module
import resolvers.ticket as ticket_module
from models import Contract
from resolvers import contract as contracts
from resolvers.context import Services
from tests.api.test_contract_renewal import at_local, past_contract
from tests.api.test_ticket_sla import CALENDAR_SET, open_ticket
from tests.factories import Tenant, make_patient

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Frozen:
    moment: datetime = datetime.now(UTC)


class FrozenDatetime(datetime):
    @classmethod
    def now(cls, tz=None):  # type: ignore[no-untyped-def,override]
        return Frozen.moment if tz is None else Frozen.moment.astimezone(tz)


def local(day: date, hour: int, minute: int = 0, zone: ZoneInfo = SHANGHAI) -> datetime:
    return datetime.combine(day, time(hour, minute), zone)


def last_monday() -> date:
    day = datetime.now(SHANGHAI).date() - timedelta(days=1)
    while day.weekday() != 0:
        day -= timedelta(days=1)
    return day


# -- 1. care plan: "startsOn null: today" is today in UTC, not in the institution's zone -------------------------

PLAN = """mutation($input: CarePlanCreateInput!) { carePlanCreate(input: $input) {
  id startsOn activities { kind dueOn } } }"""


async def test_a_care_plan_without_starts_on_starts_on_the_institutions_today(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """07:30 on 5 December in Shanghai is 23:30 on 4 December in UTC. The schema says startsOn null means today;
    a doctor in Shanghai creating a plan then means 5 December, and an activity afterDays 0 is due today, not
    yesterday (overdue the moment it is created)."""
    Frozen.moment = local(date(2026, 12, 5), 7, 30).astimezone(UTC)
    monkeypatch.setattr(care_plan_module, "datetime", FrozenDatetime)
    # "today" is the institution's (institutions.local_today_of): frozen there too, or the test passed only on the
    # days when Shanghai's date was 5 December (it failed from 16:00 UTC on 5 December)
    monkeypatch.setattr(institution_module, "datetime", FrozenDatetime)
    pid = await make_patient(tenant)
    reply = await tenant.call("doctor", PLAN, input={
        "patientId": str(pid), "title": "Wound care", "activities": [{"kind": "EDUCATION", "afterDays": 0},
                                                                      {"kind": "CALL", "afterDays": 1}]})
    assert reply.errors == [], reply.errors
    plan = reply.data["carePlanCreate"]
    assert plan["startsOn"] == "2026-12-05", plan
    assert [a["dueOn"] for a in plan["activities"]] == ["2026-12-05", "2026-12-06"], plan


# -- 2. the audit trail's filter: a time without an offset ------------------------------------------------------

EVENTS = """query($filter: AuditEventFilter) { auditEvents(first: 5, filter: $filter) { nodes { id occurredAt } } }"""
ACCESS_REPORT = """query($id: ID!, $from: DateTime) { patientAccessReport(patientId: $id, from: $from) { name } }"""


async def test_the_audit_filter_refuses_a_time_without_offset_as_the_reports_do(tenant: Tenant) -> None:
    """filter.from is documented "with its zone offset"; patientAccessReport refuses a time without one. The trail's
    filter instead reads it silently as UTC: a Shanghai officer asking for events since an hour ago in local wall
    time is asking, for the server, for events from seven hours in the future, and gets an empty page."""
    pid = await make_patient(tenant)
    hour_ago_local = (datetime.now(SHANGHAI) - timedelta(hours=1)).replace(tzinfo=None, microsecond=0)
    report = await tenant.call("compliance_officer", ACCESS_REPORT, id=str(pid), **{"from": hour_ago_local.isoformat()})
    assert report.codes == ["BAD_USER_INPUT"], report.errors  # the report refuses it
    aware = await tenant.call("compliance_officer", EVENTS, filter={"from": hour_ago_local.isoformat() + "+08:00"})
    assert aware.errors == [] and aware.data["auditEvents"]["nodes"], aware.errors  # the same wall time, with offset
    events = await tenant.call("compliance_officer", EVENTS, filter={"from": hour_ago_local.isoformat()})
    # the trail holds events of the last minute (the tenant's accounts, the patient just created)
    assert events.codes == ["BAD_USER_INPUT"], (events.errors, events.data)


async def test_the_audit_filter_with_one_end_without_offset_is_not_an_internal_error(tenant: Tenant) -> None:
    """from without an offset and to with one: the resolver compares them (naive > aware) and raises TypeError,
    answered as an internal error instead of BAD_USER_INPUT on the field."""
    reply = await tenant.call("compliance_officer", EVENTS, filter={
        "from": "2026-12-01T00:00:00", "to": "2026-12-02T00:00:00+08:00"})
    assert reply.codes == ["BAD_USER_INPUT"], reply.errors


# -- 3. the automatic renewal of a yearly term that began on 29 February ------------------------------------------


async def test_an_automatic_renewal_of_a_year_from_29_february_keeps_the_anniversary(
        tenant: Tenant, services: Services) -> None:
    """A one-year term 2024-02-29..2025-02-28 renews itself. The next term should be the next year,
    2025-03-01..2026-02-28 (or 2025-02-28..2026-02-27 by add_months); next_term_end falls back to counting days
    (365) and gives 2025-03-01..2026-03-01, a year and a day, and each later renewal drifts one more day
    (2026-03-02..2027-03-02, ...)."""
    start, end = date(2024, 2, 29), date(2025, 2, 28)
    made = await past_contract(tenant, services, start, end, autoRenew=True)
    await contracts.expire_due(services.keyring, at_local(end + timedelta(days=1), time(0, 5), "Asia/Shanghai"))
    [renewal] = await Contract.filter(renewal_of_id=made["id"])
    assert renewal.start_on == date(2025, 3, 1)
    assert renewal.end_on == date(2026, 2, 28), renewal.end_on
    # the term after it starts on the anniversary again, not a day later each year
    await contracts.expire_due(services.keyring, at_local(renewal.end_on + timedelta(days=1), time(0, 5),
                                                          "Asia/Shanghai"))
    [third] = await Contract.filter(renewal_of_id=renewal.id)
    assert (third.start_on, third.end_on) == (date(2026, 3, 1), date(2027, 2, 28)), (third.start_on, third.end_on)


# -- 4. "closed within 1 business day" on a calendar that is not 8 hours a day -------------------------------------

ROUND_THE_CLOCK = [{"weekday": d, "intervals": [{"start": "00:00", "end": "00:00"}]} for d in range(1, 8)]
MORNINGS = [{"weekday": d, "intervals": [{"start": "08:00", "end": "12:00"}]} for d in range(1, 6)]


@pytest.fixture
def frozen_ticket_clock(monkeypatch: pytest.MonkeyPatch) -> type[Frozen]:
    monkeypatch.setattr(ticket_module, "datetime", FrozenDatetime)
    return Frozen


async def test_one_business_day_on_a_round_the_clock_calendar_is_a_day(tenant: Tenant,
                                                                      frozen_ticket_clock: type[Frozen]) -> None:
    """An elderly-care home with a 24x7 hotline sets its business calendar to every day 00:00-24:00. A level-2
    enquiry must be closed within 1 business day (domain.md): received Monday 10:00, due Tuesday 10:00. The
    default target is 8 working hours whatever the calendar, so it is due (and breached) at Monday 18:00."""
    reply = await tenant.call("admin", CALENDAR_SET, input={"week": ROUND_THE_CLOCK})
    assert reply.errors == [], reply.errors
    monday = last_monday()
    frozen_ticket_clock.moment = local(monday, 10).astimezone(UTC)
    ticket = await open_ticket(tenant)
    assert ticket["level"] == 2
    due = datetime.fromisoformat(ticket["resolutionSla"]["dueAt"])
    assert due == local(monday + timedelta(days=1), 10), due.astimezone(SHANGHAI)


async def test_one_business_day_on_a_mornings_only_calendar_is_not_two(tenant: Tenant,
                                                                      frozen_ticket_clock: type[Frozen]) -> None:
    """A clinic open Monday to Friday 08:00-12:00: a level-2 enquiry received Monday 08:00 is due by the end of
    that business day (12:00), as a standard-calendar one received at 08:00 is due at 17:00 the same day; the
    8-working-hour target makes it Tuesday 12:00, two business days."""
    reply = await tenant.call("admin", CALENDAR_SET, input={"week": MORNINGS})
    assert reply.errors == [], reply.errors
    monday = last_monday()
    frozen_ticket_clock.moment = local(monday, 8).astimezone(UTC)
    ticket = await open_ticket(tenant)
    due = datetime.fromisoformat(ticket["resolutionSla"]["dueAt"])
    assert due == local(monday, 12), due.astimezone(SHANGHAI)


# -- 5. (control, expected to pass) slots and bookings on a fall-back day in New York --------------------------------

NEW_YORK = ZoneInfo("America/New_York")


async def test_the_two_half_past_ones_of_a_fall_back_day_are_two_slots(
        tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sunday 7 November 2027 in New York: 01:00-02:00 happens twice. A session 00:00-03:00 of 30-minute slots
    holds 8 slots, both 01:30s are bookable, and the day's list shows both."""
    from models import Institution
    from resolvers import appointment as appointments
    from resolvers import schedule as schedules
    from tests.api.test_appointments import BOOK, SCHEDULE_DAY, booking
    from tests.api.test_schedules import FREE
    await Institution.filter(id=tenant.id).update(time_zone="America/New_York")
    now = datetime(2027, 11, 1, 12, tzinfo=UTC)
    monkeypatch.setattr(appointments, "_now", lambda: now)
    monkeypatch.setattr(schedules, "_now", lambda: now)
    reply = await tenant.call("admin", """mutation($input: ScheduleCreateInput!) { scheduleCreate(input: $input) {
      id } }""", input={"name": "Night clinic", "kind": "RESOURCE", "departmentId": str(tenant.departments["A"].id),
                        "week": [{"weekday": 7, "sessions": [{"start": "00:00", "end": "03:00"}]}],
                        "slotMinutes": 30, "capacity": 1})
    assert reply.errors == [], reply.errors
    sid = reply.data["scheduleCreate"]["id"]
    free = await tenant.call("front_desk", FREE, schedule=sid, **{"from": "2027-11-07", "to": "2027-11-07"})
    assert free.errors == [], free.errors
    starts = [datetime.fromisoformat(s["start"]).astimezone(UTC) for s in free.data["freeSlots"]]
    assert len(starts) == 8, starts
    first_half_past_one = datetime(2027, 11, 7, 1, 30, tzinfo=NEW_YORK)  # EDT, fold 0
    second_half_past_one = datetime(2027, 11, 7, 1, 30, fold=1, tzinfo=NEW_YORK)  # EST
    for moment in (first_half_past_one, second_half_past_one):
        pid = await make_patient(tenant)
        booked = await tenant.call("front_desk", BOOK, input=booking(sid, pid, moment.astimezone(UTC).isoformat()))
        assert booked.errors == [], booked.errors
    day = await tenant.call("front_desk", SCHEDULE_DAY, sid=sid, date="2027-11-07")
    assert day.errors == [], day.errors
    assert len(day.data["scheduleDay"]["nodes"]) == 2
