"""The demo institution's survey desk (issue 14): the shipped questionnaires adopted, triggers after finished
visits, and three months of invitations and answers, all through careloop's own resolvers.

The story: the clinic adopted the seed's 7-item outpatient satisfaction form, the doctors' rating of the
nursing service, NPS and CSAT. An outpatient visit's patient is asked the satisfaction form two hours after it
ends, a dental visit's patient the NPS question, reminded after three days; a closed ticket's patient is asked
the CSAT question. Over the three months before this one, General Dentistry and Orthodontics each saw
``PER_CELL`` outpatients a month and General Dentistry ``NPS_PER_MONTH`` dental patients: most answered
through the link their message carried, some after the reminder, patients whom no message could reach were
called and their answers entered by the nurse, and a few never answered. Orthodontics had a bad month for
waiting times two months ago (a dip on its control chart). The doctors rated their department's nursing every
month. This month: the first visits so far, a patient who answered under the threshold a few minutes ago (the
complaint ticket it opened waits in Orthodontics' queue), and the portal's demo patient, invited yesterday,
with the survey still to answer. The follow-up calls the outpatient visits asked for are made as the nurse's
worklist shows them (those due more than three days ago done, the rest claimed).

As in ``app.demo_appointments``, the past is replayed: each step runs with the clocks of the survey, answer and
message resolvers set to its moment, in time order; before each answer and each run of the reminder sweep (when
a reminder falls due: the running sweep looks every ten minutes) the outbox sends what fell due meanwhile, each
message at its own due time. Everything is decided by a seeded random generator and the calendar
(the months are those before today's, so the figures are the same whenever in a month the demo is made).
Fewer patients than the story wants: it asks those it may (the fatigue cap is kept) and skips the rest.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.demo_appointments import Replay
from app.demo_clock import clocked
from app.senders import logging_senders
from audit.events import RequestMeta
from core import tokens
from models import Communication, Department, FollowUpTask, PatientAccount, Questionnaire, Staff, SurveyInvitation
from resolvers import communication as communications
from resolvers import follow_up
from resolvers import institution as institutions
from resolvers import questionnaire as questionnaires
from resolvers import questionnaire_response as responses
from resolvers import survey as surveys
from resolvers import visit as visits
from resolvers.context import Context, Services

# The resolvers whose clock the story sets (each reads the present through its module's ``_now``); the outbox
# catches up through ``Replay.deliver_until``, which sets the message resolvers' clock itself.
CLOCKED = (surveys, responses, communications)
MONTHS = 3  # complete months of answers before the current one
PER_CELL = 7  # outpatients asked a month in each of the two departments (6 answer: figures shown)
NPS_PER_MONTH = 6  # dental patients asked the NPS question a month (5 answer, the minimum cell)
AFTER_REMINDER = {4, 5}  # the 5th and 6th answer after the reminder
BY_PHONE = 3  # the cell's 4th patient is one no message reaches: the nurse calls them
FATIGUE = timedelta(days=31)  # the default cap is 30 days: the story never asks a patient sooner
DELAY_HOURS = 2
REMINDER_DAYS = 3
SURVEYED = ("General Dentistry", "Orthodontics")
NPS_DEPARTMENT = "General Dentistry"
RATED = (("doctor", "Orthodontics"), ("doctor", "General Dentistry"), ("department_head", "Orthodontics"))
OUTPATIENT_ITEMS = ("reception", "nurse_attitude", "nursing_skill", "health_guidance", "environment",
                    "waiting_time", "overall")
NURSING_ITEMS = ("head_nurse_management", "nurse_competence", "nurse_attitude", "cooperation", "overall")
# How likely a 3, 4 or 5 is on each item: (department, months back) -> weights; other cells are GOOD.
GOOD = (0.05, 0.33, 0.62)
BAD_MONTH = ("Orthodontics", 2)
PROFILES = {BAD_MONTH: (0.3, 0.45, 0.25), ("Orthodontics", 3): (0.08, 0.4, 0.52)}
SLOW = (0.55, 0.35, 0.1)  # waiting time in Orthodontics' bad month
COMMENTS = ("候诊时间有点长，希望能准时叫号。", "前台登记比较慢。", "Waited quite a while past my appointment time.",
            "护士很耐心，但停车不方便。", "The waiting room was crowded.")
NPS_REASONS = ("医生讲解很清楚。", "Friendly staff and a clean clinic.", "离家近，预约方便。")
NURSING_COMMENTS = ("护理记录及时规范。", "Handovers are thorough; evenings could use one more nurse.")
# The answer under the threshold that opened a complaint: a long wait nobody explained.
LOW = {"reception": 3, "nurse_attitude": 2, "nursing_skill": 4, "health_guidance": 3, "environment": 4,
       "waiting_time": 1, "overall": 2, "comment": "候诊超过一个小时，也没有人解释原因，很失望。"}
CAUSE = "survey_invitation"
REQUEST = RequestMeta(request_id="demo-seed", user_agent="careloop demo")


@dataclass(frozen=True)
class Planned:
    """A visit of the story and what its patient does with the invitation it brings."""

    ended: datetime
    department: str
    kind: str  # outpatient (the satisfaction form) or dental (NPS)
    fate: str  # prompt, reminded (answers after the reminder), never, low (under the threshold), open
    back: int  # months before the current one (0: this month)
    n: int  # its place in its cell
    reachable: bool = True  # a patient whom a message reaches (else one the nurse calls)

    @property
    def sent(self) -> datetime:
        return self.ended + timedelta(hours=DELAY_HOURS)


@dataclass
class Story:
    services: Services
    admin: Context
    nurse: Context
    raters: dict[str, Context]
    departments: dict[str, Department]
    zone: ZoneInfo
    now: datetime
    rng: random.Random
    invitations: dict[int, SurveyInvitation]
    questionnaires: dict[str, Questionnaire]

    def local(self, day: date, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(day, time(hour, minute), self.zone).astimezone(UTC)


Step = Callable[[], Awaitable[None]]
ActingAs = Callable[[Services, Staff, str, frozenset[uuid.UUID]], Awaitable[Context]]


async def seed(services: Services, *, admin: Context, nurse: Context, staff: dict[str, Staff], acting_as: ActingAs,
               departments: dict[str, Department], patient_ids: Sequence[uuid.UUID],
               now: datetime | None = None) -> None:
    """The survey desk: templates, triggers, and the story told up to ``now`` (see above). ``staff``: the demo
    accounts by role (the doctor and the department head rate the nursing, as ``acting_as`` them)."""
    raters = {role: await acting_as(services, staff[role], role, frozenset()) for role in dict(RATED) if role in staff}
    story = Story(services, admin, nurse, raters, departments, await institutions.zone(admin.institution_id),
                  now or datetime.now(UTC), random.Random(14), {}, {})  # noqa: S311 -- deterministic demo data
    account = await PatientAccount.filter(patient_id__in=list(patient_ids), is_active=True).order_by(
        "created_at").first()
    portal_patient = account.patient_id if account is not None else None
    for code in ("outpatient_satisfaction", "nursing_by_doctors", "nps", "csat"):
        story.questionnaires[code] = await questionnaires.adopt(admin, code)
    for kind, code in (("outpatient", "outpatient_satisfaction"), ("dental", "nps")):
        await surveys.trigger_create(admin, {"event": "visit_finished", "visit_kind": kind, "delay_hours": DELAY_HOURS,
                                             "reminder_after_days": REMINDER_DAYS,
                                             "questionnaire_key": story.questionnaires[code].key})
    await surveys.trigger_create(admin, {"event": "ticket_closed", "delay_hours": 24,
                                         "questionnaire_key": story.questionnaires["csat"].key})
    plan = _plan(story)
    pool = [p for p in patient_ids if p != portal_patient]
    patients = _assign(plan, pool, await _reachable(admin.institution_id, pool, story.now), portal_patient)
    events: list[tuple[datetime, bool, Step]] = []  # (when, the outbox catches up first, what)
    for index, planned in enumerate(plan):
        patient_id = patients.get(index)
        if patient_id is None:
            continue
        events.append((planned.ended + timedelta(minutes=10), False, _visit(story, index, planned, patient_id)))
        answered = _answered_at(story, planned)
        if answered is not None:
            events.append((answered, True, _answer(story, index, planned)))
        if planned.fate in ("reminded", "never", "open"):  # the sweep (every ten minutes) finds it due
            sweep = planned.sent + timedelta(days=REMINDER_DAYS, minutes=10)
            if sweep <= story.now:
                events.append((sweep, True, _sweep(sweep)))
    events += [(moment, False, _rate(story, role, department)) for moment, role, department in _ratings(story)]
    quiet = logging.getLogger("careloop.messages")  # one line per message would bury the demo's own output
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        replay = Replay(services, logging_senders(), story.now)
        for moment, deliver, step in sorted(events, key=lambda e: e[0]):
            if deliver:  # each message sent at its due time before the step (visits and ratings need none)
                await replay.deliver_until(moment)
            with clocked(CLOCKED, moment):
                await step()
        await replay.finish()
    finally:
        quiet.setLevel(level)
    await _follow_up_calls(story, [v.visit_id for v in story.invitations.values() if v.visit_id is not None])


# -- the plan ---------------------------------------------------------------------------------------------------


def _month_start(day: date, back: int) -> date:
    month = day.year * 12 + day.month - 1 - back
    return date(month // 12, month % 12 + 1, 1)


def _plan(story: Story) -> list[Planned]:
    """The visits of the story, in time order: three complete months, then this month's so far."""
    rng, today = story.rng, story.now.astimezone(story.zone).date()
    plan: list[Planned] = []
    for back in range(MONTHS, 0, -1):
        first = _month_start(today, back)
        cells = [(d, "outpatient", PER_CELL) for d in SURVEYED] + [(NPS_DEPARTMENT, "dental", NPS_PER_MONTH)]
        for department, kind, count in cells:
            for n in range(count):
                day = first + timedelta(days=1 + 2 * n)  # the 2nd to the 13th: answers stay in their month
                ended = story.local(day, rng.randint(9, 16), rng.choice((0, 15, 30, 45)))
                fate = "never" if n == count - 1 else "reminded" if n in AFTER_REMINDER else "prompt"
                plan.append(Planned(ended, department, kind, fate, back, n, reachable=n != BY_PHONE))
    this_month = _month_start(today, 0)
    for n, day in enumerate(this_month + timedelta(days=d) for d in (1, 4)):
        ended = story.local(day, 10 + n)
        if ended < story.now - timedelta(days=2):  # answered before today
            plan.append(Planned(ended, SURVEYED[n % 2], "outpatient", "prompt", 0, n))
    plan.append(Planned(story.local(today - timedelta(days=2), 10), "Orthodontics", "outpatient", "low", 0, 0))
    plan.append(Planned(story.local(today - timedelta(days=1), 15), "General Dentistry", "outpatient", "open", 0, 0))
    return sorted(plan, key=lambda p: p.ended)


async def _reachable(institution_id: uuid.UUID, pool: list[uuid.UUID], now: datetime) -> set[uuid.UUID]:
    """The patients a care message reaches, as the outbox's gate decides (one batch of facts)."""
    rows = [Communication(institution_id=institution_id, patient_id=p, purpose="care", cause=CAUSE, key="",
                          due_at=now) for p in pool]
    facts = await communications.load_facts(rows)
    if not rows:
        return set()
    quiet = facts.quiet(institution_id)
    return {row.patient_id for row in rows if communications.gate(
        facts.recipient(row), "care", now, quiet, non_care_nearby=0, cap=1).refusal is None}


def _assign(plan: list[Planned], pool: list[uuid.UUID], reachable: set[uuid.UUID],
            portal_patient: uuid.UUID | None) -> dict[int, uuid.UUID]:
    """Patients for the planned visits, each kind (reachable by message or not) taken in turn, the other kind
    when none of its own may be asked; never one asked within ``FATIGUE`` before. The portal's patient keeps
    yesterday's visit, the one they have still to answer."""
    pools = {True: [p for p in pool if p in reachable], False: [p for p in pool if p not in reachable]}
    turns = {True: 0, False: 0}
    assigned: dict[int, uuid.UUID] = {}
    last: dict[uuid.UUID, datetime] = {}
    for index, planned in enumerate(plan):
        if planned.fate == "open":
            if portal_patient is not None:
                assigned[index] = portal_patient
            continue
        for kind in (planned.reachable, not planned.reachable):
            candidates = pools[kind]
            turn = turns[kind]
            free = [k for k in range(turn, turn + len(candidates)) if (patient := candidates[k % len(candidates)])
                    not in last or planned.ended - last[patient] >= FATIGUE]
            if free:
                patient = candidates[free[0] % len(candidates)]
                assigned[index], last[patient], turns[kind] = patient, planned.ended, free[0] + 1
                break
    return assigned


def _answered_at(story: Story, planned: Planned) -> datetime | None:
    """When its patient answers: within a day of the message, or a day or two after the reminder; the low
    answer a few minutes before now."""
    sent = planned.sent
    if planned.fate == "low":
        return max(story.now - timedelta(minutes=20), sent + timedelta(minutes=1))
    if planned.fate in ("never", "open"):
        return None
    hours = story.rng.randint(1, 20) if planned.fate == "prompt" else 24 * REMINDER_DAYS + story.rng.randint(
        4, 40)
    moment = sent + timedelta(hours=hours)
    return moment if moment <= story.now else None


def _ratings(story: Story) -> list[tuple[datetime, str, str]]:
    """Each month the doctor rates the nursing of Orthodontics and General Dentistry, the department head that of
    Orthodontics, on the 24th."""
    today = story.now.astimezone(story.zone).date()
    return [(story.local(_month_start(today, back) + timedelta(days=23), 11 + n), role, department)
            for back in range(MONTHS, 0, -1) for n, (role, department) in enumerate(RATED) if role in story.raters]


# -- the steps --------------------------------------------------------------------------------------------------


def _visit(story: Story, index: int, planned: Planned, patient_id: uuid.UUID) -> Callable[[], Awaitable[None]]:
    async def step() -> None:
        department = story.departments[planned.department]
        view = await visits.create(story.nurse, {
            "patient_id": patient_id, "kind": planned.kind, "status": "finished", "department_id": department.id,
            "started_at": planned.ended - timedelta(minutes=40), "ended_at": planned.ended,
            "reason": "Check-up and cleaning" if planned.kind == "dental" else "Toothache, examined and treated"})
        invitation = await SurveyInvitation.get_or_none(institution_id=story.admin.institution_id,
                                                        cause_key=f"visit:{view.row.id}")
        if invitation is not None:
            story.invitations[index] = invitation
    return step


def _answer(story: Story, index: int, planned: Planned) -> Callable[[], Awaitable[None]]:
    async def step() -> None:
        invitation = story.invitations.get(index)
        if invitation is None:
            return
        invitation = await SurveyInvitation.get(id=invitation.id)
        answers = _answers(story, planned)
        if invitation.status == "refused":  # no message reached them: the nurse called
            await responses.enter(story.nurse, invitation.id, answers, "phone")
            return
        services = story.services
        token = tokens.survey_link(services.master_key.token_key, invitation.institution_id, invitation.id)
        await responses.answer_by_link(Context(services=services, request=REQUEST), token, answers)
    return step


def _answers(story: Story, planned: Planned) -> dict[str, Any]:
    rng = story.rng
    if planned.fate == "low":
        return dict(LOW)
    if planned.kind == "dental":
        answers: dict[str, Any] = {"recommend": rng.choices((7, 8, 9, 10), (1, 2, 4, 3))[0]}
        if rng.random() < 0.3:
            answers["why"] = rng.choice(NPS_REASONS)
        return answers
    weights = PROFILES.get((planned.department, planned.back), GOOD)
    slow = (planned.department, planned.back) == BAD_MONTH
    answers = {item: rng.choices((3, 4, 5), SLOW if slow and item == "waiting_time" else weights)[0]
               for item in OUTPATIENT_ITEMS}
    if answers["overall"] <= 3 and rng.random() < 0.6:
        answers["comment"] = rng.choice(COMMENTS)
    return answers


def _rate(story: Story, role: str, department: str) -> Callable[[], Awaitable[None]]:
    async def step() -> None:
        rng = story.rng
        answers: dict[str, Any] = {item: rng.choices((3, 4, 5), (1, 4, 5))[0] for item in NURSING_ITEMS}
        if rng.random() < 0.4:
            answers["comment"] = rng.choice(NURSING_COMMENTS)
        await responses.answer_as_staff(story.raters[role], story.questionnaires["nursing_by_doctors"].id,
                                        story.departments[department].id, answers)
    return step


def _sweep(moment: datetime) -> Callable[[], Awaitable[None]]:
    async def step() -> None:
        await surveys.remind_unanswered(moment)
    return step


async def _follow_up_calls(story: Story, visit_ids: list[uuid.UUID]) -> None:
    """The calls the story's outpatient visits asked for: made when due more than three days ago (reached,
    recovering), claimed by the nurse when due up to a week ahead, as ``app.demo`` leaves the worklist."""
    nurse, today = story.nurse, await follow_up.local_today(story.nurse)
    if not visit_ids:
        return
    tasks = await FollowUpTask.filter(institution_id=nurse.institution_id, status="requested",
                                      visit_id__in=visit_ids, due_on__lte=today + timedelta(days=7)).order_by(
        "due_on", "id")
    for task in tasks:
        await follow_up.claim(nurse, task.id)
        if task.due_on < today - timedelta(days=3):
            await follow_up.complete(nurse, task.id, {
                "reached": True, "condition": story.rng.choice(("better", "better", "same")), "needs_help": False,
                "satisfaction": story.rng.choice((4, 5, 5)), "notes": "No pain since the visit"}, None)
