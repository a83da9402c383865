"""The check-in alert over graphql-transport-ws, against the real app served by uvicorn: who is told
that a flagged patient has arrived, and what each is told."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import websockets

from models import Visit
from resolvers import flag as flags_module
from resolvers import institution as institutions
from resolvers.context import Services
from tests.factories import PASSWORD, Tenant, login, make_patient

SUBSCRIBE = """subscription($dep: ID) { checkInAlerts(departmentId: $dep) {
  visit { id kind status department { name } }
  patient { id fullName allergies specialNeeds }
  flags { kind detail }
  vipSegment } }"""
VISIT = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"
ARRIVE = "mutation($id: ID!) { visitTransition(id: $id, to: ARRIVED) { id status } }"
FLAG = "mutation($input: FlagCreateInput!) { flagCreate(input: $input) { id } }"
QUIET = 0.8  # seconds without a message that count as "nothing was sent"


class Live:
    def __init__(self, connection: Any) -> None:
        self.connection = connection

    async def next(self, within: float = 5) -> dict[str, Any]:
        async with asyncio.timeout(within):
            return dict(json.loads(await self.connection.recv()))

    async def alert(self, within: float = 5) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        message = await self.next(within)
        assert message["type"] == "next", message
        return message["payload"]["data"]["checkInAlerts"], message["payload"].get("errors") or []

    async def nothing(self) -> None:
        with pytest.raises(TimeoutError):
            await self.next(QUIET)

    async def close(self) -> None:
        await self.connection.close()


async def subscribe(url: str, token: str, department: str | None = None, query: str = SUBSCRIBE) -> Live:
    connection = await websockets.connect(url, subprotocols=["graphql-transport-ws"])
    await connection.send(json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}))
    live = Live(connection)
    assert (await live.next())["type"] == "connection_ack"
    await connection.send(json.dumps({"id": "1", "type": "subscribe",
                                      "payload": {"query": query, "variables": {"dep": department}}}))
    await asyncio.sleep(0.2)  # let the subscription take its starting point
    return live


async def nurse_of_b(tenant: Tenant, services: Services) -> str:
    """A nurse of department B (the factory's clinicians are all in A)."""
    email = f"nurse.b.{uuid.uuid4().hex[:8]}@careloop.test"
    await institutions.create_account(services, tenant.institution, email=email, name="Nurse B", password=PASSWORD,
                                      roles=["nurse"], departments=[tenant.departments["B"]])
    return await login(tenant.client, email)


async def flag(tenant: Tenant, pid: uuid.UUID, kind: str, detail: str | None = None, role: str = "nurse",
               **more: Any) -> None:
    reply = await tenant.call(role, FLAG, input={"patientId": str(pid), "kind": kind, "detail": detail, **more})
    assert reply.errors == [], reply.errors


async def check_in(tenant: Tenant, pid: uuid.UUID, department: str = "A", role: str = "front_desk") -> str:
    """A visit booked in ``department`` and checked in at the desk: its id."""
    reply = await tenant.call(role, VISIT, input={"patientId": str(pid), "kind": "OUTPATIENT",
                                                  "departmentId": str(tenant.departments[department].id)})
    assert reply.errors == [], reply.errors
    visit_id = str(reply.data["visitCreate"]["id"])
    arrived = await tenant.call(role, ARRIVE, id=visit_id)
    assert arrived.errors == [] and arrived.data["visitTransition"]["status"] == "ARRIVED", arrived.errors
    return visit_id


async def flagged_patient(tenant: Tenant) -> uuid.UUID:
    """A patient of department A with an allergy flag (clinical) and a special-needs flag (needs)."""
    pid = await make_patient(tenant, "nurse", fullName="Alerted Patient", allergies="Penicillin")
    await flag(tenant, pid, "ALLERGY", "Penicillin: anaphylaxis")
    await flag(tenant, pid, "SPECIAL_NEEDS", "Large print, accompanied by her daughter", role="front_desk")
    return pid


async def test_the_desk_and_the_department_nurse_are_alerted_each_as_they_may_see_it(
        tenant: Tenant, other_tenant: Tenant, services: Services, ws_url: str) -> None:
    pid = await make_patient(tenant, "nurse", fullName="Alerted Patient", allergies="Penicillin",
                             specialNeeds="Wheelchair")
    await flag(tenant, pid, "ALLERGY", "Penicillin: anaphylaxis")
    await flag(tenant, pid, "SPECIAL_NEEDS", "Large print, accompanied by her daughter", role="front_desk")
    desk = await subscribe(ws_url, tenant.tokens["front_desk"])
    nurse = await subscribe(ws_url, tenant.tokens["nurse"])
    nurse_b = await subscribe(ws_url, await nurse_of_b(tenant, services))
    elsewhere = await subscribe(ws_url, other_tenant.tokens["front_desk"])
    visit_id = await check_in(tenant, pid)

    seen, errors = await desk.alert()
    assert seen == {
        "visit": {"id": visit_id, "kind": "OUTPATIENT", "status": "ARRIVED", "department": {"name": "Department A"}},
        "patient": {"id": str(pid), "fullName": "Alerted Patient", "allergies": None, "specialNeeds": "Wheelchair"},
        "flags": [{"kind": "ALLERGY", "detail": None},
                  {"kind": "SPECIAL_NEEDS", "detail": "Large print, accompanied by her daughter"}],
        "vipSegment": False}
    assert sorted(".".join(map(str, e["path"][1:])) for e in errors) == ["flags.0.detail", "patient.allergies"]
    assert {e["extensions"]["code"] for e in errors} == {"FORBIDDEN"}

    seen, errors = await nurse.alert()
    assert errors == []
    assert seen["patient"]["allergies"] == "Penicillin"
    assert seen["flags"] == [{"kind": "ALLERGY", "detail": "Penicillin: anaphylaxis"},
                             {"kind": "SPECIAL_NEEDS", "detail": "Large print, accompanied by her daughter"}]

    await nurse_b.nothing()
    await elsewhere.nothing()
    await desk.nothing()  # one check-in, one alert

    # what was sent is on the trail like any read: the desk's decryption of the needs, its refusal of the allergy
    reads = await tenant.audit_events(patient_id=pid, action="read", actor_id=tenant.staff_ids["front_desk"])
    allowed = ",".join(e.fields_read for e in reads if e.outcome == "allowed")
    assert "flag.detail" in allowed and "special_needs" in allowed
    refused = [e for e in reads if e.outcome == "denied"]
    assert refused and {e.reason for e in refused} == {"forbidden_field"}
    assert all(set(e.field_classes.split(",")) == {"clinical"} for e in refused)
    nurse_reads = await tenant.audit_events(patient_id=pid, action="read", actor_id=tenant.staff_ids["nurse"],
                                            outcome="allowed")
    assert any("allergies" in e.fields_read and "flag.detail" in e.fields_read for e in nurse_reads)

    # the quiet ones were listening: department B's nurse hears of department B, the other institution of its own
    in_b = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))
    await flag(tenant, in_b, "FALL_RISK", "Walks with a frame", role="front_desk")
    visit_b = await check_in(tenant, in_b, department="B")
    assert (await nurse_b.alert())[0]["visit"]["id"] == visit_b
    assert (await desk.alert())[0]["visit"]["id"] == visit_b
    await nurse.nothing()
    theirs = await make_patient(other_tenant, segments=["VIP"])
    visit_there = await check_in(other_tenant, theirs)
    assert (await elsewhere.alert())[0]["visit"]["id"] == visit_there
    await desk.nothing()
    for live in (desk, nurse, nurse_b, elsewhere):
        await live.close()


async def test_only_patients_with_an_alert_in_force_or_in_the_vip_segment_alert(tenant: Tenant, ws_url: str) -> None:
    desk = await subscribe(ws_url, tenant.tokens["front_desk"])
    plain = await make_patient(tenant)
    payer = await make_patient(tenant)
    await flag(tenant, payer, "DIFFICULT_PAYER", "Ask for a deposit", role="front_desk")
    expired = await make_patient(tenant)
    await flag(tenant, expired, "FALL_RISK", "Hip fracture", role="front_desk", startsOn="2020-01-01",
               endsOn="2020-03-01")
    vip = await make_patient(tenant, segments=["VIP"])
    for pid in (plain, payer, expired):
        await check_in(tenant, pid)
    await desk.nothing()
    visit_id = await check_in(tenant, vip)
    seen, errors = await desk.alert()
    assert [e["path"][1:] for e in errors] == [["patient", "allergies"]]  # the desk never reads clinical data
    assert seen["visit"]["id"] == visit_id
    assert (seen["patient"]["id"], seen["flags"], seen["vipSegment"]) == (str(vip), [], True)
    # a difficult payer who is also at risk of falling: both flags are shown, the fall risk alerts
    await flag(tenant, payer, "FALL_RISK", "Walks with a frame", role="front_desk")
    await check_in(tenant, payer)
    seen, _ = await desk.alert()
    assert [f["kind"] for f in seen["flags"]] == ["DIFFICULT_PAYER", "FALL_RISK"]
    await desk.close()


async def test_a_walk_in_alerts_and_a_department_narrows_the_alerts(tenant: Tenant, ws_url: str) -> None:
    pid = await flagged_patient(tenant)
    in_b = await subscribe(ws_url, tenant.tokens["front_desk"], str(tenant.departments["B"].id))
    in_a = await subscribe(ws_url, tenant.tokens["front_desk"], str(tenant.departments["A"].id))
    reply = await tenant.call("front_desk", VISIT, input={"patientId": str(pid), "kind": "DENTAL",
                                                          "status": "ARRIVED",
                                                          "departmentId": str(tenant.departments["A"].id)})
    assert reply.errors == [], reply.errors
    seen, _ = await in_a.alert()
    assert (seen["visit"]["id"], seen["visit"]["kind"]) == (reply.data["visitCreate"]["id"], "DENTAL")
    await in_b.nothing()
    for live in (in_a, in_b):
        await live.close()


async def test_a_check_in_through_another_worker_is_found_by_polling(tenant: Tenant, ws_url: str) -> None:
    pid = await flagged_patient(tenant)
    reply = await tenant.call("front_desk", VISIT, input={"patientId": str(pid), "kind": "OUTPATIENT"})
    visit_id = reply.data["visitCreate"]["id"]
    nurse = await subscribe(ws_url, tenant.tokens["nurse"])
    now = datetime.now(UTC)
    # another worker's commit: nothing in this process is told
    await Visit.filter(id=visit_id).update(status="arrived", arrived_at=now, updated_at=now, version=2)
    seen, errors = await nurse.alert(within=6)
    assert errors == [] and seen["visit"]["id"] == visit_id and seen["visit"]["department"] is None
    await nurse.close()


@pytest.mark.parametrize("role", ["compliance_officer", "admin"])
async def test_roles_that_read_no_visit_are_refused_and_the_refusal_recorded(tenant: Tenant, ws_url: str,
                                                                             role: str) -> None:
    live = await subscribe(ws_url, tenant.tokens[role])
    message = await live.next()
    assert message["type"] == "next" and message["payload"].get("data") is None
    assert [e["extensions"]["code"] for e in message["payload"]["errors"]] == ["FORBIDDEN"]
    denied = await tenant.audit_events(outcome="denied", actor_id=tenant.staff_ids[role])
    assert [(e.resource_type, e.reason) for e in denied] == [("visit", "forbidden")]
    await live.close()


async def test_a_revoked_token_ends_the_alerts(tenant: Tenant, ws_url: str) -> None:
    pid = await flagged_patient(tenant)
    live = await subscribe(ws_url, tenant.tokens["nurse"])
    await check_in(tenant, pid)
    assert (await live.next())["type"] == "next"
    assert (await tenant.call("nurse", "mutation { logout }")).errors == []
    await check_in(tenant, pid)
    message = await live.next()
    assert message["type"] == "next" and message["payload"].get("data") is None
    assert [e["extensions"]["code"] for e in message["payload"]["errors"]] == ["UNAUTHENTICATED"]
    await live.close()


async def test_a_check_in_alert_lists_the_alerts_in_force_up_to_their_bound(tenant: Tenant, ws_url: str,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A check-in alert's flags were not bounded (found in review): at most IN_FORCE_LIMIT (50, here 2), oldest
    first, the rest paged by patientFlagsConnection; an alerting kind past the bound still alerts."""
    monkeypatch.setattr(flags_module, "IN_FORCE_LIMIT", 2, raising=False)
    desk = await subscribe(ws_url, tenant.tokens["front_desk"])
    pid = await make_patient(tenant)
    for detail in ("Ask for a deposit", "Two unpaid invoices"):
        await flag(tenant, pid, "DIFFICULT_PAYER", detail, role="front_desk")  # shown, but alerts nobody
    await flag(tenant, pid, "FALL_RISK", "Walks with a frame", role="front_desk")
    visit_id = await check_in(tenant, pid)
    seen, _ = await desk.alert()
    assert seen["visit"]["id"] == visit_id
    assert seen["flags"] == [{"kind": "DIFFICULT_PAYER", "detail": "Ask for a deposit"},
                             {"kind": "DIFFICULT_PAYER", "detail": "Two unpaid invoices"}]
    await desk.close()
