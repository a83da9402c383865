"""The demo institution's appointments and messages: schedules, a week of bookings around today, the
messages they caused, logged calls and a finished campaign, all through careloop's own resolvers.

The appointment API books only slots still to come and stamps each change with the present, so the days
behind us are replayed: every step runs with the clocks of the appointment, schedule, message and campaign
resolvers set to its moment (never later than now), in time order, and before each step the message outbox
delivers what fell due meanwhile with the development senders, as the running service would have. The
story is told relative to now: today's patients are on an extra session that starts two hours before the
current hour, so the desk shows arrivals and patients still to come whatever the time of day.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.demo_clock import clocked
from app.senders import Senders, logging_senders
from audit.events import RequestMeta
from core.principal import PATIENT, Principal
from models import Department, PatientAccount, Schedule, Staff
from resolvers import appointment as appointments
from resolvers import campaign as campaigns
from resolvers import communication as communications
from resolvers import institution as institutions
from resolvers import message_template as templates
from resolvers import messaging
from resolvers import schedule as schedules
from resolvers import visit as visits
from resolvers.appointment import AppointmentView
from resolvers.context import Context, Services
from resolvers.loaders import Loaders

# The resolvers whose clock the replay sets (each reads the present through its module's ``_now``).
CLOCKED = (appointments, campaigns, communications, schedules)
MAX_DELIVERIES = 200  # rounds of the outbox in one catch-up, far more than the story needs
INSTITUTION_PHONE = "400-820-6688"
REMINDER_HOURS = 24
# The institution's own SMS reminder in Chinese: shorter than the default, and it asks patients to come early.
REMINDER_SMS = ("就诊提醒", "{patient_name}您好，您预约了{date} {time}{department_name}（{place}）。请提前10分钟到达，"
                "改约请致电{institution_phone}。【{institution_name}】")
CAMPAIGN = {
    "name": "Orthodontic check-up month", "purpose": "campaign", "audience": {"segment": "orthodontics"},
    "subject": "Orthodontic check-ups this month",
    "body": "{patient_name}：本月正畸复查免费，预约电话{institution_phone}。Free orthodontic check-ups this month at "
            "{institution_name}: call {institution_phone}. 退订 Unsubscribe: {unsubscribe_url}",
}


@dataclass(frozen=True)
class Plan:
    """A schedule of the demo: its clinician's demo role (None for a resource), department, weekdays and
    local sessions ((hour, minute, hour, minute)), slot length and places per slot."""

    name: str
    kind: str
    clinician: str | None
    department: str
    weekdays: Iterable[int]
    sessions: tuple[tuple[int, int, int, int], ...]
    slot_minutes: int
    capacity: int = 1


PLANS = {
    "doctor": Plan("Demo doctor, orthodontics", "clinician", "doctor", "Orthodontics", range(1, 7),
                   ((9, 0, 12, 0), (14, 0, 17, 30)), 30),
    "head": Plan("Demo department head, orthodontic consultations", "clinician", "department_head", "Orthodontics",
                 range(1, 6), ((14, 0, 17, 0),), 45),
    "hygiene": Plan("Hygiene clinic, Demo nurse", "clinician", "nurse", "General Dentistry", range(1, 8),
                    ((8, 30, 12, 0), (13, 30, 18, 0)), 30),
    "chair": Plan("Chair 3, implant surgery", "resource", None, "Implants and Restoration", range(1, 7),
                  ((8, 0, 12, 0), (13, 0, 18, 0)), 60),
}
# (schedule, slot indices among the free slots of the next six days, why the patient comes)
WEEK_BOOKINGS = (
    ("doctor", (1, 4, 9, 13, 18, 22, 27), ("Braces adjustment", "Aligner check", "Retainer review",
                                          "First orthodontic consultation")),
    ("head", (0, 3, 6), ("Second opinion on the treatment plan", "Orthodontic consultation")),
    ("chair", (2, 5, 8, 11), ("Implant placement", "Implant review", "Crown fitting")),
)
CHANNELS = ("phone", "front_desk", "web", "app", "kiosk")
EXTRA_HOURS = 6  # today's extra session: from two hours before the current hour, this long
FEWEST_OWN_PATIENTS = 30  # the story takes patients of its own when the demo has this many to spare


class Replay:
    """Runs the story's steps at their moments, the message outbox catching up before each."""

    def __init__(self, services: Services, senders: Senders, now: datetime) -> None:
        self.services, self.senders, self.now = services, senders, now
        self.moment = datetime.min.replace(tzinfo=UTC)

    @contextlib.asynccontextmanager
    async def at(self, moment: datetime) -> AsyncIterator[None]:
        if not self.moment <= moment <= self.now:
            raise ValueError("the story runs forward, and never past now")
        await self.deliver_until(moment)
        self.moment = moment
        with clocked(CLOCKED, moment):
            yield

    async def deliver_until(self, moment: datetime) -> None:
        """Each message sent at its due time, as the running outbox would have (quiet hours defer some)."""
        for _ in range(MAX_DELIVERIES):
            due = await communications.next_due()
            if due is None or due > moment:
                return
            with clocked(CLOCKED, due):
                await communications.deliver_due(self.services, self.senders, due)

    async def finish(self) -> None:
        await self.deliver_until(self.now)
        await self.senders.aclose()


class Patients:
    """The story's patients, taken in turn (round again when the demo has few)."""

    def __init__(self, ids: Sequence[uuid.UUID]) -> None:
        self.ids, self.taken = ids, 0

    def __len__(self) -> int:
        return len(self.ids)

    def next(self) -> uuid.UUID:
        patient_id = self.ids[self.taken % len(self.ids)]
        self.taken += 1
        return patient_id


@dataclass
class Cast:
    """Who acts in the story, and where."""

    admin: Context
    desk: Context
    staff: dict[str, Staff]  # demo role -> account
    departments: dict[str, Department]  # name -> department
    zone: ZoneInfo
    now: datetime

    @property
    def today(self) -> date:
        return self.now.astimezone(self.zone).date()

    def local(self, days: int, hour: int, minute: int = 0) -> datetime:
        """``hour:minute`` local time ``days`` after today, in UTC."""
        return datetime.combine(self.today + timedelta(days=days), time(hour, minute), self.zone).astimezone(UTC)


async def seed(services: Services, *, admin: Context, desk: Context, staff: dict[str, Staff],
               departments: dict[str, Department], patient_ids: list[uuid.UUID], pool_from: int,
               approver: Context, now: datetime | None = None) -> None:
    """Messaging settings and a template of the institution's own, four schedules (a leave, an extra session
    today), a campaign four days ago, and a week of appointments booked, kept, missed, cancelled and moved,
    with every message they caused sent or refused by the gate, and two logged calls. ``staff``: the demo
    accounts by role; the appointments' patients are taken from ``pool_from`` on when enough are left there;
    ``approver``: another admin, who approves the admin's campaign (four eyes) before it is started;
    ``now``: the present the story is told at (tests tell it at other hours)."""
    cast = Cast(admin, desk, staff, departments, await institutions.zone(admin.institution_id),
                now or datetime.now(UTC))
    await _messaging(admin)
    rows = await _schedules(cast)
    quiet = logging.getLogger("careloop.messages")  # one line per message would bury the demo's own output
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        replay = Replay(services, logging_senders(), cast.now)
        async with replay.at(cast.local(-4, 10)):
            await _campaign(admin, approver, replay.moment)
        if patient_ids:
            spare = len(patient_ids) - pool_from >= FEWEST_OWN_PATIENTS
            pool = Patients(patient_ids[pool_from:] if spare else patient_ids)
            await _week(cast, replay, rows, pool, await _portal(services, patient_ids[0]))
        await replay.finish()
    finally:
        quiet.setLevel(level)


async def _messaging(admin: Context) -> None:
    """The institution's phone (printed in every message), reminders the day before, and its own SMS reminder."""
    await messaging.update(admin, {"institution_phone": INSTITUTION_PHONE, "reminder_hours_before": REMINDER_HOURS,
                                   "quiet_start": time(21), "quiet_end": time(8),
                                   "email_from": "noreply@demo.careloop.test"}, None)
    await templates.set_template(admin, "appointment_reminder", "sms", "zh-CN", *REMINDER_SMS, None)


async def _schedules(cast: Cast) -> dict[str, Schedule]:
    """The four schedules; the department head's leave the day after tomorrow and the next; today's extra
    session of the hygiene clinic, two places a slot, around the current hour."""
    rows: dict[str, Schedule] = {}
    for key, plan in PLANS.items():
        rows[key] = await schedules.create(cast.admin, {
            "name": plan.name, "kind": plan.kind, "department_id": cast.departments[plan.department].id,
            "clinician_id": cast.staff[plan.clinician].id if plan.clinician else None,
            "week": [{"weekday": day, "sessions": [(time(a, b), time(c, d)) for a, b, c, d in plan.sessions]}
                     for day in plan.weekdays],
            "slot_minutes": plan.slot_minutes, "capacity": plan.capacity})
    await schedules.exception_add(cast.admin, rows["head"].id, {
        "kind": "leave", "starts_at": cast.local(2, 0), "ends_at": cast.local(4, 0),
        "reason": "Orthodontics congress"})
    await schedules.exception_add(cast.admin, rows["hygiene"].id, {
        "kind": "extra", "starts_at": _extra_start(cast.now), "ends_at": _extra_start(cast.now) + timedelta(
            hours=EXTRA_HOURS), "capacity": 2, "reason": "A second hygienist covers the waiting list"})
    return rows


def _extra_start(now: datetime) -> datetime:
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)


async def _campaign(admin: Context, approver: Context, moment: datetime) -> None:
    """Orthodontic patients invited to a check-up, written by the admin and approved by another (four eyes) before it
    is started: the gate lets through those who want campaigns."""
    row = await campaigns.create(admin, CAMPAIGN)
    row = await campaigns.approve(approver, row.id, row.version)
    await campaigns.start(admin, row.id, row.version)
    await campaigns.advance(moment)


async def _portal(services: Services, patient_id: uuid.UUID) -> Context | None:
    """The first patient signed in to the portal (they have the demo's patient account)."""
    account = await PatientAccount.get_or_none(patient_id=patient_id, is_active=True)
    if account is None:
        return None
    return Context(
        services=services, request=RequestMeta(request_id="demo-seed", user_agent="careloop demo"),
        principal=Principal(institution_id=account.institution_id, user_id=account.id, token_id=None,
                            email=account.email, name="", roles=frozenset({PATIENT}), department_ids=frozenset(),
                            kind=PATIENT, patient_id=patient_id),
        keys=await services.keyring.get(account.institution_id), loaders=Loaders(account.institution_id))


async def _free(ctx: Context, schedule: Schedule, first: date, last: date) -> list[datetime]:
    return [view.slot.start for view in await schedules.free_slots(ctx, schedule_id=schedule.id, from_date=first,
                                                                   to_date=last)]


async def _book(ctx: Context, patient_id: uuid.UUID, schedule: Schedule, start: datetime, reason: str,
                channel: str | None = None) -> AppointmentView:
    data: dict[str, Any] = {"patient_id": patient_id, "schedule_id": schedule.id, "slot_start": start,
                            "reason": reason}
    if channel is not None:
        data["channel"] = channel
    return await appointments.book(ctx, data)


async def _arrive(desk: Context, view: AppointmentView, *, steps: Sequence[tuple[str, datetime]] = ()) -> None:
    """Check the patient in (the appointment opens its visit), then move the visit on at the given times."""
    arrived = await appointments.check_in(desk, view.row.id, None)
    for to, at in steps:
        await visits.transition(desk, arrived.row.visit_id, to, at, None)


async def _week(cast: Cast, replay: Replay, rows: dict[str, Schedule], pool: Patients,
                portal: Context | None) -> None:
    desk, local = cast.desk, cast.local
    # Three days ago the desk booked yesterday's hygiene clinic and the week ahead.
    moments = (local(-3, 9) + timedelta(minutes=6 * n) for n in itertools.count())
    async with replay.at(next(moments)):
        yesterday = await _free(desk, rows["hygiene"], cast.today - timedelta(days=1), cast.today - timedelta(days=1))
        week = {key: await _free(desk, rows[key], cast.today + timedelta(days=1), cast.today + timedelta(days=6))
                for key, _, _ in WEEK_BOOKINGS}
    kept: list[AppointmentView] = []
    for n, index in enumerate((0, 2, 5)):
        async with replay.at(next(moments)):
            kept.append(await _book(desk, pool.next(), rows["hygiene"], yesterday[index],
                                    ("Scaling and polishing", "Six-monthly cleaning", "Bleeding gums")[n], "phone"))
    booked: dict[str, list[AppointmentView]] = {}
    for key, indices, reasons in WEEK_BOOKINGS:
        for n, index in enumerate(i for i in indices if i < len(week[key])):
            async with replay.at(next(moments)):
                booked.setdefault(key, []).append(await _book(
                    desk, pool.next(), rows[key], week[key][index], reasons[n % len(reasons)],
                    CHANNELS[n % len(CHANNELS)]))
    today = await _book_today(cast, replay, rows["hygiene"], pool)
    if portal is not None:  # the portal's demo patient books an orthodontic check-up themself
        async with replay.at(local(-2, 20, 10)):
            slots = await _free(portal, rows["doctor"], cast.today + timedelta(days=2), cast.today + timedelta(days=6))
            patient_id = portal.require_principal().patient_id
            if slots and patient_id is not None:
                await _book(portal, patient_id, rows["doctor"], slots[min(3, len(slots) - 1)], "My braces feel loose")
    await _yesterday(cast, replay, kept, booked.get("doctor", []), rows["doctor"])
    await _today(cast, replay, today)


async def _book_today(cast: Cast, replay: Replay, hygiene: Schedule,
                      pool: Patients) -> dict[int, list[AppointmentView]]:
    """Two days ago: today's extra session booked by phone, slot by slot (two patients in the first slot)."""
    start = _extra_start(cast.now)
    slot = timedelta(minutes=PLANS["hygiene"].slot_minutes)
    seats = {0: 2 if len(pool) > 1 else 1, 1: 1, 2: 1, 3: 1, 6: 1, 7: 1, 8: 1}
    today: dict[int, list[AppointmentView]] = {}
    moment = cast.local(-2, 10)
    for index, count in seats.items():
        for _ in range(count):
            moment += timedelta(minutes=7)
            async with replay.at(moment):
                today.setdefault(index, []).append(await _book(
                    cast.desk, pool.next(), hygiene, start + index * slot, "Scaling and polishing", "phone"))
    return today


async def _yesterday(cast: Cast, replay: Replay, kept: list[AppointmentView], doctor: list[AppointmentView],
                     doctor_schedule: Schedule) -> None:
    """The first and third hygiene patients came and were treated, the second did not come (the desk called
    them); a patient cancelled, another asked on the phone to move to later in the week."""
    desk, local = cast.desk, cast.local
    first, missed, third = kept
    async with replay.at(first.row.slot_start - timedelta(minutes=5)):
        await _arrive(desk, first, steps=(("in_progress", first.row.slot_start + timedelta(minutes=2)),
                                          ("finished", first.row.slot_start + timedelta(minutes=28))))
    async with replay.at(missed.row.slot_start + timedelta(minutes=20)):
        await appointments.no_show(desk, missed.row.id, None)
    async with replay.at(third.row.slot_start - timedelta(minutes=4)):
        await _arrive(desk, third, steps=(("in_progress", third.row.slot_start + timedelta(minutes=3)),
                                          ("finished", third.row.slot_start + timedelta(minutes=30))))
    if len(doctor) >= 3:
        async with replay.at(local(-1, 15)):
            await appointments.cancel(desk, doctor[1].row.id, "patient", None)
        async with replay.at(local(-1, 15, 55)):
            await communications.log_call(desk, doctor[2].row.patient_id, {
                "direction": "inbound", "occurred_at": local(-1, 15, 50),
                "note": "Asked to move the appointment to later in the week; moved while on the phone."})
            later = [s for s in await _free(desk, doctor_schedule, cast.today + timedelta(days=3),
                                            cast.today + timedelta(days=6)) if s > doctor[2].row.slot_start]
            if later:
                await appointments.reschedule(desk, doctor[2].row.id, later[len(later) // 2], None)
    async with replay.at(local(-1, 16, 30)):
        await communications.log_call(desk, missed.row.patient_id, {
            "direction": "outbound", "occurred_at": local(-1, 16, 25),
            "note": "Missed this morning's cleaning; will call back after work to book again."})


async def _today(cast: Cast, replay: Replay, today: dict[int, list[AppointmentView]]) -> None:
    """The extra session so far: the first slot's two patients treated, the next one in the chair, the one
    after waiting; the fourth slot's patient has not come yet, the later ones are still to come."""
    desk = cast.desk

    def at(view: AppointmentView, minutes: int) -> datetime:
        """Minutes after the slot's start, but on the slot's own local day (check-in opens on the day)."""
        start = view.row.slot_start
        midnight = datetime.combine(start.astimezone(cast.zone).date(), time(0), cast.zone).astimezone(UTC)
        return max(start + timedelta(minutes=minutes), midnight)

    first = today[0]
    for n, view in enumerate(first):
        async with replay.at(at(view, -6 + 3 * n)):
            await appointments.check_in(desk, view.row.id, None)
    async with replay.at(at(first[0], 2)):
        for n, view in enumerate(first):
            arrived = await appointments.get(desk, view.row.id)
            await visits.transition(desk, arrived.row.visit_id, "in_progress", at(view, 2 + n), None)
    chair = today[1][0]
    async with replay.at(at(chair, -3)):
        await appointments.check_in(desk, chair.row.id, None)
    async with replay.at(at(first[0], 35)):
        for n, view in enumerate(first):
            arrived = await appointments.get(desk, view.row.id)
            await visits.transition(desk, arrived.row.visit_id, "finished", at(view, 30 + 5 * n), None)
        arrived = await appointments.get(desk, chair.row.id)
        await visits.transition(desk, arrived.row.visit_id, "in_progress", at(chair, 5), None)
    waiting = today[2][0]
    async with replay.at(at(waiting, -2)):
        await appointments.check_in(desk, waiting.row.id, None)
