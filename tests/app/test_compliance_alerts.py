"""The compliance alerts sweep (issue 18): yesterday's access anomalies and break-glass accesses unreviewed after
24 hours are put in the staff notification outbox once each, for the institution's compliance officers only, and
name ids, never patient data. The outbox table is shared by every institution of the test database, so each test
looks at its own institution's rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from models import Notification
from resolvers import compliance_alert, notification
from resolvers import institution as institutions
from resolvers.context import Services
from resolvers.notification import Message
from tests.conftest import SqlCounter
from tests.factories import PASSWORD, Tenant, make_patient

BREAK = """mutation($id: ID!, $reason: String!) { breakGlass(patientId: $id, reason: $reason) { id } }"""
REVIEW = """mutation($id: ID!) { emergencyAccessReview(id: $id, outcome: JUSTIFIED) { id } }"""
LIST = "query { patients(first: 50) { nodes { id fullName } } }"
REASON = "Unconscious in the emergency room, allergies needed"


async def recipients(institution_id: uuid.UUID, key: str = f"{compliance_alert.BREAK_GLASS}:-") -> list[uuid.UUID]:
    """Who the outbox tells of a compliance alert with this key, were it sent now."""
    return await notification.recipients(Notification(institution_id=institution_id, key=key,
                                                      kind=key.partition(":")[0]))


async def _alerts(tenant: Tenant) -> list[Notification]:
    return await Notification.filter(institution_id=tenant.id, kind__in=compliance_alert.KINDS).order_by("key")


async def _break_glass(tenant: Tenant, name: str) -> tuple[uuid.UUID, str]:
    """A department-B file a doctor of department A opens by breaking the glass: the access's id and the name."""
    pid = await make_patient(tenant, fullName=name, departmentId=str(tenant.departments["B"].id))
    reply = await tenant.call("doctor", BREAK, id=str(pid), reason=REASON)
    assert reply.errors == [], reply.errors
    return pid, reply.data["breakGlass"]["id"]


async def test_an_unreviewed_break_glass_access_alerts_the_officers_once_after_a_day(tenant: Tenant) -> None:
    pid, grant = await _break_glass(tenant, "Unreviewed Patient")
    _, reviewed = await _break_glass(tenant, "Reviewed Patient")
    assert (await tenant.call("compliance_officer", REVIEW, id=reviewed)).errors == []
    now = datetime.now(UTC)

    await compliance_alert.sweep(now + timedelta(hours=23))
    assert await _alerts(tenant) == []  # not yet a day old

    await compliance_alert.sweep(now + timedelta(hours=25))
    await compliance_alert.sweep(now + timedelta(hours=26))  # run twice: notified once
    [alert] = await _alerts(tenant)
    assert (alert.kind, alert.key, alert.sent_at) == (compliance_alert.BREAK_GLASS, f"compliance.break_glass:{grant}",
                                                      None)
    words = compliance_alert.text(alert.kind, alert.key)
    assert grant in words and str(pid) not in words and "Patient" not in words


async def test_a_staff_member_reading_far_more_files_than_peers_alerts_the_officers_the_next_day(
        tenant: Tenant, services: Services) -> None:
    for n in range(2):  # two more nurses, who read nothing: the role's median stays at 0
        await institutions.create_account(services, tenant.institution, email=f"nurse{n}.{tenant.id}@careloop.test",
                                          name=f"Quiet nurse {n}", password=PASSWORD, roles=["nurse"],
                                          departments=[tenant.departments["A"]])
    for n in range(compliance_alert.ANOMALY_MINIMUM + 1):
        await make_patient(tenant, fullName=f"Listed Patient {n}")
    reply = await tenant.call("nurse", LIST)  # one page, 21 files read
    assert len(reply.data["patients"]["nodes"]) == compliance_alert.ANOMALY_MINIMUM + 1
    tomorrow = datetime.now(UTC) + timedelta(days=1)

    await compliance_alert.sweep(datetime.now(UTC))
    assert await _alerts(tenant) == []  # today is not over: reported tomorrow
    await compliance_alert.sweep(tomorrow)
    await compliance_alert.sweep(tomorrow + timedelta(minutes=10))
    [alert] = await _alerts(tenant)
    day = datetime.now(UTC).date().isoformat()
    nurse = tenant.staff_ids["nurse"]
    assert (alert.kind, alert.key) == (compliance_alert.ANOMALY, f"compliance.anomaly:{nurse}:{day}")
    words = compliance_alert.text(alert.kind, alert.key)
    assert str(tenant.staff_ids["nurse"]) in words and day in words and "Listed Patient" not in words
    found = await compliance_alert.anomalies(datetime.now(UTC) - timedelta(days=1), tomorrow, institution_id=tenant.id)
    assert [(a.staff_id, a.role, a.patients_read, a.role_median, a.peers) for a in found] == [
        (tenant.staff_ids["nurse"], "nurse", compliance_alert.ANOMALY_MINIMUM + 1, 0.0, 3)]


async def test_only_the_institutions_active_compliance_officers_hear_of_it(tenant: Tenant, other_tenant: Tenant,
                                                                           services: Services) -> None:
    second = await institutions.create_account(services, tenant.institution, email=f"co2.{tenant.id}@careloop.test",
                                               name="Second officer", password=PASSWORD,
                                               roles=["compliance_officer"])
    assert await recipients(tenant.id) == sorted([tenant.staff_ids["compliance_officer"], second.id])
    assert await recipients(other_tenant.id) == [other_tenant.staff_ids["compliance_officer"]]
    _, grant = await _break_glass(tenant, "Some Patient")
    await compliance_alert.sweep(datetime.now(UTC) + timedelta(hours=25))
    assert [a.key for a in await _alerts(tenant)] == [f"compliance.break_glass:{grant}"]
    assert await _alerts(other_tenant) == []  # another institution's officers get nothing of this one


DEACTIVATE = "mutation($id: ID!) { staffUpdate(id: $id, input: {active: false}) { id } }"


async def test_without_an_active_officer_the_admins_hear_of_it_but_not_about_themselves(
        tenant: Tenant, services: Services) -> None:
    """Found in review: the institution's one officer left and none appointed yet, and break-glass accesses and
    anomalies were told to nobody (tickets and contracts fall back to the admins already). The admins appoint an
    officer; an anomaly about an admin is not told to that admin."""
    officer, admin = tenant.staff_ids["compliance_officer"], tenant.staff_ids["admin"]
    assert (await tenant.call("admin", DEACTIVATE, id=str(officer))).errors == []
    second = await institutions.create_account(services, tenant.institution, email=f"admin2.{tenant.id}@careloop.test",
                                               name="Second admin", password=PASSWORD, roles=["admin"])
    assert await recipients(tenant.id, f"compliance.break_glass:{uuid.uuid4()}") == sorted(
        [admin, second.id])
    assert await recipients(tenant.id, f"compliance.anomaly:{admin}:2026-12-01") == [second.id]
    _, grant = await _break_glass(tenant, "Unwatched Patient")
    later = datetime.now(UTC) + timedelta(hours=25)
    await compliance_alert.sweep(later)
    sender = RecordingSender()
    await notification.deliver_due(sender, now=later)
    [message] = [m for m in sender.messages if m.institution_id == tenant.id and m.kind.startswith("compliance.")]
    assert grant in message.text and sorted(message.recipients) == sorted([admin, second.id])
    # an officer appointed again hears of the next one, and the admins no more
    assert (await tenant.call("admin", "mutation($id: ID!) { staffUpdate(id: $id, input: {active: true}) { id } }",
                              id=str(officer))).errors == []
    assert await recipients(tenant.id, f"compliance.anomaly:{admin}:2026-12-01") == [officer]


class RecordingSender:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def send(self, message: Message) -> None:
        self.messages.append(message)


async def test_the_alert_is_delivered_to_the_officers_only(tenant: Tenant, other_tenant: Tenant) -> None:
    pid, grant = await _break_glass(tenant, "Delivered Patient")
    later = datetime.now(UTC) + timedelta(hours=25)
    await compliance_alert.sweep(later)
    sender = RecordingSender()
    await notification.deliver_due(sender, now=later)
    await notification.deliver_due(sender, now=later + timedelta(hours=1))
    [message] = [m for m in sender.messages if m.institution_id == tenant.id and m.kind.startswith("compliance.")]
    assert list(message.recipients) == [tenant.staff_ids["compliance_officer"]]
    assert grant in message.text and str(pid) not in message.text and "Delivered" not in message.text
    assert not [m for m in sender.messages if m.institution_id == other_tenant.id and m.kind.startswith("compliance.")]


async def test_the_keys_already_scheduled_are_looked_up_a_bounded_number_at_a_time(
        tenant: Tenant, sql_counter: SqlCounter, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every break-glass access left unreviewed in any institution is wanted on every sweep, and the keys already in
    the outbox were looked up in one statement, one parameter each: past 32,767 (either database's limit) the sweep
    failed every time and no institution heard of anything any more (found in review). They are looked up
    KEYS_PER_STATEMENT at a time (2 here, with three accesses waiting), with the same alerts, once each."""
    monkeypatch.setattr(compliance_alert, "KEYS_PER_STATEMENT", 2, raising=False)
    grants = sorted([(await _break_glass(tenant, f"Waiting Patient {n}"))[1] for n in range(3)])
    later = datetime.now(UTC) + timedelta(hours=25)
    sql_counter.statements.clear()
    await compliance_alert.sweep(later)
    await compliance_alert.sweep(later + timedelta(minutes=10))
    lookups = [s for s in sql_counter.statements if '"notification"' in s and '"key" IN (' in s and "SELECT" in s]
    assert lookups
    assert all(s.split('"key" IN (', 1)[1].split(")", 1)[0].count(",") <= 1 for s in lookups), lookups
    assert [(a.kind, a.key) for a in await _alerts(tenant)] == [
        (compliance_alert.BREAK_GLASS, f"compliance.break_glass:{grant}") for grant in grants]
