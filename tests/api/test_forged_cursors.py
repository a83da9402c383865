"""Forged cursors on every list whose cursor holds a time. A cursor is the urlsafe base64 of "kind:key" and the
client's to forge: a time that leaves the calendar once in UTC (as the databases bind and compare it), one without
its offset, or no time at all must answer BAD_USER_INPUT on the cursor's argument, on SQLite and PostgreSQL alike,
never an unexpected error (INTERNAL_SERVER_ERROR). The follow-up worklist's own test is in test_follow_up.py."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from resolvers import pagination
from tests.factories import Response, Tenant, make_patient

ROW = str(uuid.UUID(int=1))
AT_ROW, ROW_AT = "{at}|" + ROW, ROW + "|{at}"  # a cursor's key, {at} its time

# each list: its reader, its arguments but first and after ($pid: a patient, $doctor: a clinician), its cursor's
# kind (in the order asked for) and key
LISTS = {
    "improvementItems": ("support_agent", "orderBy: {field: UPDATED_AT}", "improvement.updated_at.asc", AT_ROW),
    "contracts": ("front_desk", "orderBy: {field: UPDATED_AT, direction: DESC}", "contract.updated_at.desc", AT_ROW),
    "tickets": ("support_agent", "orderBy: {field: DUE}", "ticket-due-asc", AT_ROW),
    "ticketQueue": ("support_agent", "", "ticket-queue", AT_ROW),
    "visits": ("nurse", "patientId: $pid", "visit", AT_ROW),
    "patientAppointments": ("front_desk", "patientId: $pid, upcomingOnly: false", "appointment", AT_ROW),
    "clinicianDay": ("front_desk", 'clinicianId: $doctor, date: "2027-03-02"', "appointment-day", AT_ROW),
    "patientCommunications": ("nurse", "patientId: $pid", "communication", AT_ROW),
    "patients": ("front_desk", "orderBy: {field: CREATED_AT, direction: DESC}", "patient.created_at.desc", ROW_AT),
}
TIMES = {"past the end in UTC": "9999-12-31T23:59:59-05:00", "before the start in UTC": "0001-01-01T00:00:00+05:00",
         "without offset": "2026-12-03T10:00:00", "not a time": "yesterday"}


async def call(tenant: Tenant, name: str, at: str) -> Response:
    """The list, read by its reader after a cursor of its kind holding the time ``at``."""
    reader, arguments, kind, key = LISTS[name]
    variables: dict[str, Any] = {"after": pagination.encode(kind, key.format(at=at))}
    if "$pid" in arguments:
        variables["pid"] = str(await make_patient(tenant, "nurse"))
    if "$doctor" in arguments:
        variables["doctor"] = str(tenant.staff_ids["doctor"])
    declared = ", ".join(f"${v}: {'String' if v == 'after' else 'ID!'}" for v in variables)
    return await tenant.call(reader, f"query({declared}) {{ {name}(first: 5, after: $after, {arguments}) "
                                     "{ nodes { id } } }", **variables)


@pytest.mark.parametrize("name", LISTS)
async def test_a_cursor_as_the_list_writes_it_is_taken(tenant: Tenant, name: str) -> None:
    """The forged cursors below differ from a good one only by their time."""
    reply = await call(tenant, name, "2026-12-03T02:00:00+00:00")
    assert reply.errors == [], reply.errors


@pytest.mark.parametrize("at", TIMES.values(), ids=TIMES.keys())
@pytest.mark.parametrize("name", LISTS)
async def test_a_forged_time_in_a_cursor_is_bad_input(tenant: Tenant, name: str, at: str) -> None:
    reply = await call(tenant, name, at)
    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    assert reply.errors[0]["extensions"]["field"] == "after"
