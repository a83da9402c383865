"""A review of the relationship domains' mutations against careless or hostile input (December 2026): every
BAD_USER_INPUT that names a field carries `extensions.reason` (``invalid`` unless its rule has its own), as each
problem of ``extensions.invalid`` does. Found in review: these answered a field and no reason, and wrote nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from models import Appointment, Campaign, Communication, Visit
from tests.api import test_appointments as appointments
from tests.api import test_campaigns as campaigns
from tests.api import test_communications as communications
from tests.api import test_schedules as schedules
from tests.api import test_visits as visits
from tests.factories import Tenant, make_patient


def refusal(reply: object) -> tuple[str, str | None, str | None]:
    error = reply.errors[0]["extensions"]  # type: ignore[attr-defined]
    return error["code"], error.get("field"), error.get("reason")


async def test_a_contact_of_no_such_patient_in_a_logged_call(tenant: Tenant) -> None:
    pid = await communications.reachable(tenant)
    before = await Communication.filter(institution_id=tenant.id).count()

    reply = await tenant.call("nurse", communications.CALL, input={"patientId": str(pid),
                                                                   "contactId": str(uuid.uuid4())})

    assert refusal(reply) == ("BAD_USER_INPUT", "input.contactId", "invalid"), reply.errors
    assert await Communication.filter(institution_id=tenant.id).count() == before


async def test_a_slot_start_of_no_slot(tenant: Tenant) -> None:
    schedule = await appointments.make_schedule(tenant)
    pid = await make_patient(tenant)
    start = datetime.now(UTC).astimezone(appointments.ZONE).replace(hour=8, minute=7, second=0, microsecond=0) \
        + timedelta(days=2)

    reply = await tenant.call("front_desk", appointments.BOOK, input=appointments.booking(schedule, pid,
                                                                                         start=start.isoformat()))

    assert refusal(reply) == ("BAD_USER_INPUT", "input.slotStart", "invalid"), reply.errors
    assert not await Appointment.filter(institution_id=tenant.id).exists()


async def test_an_audience_department_of_none(tenant: Tenant) -> None:
    reply = await tenant.call("admin", campaigns.CREATE, input=campaigns.draft(departmentId=str(uuid.uuid4())))

    assert refusal(reply) == ("BAD_USER_INPUT", "input.audience.departmentId", "invalid"), reply.errors
    assert not await Campaign.filter(institution_id=tenant.id).exists()


async def test_a_time_for_a_move_that_keeps_none(tenant: Tenant) -> None:
    visit = await visits.a_visit(tenant, await make_patient(tenant))

    reply = await tenant.call("front_desk", visits.MOVE, id=visit["id"], to="NO_SHOW",
                              at=(datetime.now(UTC) - timedelta(hours=1)).isoformat())

    assert refusal(reply) == ("BAD_USER_INPUT", "at", "invalid"), reply.errors
    assert (await Visit.get(id=visit["id"])).status == "planned"


async def test_schedule_times_outside_the_years_say_so(tenant: Tenant) -> None:
    """A schedule exception's and a booking's times out of the years 2000-2199 are `out_of_range`, as every date out
    of the years is (``core.validation.check_year``); found in review: `invalid`, and a booking's no reason."""
    schedule = await appointments.make_schedule(tenant)
    exception = await tenant.call("admin", schedules.EXCEPTION_ADD, id=schedule, input={
        "kind": "LEAVE", "startsAt": "9999-01-01T00:00:00Z", "endsAt": "9999-01-02T00:00:00Z"})
    booking = await tenant.call("front_desk", appointments.BOOK, input=appointments.booking(
        schedule, await make_patient(tenant), start="9999-03-29T08:00:00+08:00"))

    assert [(p["field"], p["reason"]) for p in exception.errors[0]["extensions"]["invalid"]] == [
        ("input.startsAt", "out_of_range"), ("input.endsAt", "out_of_range")]
    assert refusal(booking) == ("BAD_USER_INPUT", "input.slotStart", "out_of_range"), booking.errors
    assert not await Appointment.filter(institution_id=tenant.id).exists()
