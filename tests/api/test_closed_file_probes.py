"""A closed file's status (archived, deceased) is told only to a caller who reaches the file: "the file is deceased;
visits are for active files" is an answer about the file, which out of reach must look exactly like a missing one
(docs/security.md: out-of-scope records look like missing ones). Probes, by callers who do not reach the file
(a nurse of another department, a partner without a grant or whose grant the closing ended, another institution's
front desk), of every write that names the status of a closed file: each answers as for an id that names no file."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from resolvers.context import Services
from tests.api.test_appointments import BOOK, booking, make_schedule
from tests.api.test_section_reach_changes import account
from tests.factories import Response, Tenant, make_patient, make_tenant
from tests.partners import ALL_SCOPES, make_partner, make_partnership

UPDATE = "mutation($id: ID!, $input: PatientUpdateInput!) { patientUpdate(id: $id, input: $input) { id } }"
ARCHIVE = "mutation($id: ID!) { patientArchive(id: $id) { id } }"
UNARCHIVE = "mutation($id: ID!) { patientUnarchive(id: $id) { id } }"
VISIT = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"
FLAG = "mutation($input: FlagCreateInput!) { flagCreate(input: $input) { id } }"
PLAN = "mutation($input: CarePlanCreateInput!) { carePlanCreate(input: $input) { id } }"
TASK = "mutation($input: FollowUpTaskCreateInput!) { followUpTaskCreate(input: $input) { id } }"
GRANT = "mutation($input: PartnerGrantCreateInput!) { partnerGrantCreate(input: $input) { id } }"

SOON = (date.today() + timedelta(days=30)).isoformat()  # a follow-up call is due within a year
Call = Callable[[str], Awaitable[Response]]


def _staff_writes(tenant: Tenant, who: str) -> dict[str, Call]:
    """Each write for active files, as ``who`` sends it naming file ``pid``."""
    return {
        "visitCreate": lambda pid: tenant.call(who, VISIT, input={
            "patientId": pid, "kind": "OUTPATIENT", "departmentId": str(tenant.departments["A"].id)}),
        "flagCreate": lambda pid: tenant.call(who, FLAG, input={"patientId": pid, "kind": "FALL_RISK"}),
        "carePlanCreate": lambda pid: tenant.call(who, PLAN, input={"patientId": pid, "title": "Recovery"}),
        "followUpTaskCreate": lambda pid: tenant.call(who, TASK, input={"patientId": pid, "dueOn": SOON}),
        "patientUnarchive": lambda pid: tenant.call(who, UNARCHIVE, id=pid),
        "patientArchive": lambda pid: tenant.call(who, ARCHIVE, id=pid),
    }


def _answer(reply: Response) -> list[tuple[Any, ...]]:
    """What a caller learns: each error's code, reason, path, field and words (the ids asked differ, so not the
    data's)."""
    return [(e.get("extensions", {}).get("code"), e.get("extensions", {}).get("reason"), tuple(e.get("path") or ()),
             e.get("extensions", {}).get("field"), e.get("message")) for e in reply.errors]


async def _closed_files(tenant: Tenant) -> dict[str, str]:
    """A deceased and an archived file of department A."""
    deceased, archived = await make_patient(tenant, "nurse"), await make_patient(tenant, "nurse")
    died = await tenant.call("nurse", UPDATE, id=str(deceased), input={"status": "DECEASED"})
    closed = await tenant.call("front_desk", ARCHIVE, id=str(archived))
    assert died.errors == [] and closed.errors == [], (died.errors, closed.errors)
    return {"deceased": str(deceased), "archived": str(archived)}


async def _assert_as_missing(calls: dict[str, Call], files: dict[str, str]) -> None:
    for name, call in calls.items():
        missing = _answer(await call(str(uuid.uuid4())))
        assert missing and missing[0][0] in ("NOT_FOUND", "FORBIDDEN"), (name, missing)
        for status, pid in files.items():
            answer = _answer(await call(pid))
            assert answer == missing, (name, status, answer, missing)
            assert status not in str(answer)


async def test_staff_of_another_department_learn_no_closed_files_status(
        tenant: Tenant, services: Services, client: httpx.AsyncClient) -> None:
    files = await _closed_files(tenant)
    nurse_b = await account(tenant, services, client, "nurse_b", ["nurse"])
    head_b = await account(tenant, services, client, "head_b", ["department_head"])

    await _assert_as_missing(_staff_writes(tenant, nurse_b), files)
    await _assert_as_missing(_staff_writes(tenant, head_b), files)


async def test_the_caller_who_reaches_the_file_is_told_its_status(tenant: Tenant) -> None:
    """The twin: the nurse of department A reaches both files and is told why they take no visit."""
    files = await _closed_files(tenant)
    for status, pid in files.items():
        reply = await _staff_writes(tenant, "nurse")["visitCreate"](pid)
        assert reply.codes == ["BAD_USER_INPUT"] and f"the file is {status}" in reply.errors[0]["message"]


async def test_another_institutions_staff_learn_no_closed_files_status(
        tenant: Tenant, client: httpx.AsyncClient, services: Services) -> None:
    files = await _closed_files(tenant)
    other = await make_tenant(client, services, "Other Clinic")
    writes = {**_staff_writes(other, "nurse"), **{f"{name} (desk)": call for name, call in
                                                   _staff_writes(other, "front_desk").items()}}
    partner = str(await make_partner(other))
    writes["partnerGrantCreate"] = lambda pid: other.call("front_desk", GRANT, input={
        "partnerId": partner, "patientId": pid, "purpose": "Home care", "expiresAt": f"{SOON}T00:00:00Z"})

    await _assert_as_missing(writes, files)


@pytest.mark.parametrize("closing", ["archived", "deceased"])
async def test_a_partner_whose_grant_the_closing_ended_learns_nothing_of_it(tenant: Tenant, closing: str) -> None:
    """The partner reached the file until it closed (its grant ended with the archive or the death): then it books
    and records visits on it as on an id that names no file. So does a partner never granted the file."""
    schedule = await make_schedule(tenant)
    partnership = await make_partnership(tenant, [*ALL_SCOPES, "visit:create", "appointment:create"])
    granted = str(partnership.granted)
    if closing == "archived":
        reply = await tenant.call("front_desk", ARCHIVE, id=granted)
    else:
        reply = await tenant.call("nurse", UPDATE, id=granted, input={"status": "DECEASED"})
    assert reply.errors == [], reply.errors
    other = await _closed_files(tenant)
    calls: dict[str, Call] = {
        "visitCreate": lambda pid: partnership.call(VISIT, input={
            "patientId": pid, "kind": "HOME_CARE", "status": "FINISHED", "startedAt": "2026-11-20T09:00:00+08:00",
            "endedAt": "2026-11-20T10:00:00+08:00"}),
        "appointmentBook": lambda pid: partnership.call(BOOK, input=booking(schedule, uuid.UUID(pid))),
    }

    await _assert_as_missing(calls, {closing: granted, **other})
