"""The demo institution "Demo Dental Clinic": one account per role and realistic patients.

Patients are registered through careloop's own code path (validation, encryption, audit),
as the demo nurse, so the demo database looks exactly like a real one. Their week of appointments
and messages is app.demo_appointments.
"""

from __future__ import annotations

import random
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app import demo_appointments, demo_compliance, demo_contracts, demo_surveys
from app.demo_clock import clocked
from app.demo_data import DemoPatient, demo_patients
from audit.events import RequestMeta
from core.principal import ROLES, Principal
from models import Department, FollowUpTask, Institution, Patient, Staff
from resolvers import care_plan as care_plans
from resolvers import consent as consents
from resolvers import contact as contacts
from resolvers import flag as flags
from resolvers import follow_up
from resolvers import institution as institutions
from resolvers import partner as partners
from resolvers import partner_grant as partner_grants
from resolvers import patient as patients
from resolvers import patient_account as patient_accounts
from resolvers import service_item as service_items
from resolvers import ticket as tickets
from resolvers import visit as visits
from resolvers.context import Context, Services
from resolvers.loaders import Loaders
from resolvers.staff import check_password

DEMO_NAME = "Demo Dental Clinic"
DEMO_DOMAIN = "demo.careloop.test"
DEPARTMENTS = ("General Dentistry", "Orthodontics", "Implants and Restoration")
# Which departments each demo account works in.
ROLE_DEPARTMENTS = {"nurse": DEPARTMENTS, "doctor": ("Orthodontics",), "department_head": ("Orthodontics",)}
APPROVER = "admin2"  # the second admin's account (admin2@demo.careloop.test), who approves the admin's campaign


@dataclass(frozen=True)
class DemoResult:
    created: bool
    password: str | None  # only when generated here, to be shown once
    partner_client_id: uuid.UUID | None = None  # the demo partner's API client...
    partner_secret: str | None = None  # ...and its secret, shown once


DEMO_PARTNER = "Sunrise Home Care"
DEMO_GRANTS = 10  # the first patients consent to share with the demo partner, which is granted their files


def demo_email(role: str) -> str:
    return f"{role}@{DEMO_DOMAIN}"


async def seed(services: Services, *, password: str | None, patients_count: int = 200,
               progress: Callable[[int, int], None] | None = None,
               accounts_ready: Callable[[str | None], None] | None = None) -> DemoResult:
    """Build the demo institution; ``accounts_ready`` is told as soon as its accounts exist, with the password if
    generated here: a build cut short after that (Ctrl-C, an error) is found existing by the next run, whose accounts
    are unchanged, so the password must be out before the minutes of patients and records that follow."""
    if await Institution.exists(name=DEMO_NAME):
        return DemoResult(created=False, password=None)
    generated = password is None
    # Refused before anything is written: a demo made halfway would be found "existing" by the next run.
    password = check_password(password or secrets.token_urlsafe(12))
    institution = await institutions.create(services, DEMO_NAME, "dental")
    departments = {name: await institutions.create_department(institution, name) for name in DEPARTMENTS}
    accounts = {}
    for role in ROLES:
        member_of = [departments[d] for d in ROLE_DEPARTMENTS.get(role, ())]
        accounts[role] = await institutions.create_account(
            services, institution, email=demo_email(role), name=f"Demo {role.replace('_', ' ')}",
            password=password, roles=[role], departments=member_of, is_demo=True)
    # A second admin: the admin's campaign is approved by someone other than its author (four eyes) before it starts.
    approver = await institutions.create_account(
        services, institution, email=demo_email(APPROVER), name="Demo second admin", password=password,
        roles=["admin"], departments=[], is_demo=True)
    if accounts_ready:
        accounts_ready(password if generated else None)
    department_ids = frozenset(d.id for d in departments.values())
    ctx = await _acting_as(services, accounts["nurse"], "nurse", department_ids)
    department_list = list(departments.values())
    registered = []
    for n, demo in enumerate(demo_patients(patients_count), start=1):
        registered.append(await _register(ctx, demo, department_list[n % len(department_list)]))
        if progress:
            progress(n, patients_count)
    await _tickets(await _acting_as(services, accounts["support_agent"], "support_agent", frozenset()), registered)
    if registered:
        await _patient_account(ctx, registered[0], password)
    admin = await _acting_as(services, accounts["admin"], "admin", frozenset())
    desk = await _acting_as(services, accounts["front_desk"], "front_desk", frozenset())
    await _care_journey(admin, ctx, desk, registered, department_list)
    await demo_appointments.seed(services, admin=admin, desk=desk, staff=accounts, departments=departments,
                                 patient_ids=registered, pool_from=DEMO_VISITS + DESK_TODAY,
                                 approver=await _acting_as(services, approver, "admin", frozenset()))
    await demo_surveys.seed(services, admin=admin, nurse=ctx, staff=accounts, acting_as=_acting_as,
                            departments=departments, patient_ids=registered)
    client = await _partner(admin, ctx, registered[:DEMO_GRANTS])
    await demo_contracts.seed(services, acting_as=_acting_as, staff=accounts, nurse=ctx, desk=desk,
                              patient_ids=registered, partner_id=client.client.partner_id)
    await demo_compliance.seed(services, acting_as=_acting_as, staff=accounts, departments=departments,
                               patient_ids=registered, password=password, partner_client=client.client)
    return DemoResult(created=True, password=password if generated else None, partner_client_id=client.client.id,
                      partner_secret=client.secret)


DEMO_SERVICES = (("ORTHO", "Orthodontics"), ("RESTORE", "Restoration"), ("IMPLANT", "Dental implant"),
                 ("PERIO", "Periodontal treatment"))
# caries of dentine, chronic gingivitis, loss of teeth (extraction), anomalies of tooth position
DEMO_CONDITIONS = ("K02.1", "K05.1", "K08.1", "K07.3")
DEMO_VISITS = 60  # patients with a year of visits behind them
DESK_TODAY = 6  # and the next ones at today's desk (the appointments' patients come after them)
KINDS = ("outpatient", "procedure", "dental")


async def _care_journey(admin: Context, nurse: Context, desk: Context, patient_ids: list[uuid.UUID],
                        departments: list[Department]) -> None:
    """A year of visits with codes, the follow-up calls the rules scheduled (done, failed, overdue, due
    today and ahead: a real nurse's worklist), alerts on the files, an implant care plan, and today's desk."""
    for code, name in DEMO_SERVICES:
        await service_items.create(admin, code, name)
    rng = random.Random(2026)  # noqa: S311 -- demo data, deterministic on purpose
    now = datetime.now(UTC)
    for n, patient_id in enumerate(patient_ids[:DEMO_VISITS]):
        department = departments[(n + 1) % len(departments)]
        for k in range(1 + n % 3):
            ended = now - timedelta(days=rng.randint(12, 360) if k else rng.choice((1, 2, 3, 4, 6, 8, 10)),
                                    hours=rng.randint(0, 6))
            kind = KINDS[(n + k) % len(KINDS)]
            view = await visits.create(nurse, {
                "patient_id": patient_id, "kind": kind, "status": "finished", "department_id": department.id,
                "started_at": ended - timedelta(minutes=45), "ended_at": ended, "reason": "Routine dental care",
                "summary": "Examined and treated as planned", "treatment_plan": "Brush twice a day, floss daily",
                "revisit_on": (ended + timedelta(days=180)).date()})
            await visits.add_code(nurse, view.row.id, {"kind": "condition", "code": rng.choice(DEMO_CONDITIONS)})
            if kind == "procedure":
                await visits.add_code(nurse, view.row.id, {"kind": "procedure", "code": "IMPLANT",
                                                           "status": "pending" if k == 0 else "done"})
    await _follow_up_worklist(nurse, rng)
    for patient_id in patient_ids[:3]:
        await care_plans.create(nurse, {"patient_id": patient_id, "title": "After the implant",
                                        "goals": "Healed and chewing normally in three months", "activities": [
                                            {"kind": "call", "after_days": d} for d in (1, 7, 30)] + [
                                            {"kind": "revisit", "after_days": 90}]})
    await _flags(nurse, patient_ids)
    await _today_at_the_desk(desk, patient_ids[DEMO_VISITS:DEMO_VISITS + DESK_TODAY], departments)


async def _follow_up_worklist(nurse: Context, rng: random.Random) -> None:
    """Calls due more than three days ago were made (most reached the patient, some never); the nurse
    has claimed what is due up to a week ahead, so her worklist shows today's and the overdue ones."""
    today = await follow_up.local_today(nurse)
    for task in await FollowUpTask.filter(institution_id=nurse.institution_id, status="requested").order_by("due_on"):
        if task.due_on > today + timedelta(days=7):
            continue
        await follow_up.claim(nurse, task.id)
        if task.due_on >= today - timedelta(days=3):
            continue
        if rng.random() < 0.1:
            await follow_up.record_attempt(nurse, task.id, {"channel": "phone", "outcome": "no_answer"})
            await follow_up.fail(nurse, task.id, "Three calls, no answer", None)
        else:
            await follow_up.complete(nurse, task.id, {
                "reached": True, "condition": rng.choice(("better", "better", "same")), "needs_help": False,
                "satisfaction": rng.choice((4, 5, 5)), "notes": "Recovering well"}, None)


async def _flags(nurse: Context, patient_ids: list[uuid.UUID]) -> None:
    """Alerts on the files: VIPs, special needs, allergies (from the files as registered)."""
    for patient_id in patient_ids:
        patient = await Patient.get(id=patient_id)
        if "|vip|" in patient.segments:
            await flags.create(nurse, {"patient_id": patient_id, "kind": "vip"})
        if "|special_needs|" in patient.segments:
            await flags.create(nurse, {"patient_id": patient_id, "kind": "special_needs",
                                       "detail": "Large print; must be accompanied"})
        if patient.allergies is not None:
            await flags.create(nurse, {"patient_id": patient_id, "kind": "allergy",
                                       "detail": "Allergies on file: check before treatment"})


async def _today_at_the_desk(desk: Context, patient_ids: list[uuid.UUID], departments: list[Department]) -> None:
    """Today's desk: two patients still to come, one waiting, one being seen, two seen already."""
    now = datetime.now(UTC)
    for n, patient_id in enumerate(patient_ids):
        view = await visits.create(desk, {"patient_id": patient_id, "kind": "dental",
                                          "department_id": departments[n % len(departments)].id,
                                          # those to come later, the others booked earlier: an arrival comes on
                                          # its planned day (late in the evening, now + 2 h would be tomorrow)
                                          "planned_at": now + timedelta(hours=2 - n)})
        for step in ("arrived", "in_progress", "finished")[:max(0, n - 1)]:
            view = await visits.transition(desk, view.row.id, step, None, None)


async def _patient_account(staff: Context, patient_id: uuid.UUID, password: str) -> None:
    """The first demo patient has a self-service account: patient@demo.careloop.test."""
    invitation = await patient_accounts.invite(staff, patient_id)
    await patient_accounts.activate(staff, invitation.code, demo_email("patient"), password)


async def _partner(admin: Context, staff: Context, patient_ids: list[uuid.UUID]) -> partners.ClientCreated:
    """A home-care partner with one client holding every scope, granted the files of consenting patients."""
    partner = await partners.create(admin, DEMO_PARTNER)
    client = await partners.create_client(admin, partner.id, name="Sunrise care app",
                                          scopes=sorted(partners.scope_vocabulary(admin.services.guard)),
                                          rate_limit_per_minute=600, documents=None)
    until = datetime.now(UTC) + timedelta(days=180)
    for patient_id in patient_ids:
        await consents.set_sharing(staff, patient_id, partner.id, True)
        await partner_grants.create(staff, partner.id, patient_id, "Home care visits after discharge", until)
    return client


async def _acting_as(services: Services, account: Staff, role: str, department_ids: frozenset[uuid.UUID]) -> Context:
    ctx = Context(
        services=services,
        request=RequestMeta(request_id="demo-seed", user_agent="careloop demo"),
        principal=Principal(institution_id=account.institution_id, user_id=account.id, token_id=None,
                            email=account.email, name=account.name, roles=frozenset({role}),
                            department_ids=department_ids),
        keys=await services.keyring.get(account.institution_id),
        loaders=Loaders(account.institution_id),
    )
    return ctx


# (channel, category, subject, how far along, received hours ago): one ticket for every fifth patient.
DEMO_TICKETS = (
    ("HOTLINE", "complaint", "Waited 90 minutes past the appointment time", "closed", 150),
    ("WECHAT", "enquiry", "Does insurance cover the implant consultation?", "resolved", 120),
    ("APP", "request", "Please move my cleaning to next week", "acknowledged", 30),
    ("FRONT_DESK", "request", "Reprint last month's X-ray report", "new", 2),
    ("NURSE_STATION", "complaint", "Bleeding after the extraction yesterday", "investigating", 5),
    ("WEB_FORM", "suggestion", "Children's corner in the waiting room", "new", 40),
    ("VIP_ADVISER", "enquiry", "Preparation for the orthodontic check-up", "acknowledged", 1),
    ("EMAIL", "complaint", "Charged twice for the same filling", "waiting_on_patient", 70),
)
_STEPS = ("acknowledged", "investigating", "waiting_on_patient", "resolved", "closed")
STEP_MINUTES = 12  # the tickets' steps follow each other this far apart: all within the hour of the latest one


async def _tickets(ctx: Context, patient_ids: list[uuid.UUID]) -> None:
    """Tickets at every stage of the closed loop, through careloop's own code path; each step taken
    ``STEP_MINUTES`` after the one before it, from when the ticket was received (not at the seed's now, which
    would have answered every ticket days late: each one past its SLA)."""
    for n, patient_id in enumerate(patient_ids[::5]):
        channel, category, subject, stage, hours = DEMO_TICKETS[n % len(DEMO_TICKETS)]
        received = datetime.now(UTC) - timedelta(hours=hours)
        view = await tickets.create(ctx, {
            "patient_id": patient_id, "channel": channel.lower(), "category": category, "subject": subject,
            "post_operative": "extraction" in subject, "received_at": received})
        steps = [step for step in (_STEPS[:_STEPS.index(stage) + 1] if stage != "new" else ())
                 if step != "waiting_on_patient" or stage == step]  # only the tickets that stop there wait
        for k, step in enumerate(steps, start=1):
            with clocked((tickets,), received + k * timedelta(minutes=STEP_MINUTES)):
                if step == "closed" and category == "complaint":
                    await tickets.record_feedback(ctx, view.row.id, "Thanked the team for the call back.")
                await tickets.transition(ctx, view.row.id, step, note=None, resolution=(
                    "Explained and resolved on the phone." if step == "resolved" else None))


async def _register(ctx: Context, demo: DemoPatient, department: Department) -> uuid.UUID:
    data = {
        name: getattr(demo, name)
        for name in (
            "full_name", "sex", "birth_date", "occupation", "address", "national_id_type", "national_id", "phone",
            "alt_phone", "email", "preferred_channel", "preferred_language", "contact_consent", "medical_history",
            "diagnoses", "allergies", "current_medication", "diet_preferences", "activity_preferences",
            "special_needs",
        )
        if getattr(demo, name) is not None
    }
    data |= {"contact_channels": list(demo.contact_channels), "contact_purposes": list(demo.contact_purposes),
             "segments": list(demo.segments), "tags": list(demo.tags), "department_id": department.id}
    result = await patients.create(ctx, data, register_anyway=True)
    assert result.patient is not None
    for contact in demo.contacts:
        await contacts.create(ctx, result.patient.row.id, {
            "name": contact.name, "relationship": contact.relationship, "phone": contact.phone,
            "is_emergency": contact.is_emergency, "may_receive_information": contact.may_receive_information,
            "notes": contact.notes,
        })
    return result.patient.row.id
