"""The benchmark's data: a fresh PostgreSQL database, careloop's migrations, and deterministic rows.

The institution, its department and the two accounts go through careloop's own code
(``resolvers.institution``). Patients, contacts, follow-up tasks and audit events are inserted in bulk
with COPY, but sealed exactly as ``resolvers.patient._columns`` / ``resolvers.contact._columns`` seal them
(``InstitutionKeys.seal`` with ``field_aad``, blind indexes with ``keys.blind_index``) and hashed
exactly as ``audit.writer`` hashes them (``audit.chain.row_hash``, in seq order). Follow-up tasks have
no sealed column in use here (their ``notes`` stay null); their due dates count back from today in the
institution's time zone (``resolvers.institution.local_today``), as the worklist has it.
The outpatient department of W6 (20 clinicians, their schedules, exceptions and a few hundred appointments
in next week's slots) is written with the ORM: a few hundred rows, the slots computed by ``core.slots``.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import asyncpg

from audit.chain import row_hash
from core import slots
from core.business_time import Calendar
from core.crypto import InstitutionKeys, field_aad
from core.ids import uuid7
from core.validation import normalize_phone
from models import Appointment, AuditChainHead, Institution, Schedule, ScheduleException
from resolvers import institution as institutions
from resolvers import sla
from resolvers.context import Services

NURSE_EMAIL = "nurse@bench.careloop.test"
OFFICER_EMAIL = "compliance@bench.careloop.test"
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)  # row timestamps and the time part of the deterministic ids
BATCH = 10_000
STRIDE = 1_000_003  # a prime: contacts k = 0, 1, 2... go to patients k * STRIDE mod n, every patient in turn

SURNAMES = ("王", "李", "张", "刘", "陈", "杨", "黄", "赵", "Carter", "Smith", "O'Neill", "Novak")
GIVEN = ("伟", "芳", "娜", "敏", "静", "强", "磊", "Emily", "James", "Grace", "Lucas", "Anna")
SEXES = ("female", "male", "female", "male", "other", "unknown")
ROADS = ("Jianguo Road", "Zhongshan Road", "Renmin Road", "Heping Road", "Binjiang Road")
CITIES = ("Chaoyang District, Beijing", "Xuhui District, Shanghai", "Tianhe District, Guangzhou")
ALLERGIES = (None, "Penicillin", "Peanuts", "Latex", "Ibuprofen; shellfish", None)
JOBS = (None, "Teacher", "Engineer", "Nurse", "Driver", "Retired")
RELATIONSHIPS = ("spouse", "parent", "child", "sibling", "guardian", "friend", "other")

PATIENT_COLUMNS = (
    "id", "institution_id", "department_id", "created_at", "updated_at", "full_name", "sex", "birth_date",
    "occupation", "address", "phone", "phone_bidx", "allergies", "preferred_language", "contact_consent",
    "contact_channels", "segments", "tags", "status",
)
CONTACT_COLUMNS = (
    "id", "institution_id", "patient_id", "created_at", "updated_at", "name", "relationship", "phone", "phone_bidx",
    "is_emergency", "may_receive_information", "notes",
)
TASK_COLUMNS = (
    "id", "institution_id", "created_at", "updated_at", "patient_id", "due_on", "department_id", "owner_id",
    "status", "reached", "completed_at", "completed_by_id", "version",
)
# Ten tasks in turn: 7 open (5 requested, 2 accepted by their owner), 3 closed.
TASK_STATUSES = ("requested", "accepted", "requested", "completed", "requested", "requested", "cancelled",
                 "accepted", "failed", "requested")
TASK_DAYS_BACK = 45  # due dates spread over today and the 44 days before
# W6: an outpatient department of clinicians, mornings and afternoons on weekdays, 20-minute slots of 2 places.
CLINICIAN_WEEK = {str(day): [["08:00", "12:00"], ["13:30", "17:30"]] for day in range(1, 6)}
SLOT_MINUTES, SLOT_CAPACITY = 20, 2
AUDIT_COLUMNS = (
    "id", "institution_id", "seq", "occurred_at", "actor_kind", "actor_id", "token_id", "action", "resource_type",
    "resource_id", "patient_id", "field_classes", "fields_read", "outcome", "reason", "policy_rule", "request_id",
    "client_address", "user_agent", "prev_hash", "hash",
)


@dataclass(frozen=True)
class Outpatients:
    """W6's department and the week asked for (Monday to Sunday, local dates, all ahead of today)."""

    department_id: uuid.UUID
    first_day: date
    last_day: date
    appointments: int


@dataclass(frozen=True)
class Tenant:
    """What the loader, the servers and the workloads need to know about the bench institution."""

    institution_id: uuid.UUID
    department_id: uuid.UUID
    nurse_id: uuid.UUID
    keys: InstitutionKeys


# -- the database --------------------------------------------------------------------------


async def create_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# -- through careloop's code ---------------------------------------------------------------


async def create_tenant(services: Services, password: str, name: str = "Bench Clinic") -> Tenant:
    institution = await institutions.create(services, name, "clinic")
    department = await institutions.create_department(institution, "Ward 1")
    nurse = await institutions.create_account(
        services, institution, email=NURSE_EMAIL, name="Bench Nurse", password=password, roles=["nurse"],
        departments=[department])
    await institutions.create_account(services, institution, email=OFFICER_EMAIL, name="Bench Compliance",
                                      password=password, roles=["compliance_officer"])
    keys = await services.keyring.get(institution.id)
    return Tenant(institution.id, department.id, nurse.id, keys)


async def create_chain(services: Services, name: str) -> uuid.UUID:
    """An institution of its own, for audit-chain measurements that must not mix with the workloads."""
    return (await institutions.create(services, name, "clinic")).id


# -- deterministic ids and rows ------------------------------------------------------------


def _det_uuid7(kind: int, index: int) -> uuid.UUID:
    """A version-7 UUID from an index: time = EPOCH + index ms, so ids sort by index."""
    millis = int(EPOCH.timestamp() * 1000) + index
    return uuid.UUID(int=millis << 80 | 0x7 << 76 | kind << 64 | 0b10 << 62 | index)


def patient_id(index: int) -> uuid.UUID:
    return _det_uuid7(1, index)


def contact_id(index: int) -> uuid.UUID:
    return _det_uuid7(2, index)


def task_id(index: int) -> uuid.UUID:
    return _det_uuid7(3, index)


def _sealer(tenant: Tenant, table: str, row_id: uuid.UUID):
    def seal(column: str, value: str | None) -> bytes | None:
        if value is None:
            return None
        return tenant.keys.seal(value, field_aad(tenant.institution_id, table, column, row_id))

    return seal


def patient_row(tenant: Tenant, index: int) -> tuple:
    rnd = random.Random(index)  # noqa: S311 -- deterministic test data, not secrets
    pid = patient_id(index)
    seal = _sealer(tenant, "patient", pid)
    phone = normalize_phone(f"138{index % 10**8:08d}")
    when = EPOCH + timedelta(milliseconds=index)
    values = {
        "id": pid, "institution_id": tenant.institution_id, "department_id": tenant.department_id,
        "created_at": when, "updated_at": when,
        "full_name": rnd.choice(SURNAMES) + rnd.choice(GIVEN), "sex": rnd.choice(SEXES),
        "birth_date": date(1930, 1, 1) + timedelta(days=rnd.randrange(30_000)), "occupation": rnd.choice(JOBS),
        "address": seal("address", f"{rnd.randrange(1, 999)} {rnd.choice(ROADS)}, {rnd.choice(CITIES)}"),
        "phone": seal("phone", phone), "phone_bidx": tenant.keys.blind_index("phone", phone),
        "allergies": seal("allergies", rnd.choice(ALLERGIES)), "preferred_language": "zh-CN",
        "contact_consent": index % 3 == 0, "contact_channels": "|sms|" if index % 3 == 0 else "|",
        "segments": "|", "tags": "|", "status": "active",
    }
    return tuple(values[c] for c in PATIENT_COLUMNS)


def contact_row(tenant: Tenant, index: int, patient_index: int) -> tuple:
    rnd = random.Random(-index - 1)  # noqa: S311 -- deterministic test data, not secrets
    cid = contact_id(index)
    seal = _sealer(tenant, "contact", cid)
    phone = None if index % 5 == 4 else normalize_phone(f"139{index % 10**8:08d}")
    when = EPOCH + timedelta(milliseconds=index)
    values = {
        "id": cid, "institution_id": tenant.institution_id, "patient_id": patient_id(patient_index),
        "created_at": when, "updated_at": when, "name": rnd.choice(SURNAMES) + rnd.choice(GIVEN),
        "relationship": rnd.choice(RELATIONSHIPS), "phone": seal("phone", phone),
        "phone_bidx": None if phone is None else tenant.keys.blind_index("phone", phone),
        "is_emergency": index % 2 == 0, "may_receive_information": index % 4 == 0,
        "notes": seal("notes", "Call after 6 pm" if index % 7 == 0 else None),
    }
    return tuple(values[c] for c in CONTACT_COLUMNS)


def task_row(tenant: Tenant, index: int, patients: int, today: date) -> tuple:
    """Follow-up task ``index``: mostly the nurse's, due today or overdue, 7 in 10 open. Every 20th is due
    1 to 3 days ahead and every 17th waits in the department's pool (no owner, requested): the worklist must
    leave both out. The patients are scattered over the first ``patients`` (by the prime stride)."""
    pool, ahead = index % 17 == 16, index % 20 == 19
    status = "requested" if pool else TASK_STATUSES[index % len(TASK_STATUSES)]
    due = today + timedelta(days=1 + index % 3) if ahead else today - timedelta(days=index * 7 % TASK_DAYS_BACK)
    created = datetime.combine(min(due, today) - timedelta(days=7), time(1, 0), tzinfo=UTC) + timedelta(
        milliseconds=index)
    closed = status in ("completed", "failed", "cancelled")
    values = {
        "id": task_id(index), "institution_id": tenant.institution_id, "created_at": created,
        "updated_at": created + timedelta(days=7) if closed else created,
        "patient_id": patient_id(index * STRIDE % patients), "due_on": due, "department_id": tenant.department_id,
        "owner_id": None if pool else tenant.nurse_id, "status": status,
        "reached": {"completed": True, "failed": False}.get(status),
        "completed_at": created + timedelta(days=7) if status in ("completed", "failed") else None,
        "completed_by_id": tenant.nurse_id if status in ("completed", "failed") else None,
        "version": 2 if closed or status == "accepted" else 1,
    }
    return tuple(values[c] for c in TASK_COLUMNS)


def _batches(rows: Iterator[tuple]) -> Iterator[list[tuple]]:
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


async def _copy(dsn: str, table: str, columns: tuple[str, ...], rows: Iterator[tuple]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for batch in _batches(rows):
            await conn.copy_records_to_table(table, records=batch, columns=list(columns))
        await conn.execute(f"ANALYZE {table}")
    finally:
        await conn.close()


async def load_patients(dsn: str, tenant: Tenant, start: int, stop: int, contacts_start: int,
                        contacts_stop: int) -> None:
    """Patients [start, stop) and contacts [contacts_start, contacts_stop), spread evenly but scattered over
    them (by a prime stride), so that any page of patients has the average number of contacts."""
    await _copy(dsn, "patient", PATIENT_COLUMNS, (patient_row(tenant, i) for i in range(start, stop)))
    span = stop - start
    contacts = (contact_row(tenant, j, start + (j - contacts_start) * STRIDE % span)
                for j in range(contacts_start, contacts_stop))
    await _copy(dsn, "contact", CONTACT_COLUMNS, contacts)


local_today = institutions.local_today  # today in the institution's time zone, as the worklist has it


def expected_worklist(tenant: Tenant, count: int, patients: int, loaded_on: date, today: date) -> list[str]:
    """The ids of the nurse's worklist by the data set's own rules (open, the nurse's, due by ``today``,
    by due date then id), for tasks loaded on ``loaded_on``: what careloop and the baseline must both show."""
    column = {name: n for n, name in enumerate(TASK_COLUMNS)}
    rows = [task_row(tenant, i, patients, loaded_on) for i in range(count)]
    mine = sorted((r[column["due_on"]], r[column["id"]]) for r in rows
                  if r[column["owner_id"]] == tenant.nurse_id and r[column["status"]] in ("requested", "accepted")
                  and r[column["due_on"]] <= today)
    return [str(task) for _, task in mine]


async def load_follow_up_tasks(dsn: str, tenant: Tenant, count: int, patients: int) -> date:
    """``count`` follow-up tasks (see ``task_row``) on the first ``patients`` patients; returns the local
    date they count back from."""
    today = await local_today(tenant.institution_id)
    await _copy(dsn, "follow_up_task", TASK_COLUMNS, (task_row(tenant, i, patients, today) for i in range(count)))
    return today


async def index_contacts(dsn: str) -> None:
    """Not in careloop's schema: without it, loading a patient's contacts scans the whole table."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE INDEX bench_contact_patient ON contact (institution_id, patient_id)")
    finally:
        await conn.close()


async def remove_created_contacts(dsn: str, patients: list[uuid.UUID], name: str) -> None:
    """Undo W3: the contacts it created, so every measurement reads a table of the same size (and W3's files stay
    under their bound of 50 contacts)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DELETE FROM contact WHERE patient_id = ANY($1::uuid[]) AND name = $2", patients, name)
        await conn.execute("VACUUM contact")
    finally:
        await conn.close()


# -- audit events --------------------------------------------------------------------------


def _audit_columns(institution_id: uuid.UUID, actor_id: uuid.UUID, seq: int, prev_hash: str,
                   when: datetime, actor_kind: str = "staff") -> dict:
    patient = patient_id(seq % 1000)
    return {
        "id": uuid7(), "institution_id": institution_id, "seq": seq, "occurred_at": when, "actor_kind": actor_kind,
        "actor_id": actor_id, "token_id": None, "action": "read", "resource_type": "patient",
        "resource_id": patient, "patient_id": patient, "field_classes": "clinical,contact,identity",
        "fields_read": "address,allergies,phone", "outcome": "allowed", "reason": "",
        "policy_rule": "nurse, *, patient.identity, read, allow", "request_id": f"{seq:032x}",
        "client_address": "127.0.0.1", "user_agent": "careloop-bench", "prev_hash": prev_hash,
    }


async def append_audit_events(dsn: str, institution_id: uuid.UUID, actor_id: uuid.UUID, count: int,
                              actor_kind: str = "staff") -> None:
    """``count`` read events by one actor at the end of the institution's chain, hashed as the writer hashes them."""
    head = await AuditChainHead.get(institution_id=institution_id)
    seq, prev_hash = head.last_seq, head.last_hash
    start = datetime.now(UTC) - timedelta(microseconds=count)

    def rows() -> Iterator[tuple]:
        nonlocal seq, prev_hash
        for n in range(count):
            seq += 1
            columns = _audit_columns(institution_id, actor_id, seq, prev_hash, start + timedelta(microseconds=n),
                                     actor_kind)
            prev_hash = columns["hash"] = row_hash(columns)
            yield tuple(columns[c] for c in AUDIT_COLUMNS)

    await _copy(dsn, "audit_event", AUDIT_COLUMNS, rows())
    await AuditChainHead.filter(institution_id=institution_id).update(last_seq=seq, last_hash=prev_hash)


# -- W6: schedules of an outpatient department ------------------------------------------------------


async def load_schedules(services: Services, tenant: Tenant, password: str, clinicians: int,
                         patients: int) -> Outpatients:
    """``clinicians`` doctors of a department "Outpatients", each with a schedule (weekday mornings and
    afternoons, 20-minute slots, 2 places); in next week (Monday to Sunday, local): every 5th clinician on leave
    on Wednesday afternoon, every 4th with an extra Saturday morning of 3 places; appointments in a fixed
    pattern of slots (one in five full, one half booked, one with an arrived patient, one cancelled)."""
    institution = await Institution.get(id=tenant.institution_id)
    department = await institutions.create_department(institution, "Outpatients")
    calendar = await sla.calendar(tenant.institution_id)
    today = await local_today(tenant.institution_id)
    monday = today + timedelta(days=7 - today.weekday())  # next week's, never today
    sunday = monday + timedelta(days=6)
    appointments: list[Appointment] = []
    for n in range(clinicians):
        doctor = await institutions.create_account(
            services, institution, email=f"doctor{n:02}@bench.careloop.test", name=f"Dr Bench {n:02}",
            password=password, roles=["doctor"], departments=[department])
        schedule = await Schedule.create(
            id=uuid7(), institution_id=tenant.institution_id, name=f"Dr Bench {n:02}", kind="clinician",
            clinician_id=doctor.id, department_id=department.id, week=CLINICIAN_WEEK, slot_minutes=SLOT_MINUTES,
            capacity=SLOT_CAPACITY)
        exceptions = _exceptions(n, monday, calendar)
        for kind, starts, ends, capacity in exceptions:
            await ScheduleException.create(id=uuid7(), institution_id=tenant.institution_id, schedule_id=schedule.id,
                                           kind=kind, starts_at=starts, ends_at=ends, capacity=capacity)
        plan = slots.Plan(slots.parse_week(CLINICIAN_WEEK), SLOT_MINUTES, SLOT_CAPACITY,
                          tuple(slots.Adjustment(*e) for e in exceptions))
        for k, slot in enumerate(slots.slots(plan, calendar, monday, sunday)):
            appointments += _appointments(tenant, schedule.id, slot, n * 7 + k, patients)
    await Appointment.bulk_create(appointments, batch_size=500)
    return Outpatients(department.id, monday, sunday, len(appointments))


def _exceptions(n: int, monday: date, calendar: Calendar) -> list[tuple[str, datetime, datetime, int | None]]:
    def at(day: int, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(monday + timedelta(days=day), time(hour, minute), calendar.zone).astimezone(UTC)

    out: list[tuple[str, datetime, datetime, int | None]] = []
    if n % 5 == 0:
        out.append(("leave", at(2, 13, 30), at(2, 17, 30), None))
    if n % 4 == 0:
        out.append(("extra", at(5, 9), at(5, 12), 3))
    return out


def _appointments(tenant: Tenant, schedule_id: uuid.UUID, slot: slots.Slot, k: int,
                  patients: int) -> list[Appointment]:
    """Slot ``k``'s appointments: full (every place), one booked, one arrived, one cancelled, or none."""
    pattern = {0: ["booked"] * slot.capacity, 1: ["booked"], 2: ["arrived"], 3: ["cancelled"]}.get(k % 5, [])
    return [Appointment(
        id=uuid7(), institution_id=tenant.institution_id, patient_id=patient_id((k * 31 + seat) * STRIDE % patients),
        schedule_id=schedule_id, slot_start=slot.start, slot_end=slot.end,
        seat=None if status == "cancelled" else seat + 1, status=status, channel="front_desk",
        cancelled_at=slot.start - timedelta(days=3) if status == "cancelled" else None,
        cancellation_reason="patient" if status == "cancelled" else None,
    ) for seat, status in enumerate(pattern)]
