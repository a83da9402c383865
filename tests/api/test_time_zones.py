"""A time without its zone offset is refused alike wherever a client sends one: BAD_USER_INPUT at its field, reason
``no_time_zone``, nothing written (found in review: a ticket's ``receivedAt`` said ``no_time_zone``, while a
booking's ``slotStart``, a logged call's ``at``, a grant's ``expiresAt`` and the trail's period said ``invalid``).
Each twin, the same time with its offset, is taken."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from resolvers import appointment, follow_up
from tests.api import test_appointments, test_follow_up
from tests.api.test_appointments import BOOK, booking, make_schedule
from tests.api.test_follow_up import ATTEMPT, owned_task
from tests.api.test_input_errors import TICKET_CREATE
from tests.factories import Response, Tenant, make_patient
from tests.partners import consent, grant, later, make_partner


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """The booking's and the task's modules at their own tests' moments, which their helpers build days from."""
    monkeypatch.setattr(appointment, "_now", lambda: test_appointments.NOW)
    monkeypatch.setattr(follow_up, "_now", lambda: test_follow_up.NOW)


AUDIT = "query($filter: AuditEventFilter) { auditEvents(filter: $filter) { nodes { id } } }"


def refused_without_zone(reply: Response, field: str) -> None:
    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    extensions: dict[str, Any] = reply.errors[0]["extensions"]
    assert (extensions["field"], extensions["reason"]) == (field, "no_time_zone"), extensions


def naive(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat()


async def test_a_booking(tenant: Tenant) -> None:
    schedule, pid = await make_schedule(tenant), await make_patient(tenant)
    start = datetime.fromisoformat(booking(schedule, pid)["slotStart"])
    reply = await tenant.call("front_desk", BOOK, input=booking(schedule, pid, naive(start)))
    refused_without_zone(reply, "input.slotStart")
    assert reply.data == {"appointmentBook": None}
    assert (await tenant.call("front_desk", BOOK, input=booking(schedule, pid, start.isoformat()))).errors == []


async def test_a_logged_call(tenant: Tenant) -> None:
    task = await owned_task(tenant)
    moment = test_follow_up.NOW - timedelta(hours=1)
    attempt = {"channel": "PHONE", "outcome": "BUSY"}
    reply = await tenant.call("nurse", ATTEMPT, id=task["id"], input={**attempt, "at": naive(moment)})
    refused_without_zone(reply, "input.at")
    assert (await tenant.call("nurse", ATTEMPT, id=task["id"], input={**attempt, "at": moment.isoformat()})
            ).errors == []


async def test_a_partner_grant(tenant: Tenant) -> None:
    partner, pid = await make_partner(tenant), await make_patient(tenant)
    assert (await consent(tenant, pid, partner)).errors == []
    expires = datetime.fromisoformat(later(days=30))
    refused_without_zone(await grant(tenant, partner, pid, expires_at=naive(expires)), "input.expiresAt")
    assert (await grant(tenant, partner, pid, expires_at=expires.isoformat())).errors == []


async def test_the_trails_period(tenant: Tenant) -> None:
    moment = datetime.now(UTC) - timedelta(days=1)
    for bound in ("from", "to"):
        reply = await tenant.call("compliance_officer", AUDIT, filter={bound: naive(moment)})
        refused_without_zone(reply, f"filter.{bound}")
        assert (await tenant.call("compliance_officer", AUDIT, filter={bound: moment.isoformat()})).errors == []


async def test_a_ticket_received_earlier(tenant: Tenant) -> None:
    moment = datetime.now(UTC) - timedelta(hours=1)
    ticket = {"channel": "HOTLINE", "category": "REQUEST", "subject": "Report copy", "callerName": "Li Na"}
    reply = await tenant.call("support_agent", TICKET_CREATE, input={**ticket, "receivedAt": naive(moment)})
    refused_without_zone(reply, "input.receivedAt")
    assert (await tenant.call("support_agent", TICKET_CREATE, input={**ticket, "receivedAt": moment.isoformat()})
            ).errors == []
