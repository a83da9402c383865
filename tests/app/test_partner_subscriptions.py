"""A partner client restricted to registered documents, over graphql-transport-ws against the real app served by
uvicorn: a document it did not register is refused as a staff member's refused subscription is, a registered one
runs."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest

from models import Visit
from tests.app.test_check_in_alerts import flag, subscribe
from tests.factories import Tenant
from tests.partners import ALL_SCOPES, Partnership, make_partnership, sha256

SCOPES = [*ALL_SCOPES, "visit:create", "visit:read", "flag:read"]
HOME_CARE = {"kind": "HOME_CARE", "status": "FINISHED", "startedAt": "2026-11-20T09:00:00+08:00",
             "endedAt": "2026-11-20T10:00:00+08:00"}
VISIT = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"
SUBSCRIBE = "subscription($dep: ID) { checkInAlerts(departmentId: $dep) { visit { id status } flags { kind } } }"
# the same subscription, asked differently: not the document the client registered
UNREGISTERED = SUBSCRIBE.replace("flags { kind }", "alerts: flags { kind }")


async def partner_events(partnership: Partnership) -> list[tuple[str, str | None, str, str | None]]:
    return [(e.action, e.resource_type, e.outcome, e.reason) for e in await partnership.events() if e.action != "token"]


async def arrive_a_visit_it_recorded(partnership: Partnership) -> str:
    """A home-care visit the partner recorded for its granted patient (with an allergy flag), then arrived, as
    another worker's commit would make it: nothing in this process is told, the subscription's poll finds it."""
    await flag(partnership.tenant, partnership.granted, "ALLERGY", "Penicillin")
    reply = await partnership.call(VISIT, input={"patientId": str(partnership.granted), **HOME_CARE})
    assert reply.errors == [], reply.errors
    visit_id = str(reply.data["visitCreate"]["id"])
    now = datetime.now(UTC)
    await Visit.filter(id=visit_id).update(status="arrived", arrived_at=now, updated_at=now)
    return visit_id


async def test_an_unregistered_subscription_is_refused_as_staff_are(tenant: Tenant, ws_url: str,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    """Found in review: the refusal was recorded, but the client got a bare ``complete`` and the log an ERROR
    (an unhandled exception in Strawberry's operation task)."""
    caplog.set_level(logging.INFO)
    partnership = await make_partnership(tenant, SCOPES, documents=[sha256(SUBSCRIBE), sha256(VISIT)])
    live = await subscribe(ws_url, partnership.token, query=UNREGISTERED)
    refused = await live.next()
    # the message and code HTTP answers (tests/api/test_partner.py), in a next as a staff member's refusal is
    assert refused == {"id": "1", "type": "next", "payload": {"data": None, "errors": [{
        "message": "This client may send only its registered operation documents.",
        "extensions": {"code": "FORBIDDEN"}}]}}, refused
    assert await live.next() == {"id": "1", "type": "complete"}
    staff = await subscribe(ws_url, tenant.tokens["compliance_officer"], query=SUBSCRIBE)  # reads no visit
    staff_refused = await staff.next()
    assert (staff_refused["type"], staff_refused["payload"]["data"]) == ("next", None)
    assert [e["extensions"]["code"] for e in staff_refused["payload"]["errors"]] == ["FORBIDDEN"]
    assert await staff.next() == {"id": "1", "type": "complete"}
    await staff.close()
    await arrive_a_visit_it_recorded(partnership)
    await live.nothing()  # nothing else ran: no alert
    await live.close()
    events = await partner_events(partnership)
    assert [e for e in events if e[2] == "denied"] == [("read", "document", "denied", "untrusted_document")]  # once
    assert [e for e in events if e[0] == "read" and e[2] == "allowed"] == []  # nothing of the subscription ran
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_registered_subscription_runs(tenant: Tenant, ws_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    partnership = await make_partnership(tenant, SCOPES, documents=[sha256(SUBSCRIBE), sha256(VISIT)])
    live = await subscribe(ws_url, partnership.token, query=SUBSCRIBE)
    await live.nothing()  # not refused
    visit_id = await arrive_a_visit_it_recorded(partnership)
    seen, errors = await live.alert(within=6)
    assert errors == [] and seen["visit"]["id"] == visit_id and seen["flags"] == [{"kind": "ALLERGY"}]
    await live.close()
    await asyncio.sleep(0.2)  # the operation ends with the socket
    events = await partner_events(partnership)
    assert [e for e in events if e[2] == "denied"] == []
    assert [e[:2] for e in events if e[0] == "read"] == [("read", "patient")]  # the alert it was sent
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []

