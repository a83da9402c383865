"""Races on a patient's file, each 20 rounds of two requests at once (found in review, on PostgreSQL, each failing
every round): one patient booked twice into one slot (a double click, two desks); a booking while the file is
merged into another (the appointment stayed on the merged file); crossed merges (a deadlock answered
INTERNAL_SERVER_ERROR to the loser). And a record written while a merge holds the file, in one round: the merge
is held once it has locked both files."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from models import Appointment, Patient
from resolvers import appointment as appointments
from resolvers import patient_merge
from resolvers.context import Services
from tests.api.test_appointment_concurrency import second_desk, utc
from tests.api.test_appointments import BOOK, NOW, at, booking, make_schedule
from tests.api.test_patient_merge import MERGE, WRITES, merged_refusals, records, write
from tests.factories import Tenant, make_patient
from tests.locks import held, pause_before

ROUNDS = 20


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(appointments, "_now", lambda: NOW)


async def test_one_patient_booked_twice_at_once_holds_one_place(tenant: Tenant, client: httpx.AsyncClient,
                                                                services: Services) -> None:
    await second_desk(tenant, client, services)
    schedule = await make_schedule(tenant, capacity=3)
    bad = 0
    for round_ in range(ROUNDS):
        start = at(2 + round_ % 5, 8 + round_ // 5)
        patient = await make_patient(tenant)
        replies = await asyncio.gather(tenant.call("front_desk", BOOK, input=booking(schedule, patient, start)),
                                       tenant.call("desk2", BOOK, input=booking(schedule, patient, start)))
        held = await Appointment.filter(institution_id=tenant.id, schedule_id=schedule, slot_start=utc(start),
                                        patient_id=patient, seat__isnull=False).count()
        if held != 1 or sorted(c for r in replies for c in r.codes) != ["CONFLICT"]:
            bad += 1
    assert bad == 0, f"{bad}/{ROUNDS} rounds"


async def test_a_booking_during_a_merge_never_stays_on_the_merged_file(tenant: Tenant) -> None:
    schedule = await make_schedule(tenant, capacity=40)
    bad = 0
    for round_ in range(ROUNDS):
        survivor, duplicate = await make_patient(tenant), await make_patient(tenant)
        await asyncio.gather(
            tenant.call("front_desk", MERGE, s=str(survivor), d=str(duplicate)),
            tenant.call("front_desk", BOOK, input=booking(schedule, duplicate, at(2 + round_ % 5, 9))))
        left = await Appointment.filter(patient_id=duplicate, status="booked").count()
        if (await Patient.get(id=duplicate)).status == "merged" and left:
            bad += 1
    assert bad == 0, f"{bad}/{ROUNDS} rounds"


async def test_crossed_merges_leave_one_file_and_a_conflict(tenant: Tenant) -> None:
    bad = 0
    for _ in range(ROUNDS):
        a, b = await make_patient(tenant), await make_patient(tenant)
        replies = await asyncio.gather(tenant.call("front_desk", MERGE, s=str(a), d=str(b)),
                                       tenant.call("front_desk", MERGE, s=str(b), d=str(a)))
        statuses = {(await Patient.get(id=p)).status for p in (a, b)}
        if statuses != {"active", "merged"} or sorted(tuple(r.codes) for r in replies) != [(), ("CONFLICT",)]:
            bad += 1
    assert bad == 0, f"{bad}/{ROUNDS} rounds"


async def test_a_double_click_registers_one_file(tenant: Tenant) -> None:
    """The second registration of one person at once answers returningPatient (found in review: two files, 20 of
    20 rounds)."""
    from tests.factories import CREATE_PATIENT
    bad = 0
    for round_ in range(ROUNDS):
        data = {"fullName": f"Double Click {round_}", "departmentId": str(tenant.departments["A"].id),
                "phone": f"1381234{round_:04d}", "birthDate": "1980-01-02"}
        replies = await asyncio.gather(*(tenant.call("front_desk", CREATE_PATIENT, input=data, anyway=False)
                                         for _ in range(2)))
        created = [r.data["patientCreate"]["patient"] for r in replies if not r.errors]
        returning = [r.data["patientCreate"]["returningPatient"] for r in replies if not r.errors]
        files = await Patient.filter(institution_id=tenant.id, full_name=data["fullName"]).count()
        if files != 1 or sum(1 for c in created if c) != 1 or sum(1 for r in returning if r) != 1:
            bad += 1
    assert bad == 0, f"{bad}/{ROUNDS} rounds"


@pytest.mark.parametrize("name", sorted(WRITES))
async def test_a_record_written_during_a_merge_waits_and_is_refused(tenant: Tenant, name: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A contact, visit, ticket, flag, task or plan for the duplicate while the merge holds both files: the write
    waits for the merge, then finds the file merged (CONFLICT, reason merged, the refusal on the trail) and leaves
    nothing on it (found in review: it waited, then landed on the merged file, out of every list)."""
    survivor, duplicate = await make_patient(tenant), await make_patient(tenant)
    locked = pause_before(monkeypatch, patient_merge, "_stricter_consent")  # run once the merge has locked both files
    before = await records(tenant)
    async with held(tenant.call("front_desk", MERGE, s=str(survivor), d=str(duplicate)), locked) as merging:
        writing = asyncio.create_task(write(tenant, name, duplicate))

        done, _ = await asyncio.wait([writing], timeout=0.5)
        assert not done, "the write did not wait for the merge"
        locked.release()
        merged, refused = await asyncio.wait_for(asyncio.gather(merging, writing), 10)

    assert merged.errors == [], merged.errors
    assert refused.codes == ["CONFLICT"] and refused.errors[0]["extensions"]["reason"] == "merged", refused.errors
    assert await records(tenant) == before  # nothing written, on either file
    assert await merged_refusals(tenant, duplicate) == 1
