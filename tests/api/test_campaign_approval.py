"""Four eyes on campaigns, through the API (the institutions' approval rule for using customer information): a
campaign is started only once someone other than its author approved it. The author is refused (FORBIDDEN,
self_approval, recorded) and a colleague who may start it approves it (recorded as a write); a start before the
approval is refused with nothing queued; a department head approves only within their departments, as they start;
roles without the right are refused and recorded; a campaign approved, started or cancelled is not approved
(again); approvedBy and approvedAt tell who and when. Every refusal leaves the campaign as it was."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from models import Campaign, Communication
from resolvers import campaign as campaigns
from resolvers.context import Services
from tests import locks
from tests.api.test_campaigns import CANCEL, CREATE, PREVIEW, START, draft, ok, patient
from tests.campaigns import second_admin
from tests.conftest import BACKEND
from tests.factories import Tenant
from tests.partners import make_partnership
from tests.patients import denials_since, events_since, mark, open_account

APPROVED = "id version status approvedAt approvedBy { id name } author { id name }"
APPROVE = f"mutation($id: ID!, $v: Int) {{ campaignApprove(id: $id, version: $v) {{ {APPROVED} }} }}"
SHOWN = f"query($id: ID!) {{ campaign(id: $id) {{ {APPROVED} }} }}"


def refusal(reply: Any) -> tuple[str, str | None, str | None]:
    [error] = reply.errors
    extensions = error["extensions"]
    return extensions["code"], extensions.get("field"), extensions.get("reason")


async def stored(campaign_id: str) -> dict[str, Any]:
    """The campaign's row as stored: a refusal leaves it as it was."""
    [row] = await Campaign.filter(id=uuid.UUID(campaign_id)).values()
    return row


async def writes_since(tenant: Tenant, seq: int) -> list[tuple[Any, str, str, Any, str]]:
    """(actor, action, resource type, record, fields) of the writes recorded on campaigns since the mark."""
    return [(e.actor_id, e.action, e.resource_type, e.resource_id, e.fields_read)
            for e in await events_since(tenant.id, seq, outcome="allowed", resource_type="campaign")
            if e.action != "read"]


async def head_draft(tenant: Tenant) -> dict[str, Any]:
    """A draft written by department A's head, to their department (the admin may approve it)."""
    return ok(await tenant.call("department_head", CREATE, input=draft()), "campaignCreate")


# -- the author and a colleague ------------------------------------------------------------------------------------


@pytest.mark.parametrize("author", ["department_head", "admin"])
async def test_the_author_does_not_approve_their_own_campaign(tenant: Tenant, author: str) -> None:
    made = ok(await tenant.call(author, CREATE, input=draft(departmentId=str(tenant.departments["A"].id))),
              "campaignCreate")
    before, seq = await stored(made["id"]), await mark(tenant.id)

    reply = await tenant.call(author, APPROVE, id=made["id"], v=made["version"])

    assert refusal(reply) == ("FORBIDDEN", "id", "self_approval")
    assert reply.data["campaignApprove"] is None
    assert await stored(made["id"]) == before
    assert await denials_since(tenant.id, seq) == [("update", "campaign", "self_approval", uuid.UUID(made["id"]), None)]
    assert [e.actor_id for e in await events_since(tenant.id, seq, outcome="denied")] == [tenant.staff_ids[author]]
    assert await writes_since(tenant, seq) == []


@pytest.mark.parametrize(("author", "approver"), [("department_head", "admin"), ("admin", "department_head"),
                                                  ("admin", "second_admin")])
async def test_a_colleague_who_may_start_it_approves_it(tenant: Tenant, services: Services, author: str,
                                                        approver: str) -> None:
    """The twin of the refusal above: the head's campaign approved by the admin, the admin's (to department A) by
    the department's head, and by another admin; recorded as a write of approved_by and approved_at."""
    await second_admin(tenant, services)
    made = ok(await tenant.call(author, CREATE, input=draft(departmentId=str(tenant.departments["A"].id))),
              "campaignCreate")
    seq = await mark(tenant.id)

    approved = ok(await tenant.call(approver, APPROVE, id=made["id"], v=made["version"]), "campaignApprove")

    me, campaign_id = tenant.staff_ids[approver], uuid.UUID(made["id"])
    assert approved["status"] == "DRAFT" and approved["version"] == made["version"] + 1
    assert approved["approvedBy"]["id"] == str(me) and approved["approvedAt"] is not None
    assert approved["author"]["id"] == str(tenant.staff_ids[author])
    row = await Campaign.get(id=campaign_id)
    assert (row.approved_by_id, row.approved_at is not None, row.author_id) == (me, True, tenant.staff_ids[author])
    assert await denials_since(tenant.id, seq) == []
    assert [(actor, action, kind, rid, sorted(fields.split(",")))
            for actor, action, kind, rid, fields in await writes_since(tenant, seq)] == [
        (me, "update", "campaign", campaign_id, ["approved_at", "approved_by"])]


async def test_who_approved_and_when_are_shown_null_until_then(tenant: Tenant) -> None:
    made = await head_draft(tenant)

    waiting = ok(await tenant.call("admin", SHOWN, id=made["id"]), "campaign")
    ok(await tenant.call("admin", APPROVE, id=made["id"]), "campaignApprove")
    shown = ok(await tenant.call("department_head", SHOWN, id=made["id"]), "campaign")

    head, admin = tenant.staff_ids["department_head"], tenant.staff_ids["admin"]
    assert (waiting["approvedBy"], waiting["approvedAt"]) == (None, None)
    assert waiting["author"]["id"] == str(head) and waiting["author"]["name"].startswith("department_head ")
    assert shown["approvedBy"]["id"] == str(admin) and shown["approvedBy"]["name"].startswith("admin ")
    assert shown["approvedAt"] is not None and shown["author"]["id"] == str(head)


# -- starting ------------------------------------------------------------------------------------------------------


async def test_a_campaign_is_started_only_once_approved(tenant: Tenant) -> None:
    """Before the approval the start is CONFLICT not_approved, nothing written and nothing queued (the preview stays
    open: the approver previews what they approve); after it, the author starts it and it is queued."""
    await patient(tenant)
    made = await head_draft(tenant)
    before, seq = await stored(made["id"]), await mark(tenant.id)

    early = await tenant.call("department_head", START, id=made["id"], v=made["version"])

    assert refusal(early) == ("CONFLICT", "id", "not_approved")
    assert await stored(made["id"]) == before
    await campaigns.advance()
    assert await Communication.filter(campaign_id=uuid.UUID(made["id"])).count() == 0
    assert await writes_since(tenant, seq) == []
    preview = ok(await tenant.call("admin", PREVIEW, purpose="CAMPAIGN",
                                   audience={"departmentId": str(tenant.departments["A"].id)}), "campaignPreview")
    assert preview["recipients"] == 1

    approved = ok(await tenant.call("admin", APPROVE, id=made["id"], v=made["version"]), "campaignApprove")
    stale = await tenant.call("department_head", START, id=made["id"], v=made["version"])  # read before approval
    started = ok(await tenant.call("department_head", START, id=made["id"], v=approved["version"]), "campaignStart")

    assert refusal(stale) == ("CONFLICT", "version", "stale_version")
    assert (started["status"], started["recipients"]) == ("SENDING", 1)
    await campaigns.advance()
    assert await Communication.filter(campaign_id=uuid.UUID(made["id"])).count() == 1


# -- who may approve -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("department", [None, "B"])
async def test_a_department_head_approves_only_within_their_departments(tenant: Tenant, department: str | None
                                                                        ) -> None:
    """As campaignStart refuses them: the admin's campaign to the whole institution, or to department B."""
    audience = {} if department is None else {"departmentId": str(tenant.departments[department].id)}
    made = ok(await tenant.call("admin", CREATE, input=draft(**audience)), "campaignCreate")
    before, seq = await stored(made["id"]), await mark(tenant.id)

    approve = await tenant.call("department_head", APPROVE, id=made["id"])
    start = await tenant.call("department_head", START, id=made["id"])

    assert [refusal(approve), refusal(start)] == [("FORBIDDEN", "id", None)] * 2
    assert await stored(made["id"]) == before
    assert [d[:4] for d in await denials_since(tenant.id, seq)] == [
        ("update", "campaign", "other_department", uuid.UUID(made["id"]))] * 2
    assert await writes_since(tenant, seq) == []


@pytest.mark.parametrize("role", ["front_desk", "nurse", "doctor", "support_agent", "compliance_officer", "finance"])
async def test_staff_without_the_right_do_not_approve(tenant: Tenant, role: str) -> None:
    made = await head_draft(tenant)
    before, seq = await stored(made["id"]), await mark(tenant.id)

    reply = await tenant.call(role, APPROVE, id=made["id"])

    assert reply.codes == ["FORBIDDEN"]
    assert await stored(made["id"]) == before
    assert [(d[0], d[1], d[2]) for d in await denials_since(tenant.id, seq)] == [("update", "campaign", "forbidden")]
    assert await writes_since(tenant, seq) == []


async def test_a_patient_and_a_partner_do_not_approve(tenant: Tenant) -> None:
    made = await head_draft(tenant)
    patient_user = await open_account(tenant)
    partnership = await make_partnership(tenant)
    before, seq = await stored(made["id"]), await mark(tenant.id)

    replies = [await patient_user.call(APPROVE, id=made["id"]), await partnership.call(APPROVE, id=made["id"])]

    assert [r.codes for r in replies] == [["FORBIDDEN"], ["FORBIDDEN"]]
    assert await stored(made["id"]) == before
    denied = await events_since(tenant.id, seq, outcome="denied")
    assert [(e.actor_kind, e.action, e.resource_type) for e in denied] == [
        ("patient", "update", "campaign"), ("partner", "update", "campaign")]
    assert await writes_since(tenant, seq) == []


async def test_another_institutions_campaign_looks_missing(tenant: Tenant, other_tenant: Tenant) -> None:
    made = ok(await other_tenant.call("department_head", CREATE, input=draft()), "campaignCreate")
    before = await stored(made["id"])

    reply = await tenant.call("admin", APPROVE, id=made["id"])

    assert reply.codes == ["NOT_FOUND"]
    assert await stored(made["id"]) == before


# -- what is approved ----------------------------------------------------------------------------------------------


async def test_a_campaign_approved_started_or_cancelled_is_not_approved_again(tenant: Tenant,
                                                                             services: Services) -> None:
    admin2 = await second_admin(tenant, services)
    approved = await head_draft(tenant)
    ok(await tenant.call("admin", APPROVE, id=approved["id"]), "campaignApprove")
    started = await head_draft(tenant)
    ok(await tenant.call("admin", APPROVE, id=started["id"]), "campaignApprove")
    ok(await tenant.call("department_head", START, id=started["id"]), "campaignStart")
    cancelled = await head_draft(tenant)
    ok(await tenant.call("department_head", CANCEL, id=cancelled["id"]), "campaignCancel")
    rows = [c["id"] for c in (approved, started, cancelled)]
    before, seq = [await stored(c) for c in rows], await mark(tenant.id)

    replies = [await tenant.call(who, APPROVE, id=c) for who in ("admin", admin2) for c in rows]

    assert [refusal(r) for r in replies] == [("CONFLICT", "id", "illegal_transition")] * 6
    assert [await stored(c) for c in rows] == before
    assert await writes_since(tenant, seq) == []


async def test_a_stale_version_approves_nothing(tenant: Tenant) -> None:
    made = await head_draft(tenant)
    before = await stored(made["id"])

    reply = await tenant.call("admin", APPROVE, id=made["id"], v=made["version"] + 1)

    assert refusal(reply) == ("CONFLICT", "version", "stale_version")
    assert await stored(made["id"]) == before


# -- races (PostgreSQL: row locks and concurrent writers) ----------------------------------------------------------


@pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent writers: PostgreSQL")
async def test_two_approvals_raced_approve_once(tenant: Tenant, services: Services,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Both read the draft unapproved; the first is held after its write, before its commit (holding the row), the
    second's write waits for it, then finds the version moved: CONFLICT, one approval and one record."""
    admin2 = await second_admin(tenant, services)
    made = await head_draft(tenant)
    seq = await mark(tenant.id)
    pause = locks.pause_before(monkeypatch, campaigns.writer, "append")

    async with locks.held(tenant.call("admin", APPROVE, id=made["id"], v=made["version"]), pause) as first:
        second = asyncio.ensure_future(tenant.call(admin2, APPROVE, id=made["id"], v=made["version"]))
        await locks.until_waiting([second])
    replies = [await first, await second]

    assert replies[0].errors == [] and refusal(replies[1]) == ("CONFLICT", "version", "stale_version")
    row = await Campaign.get(id=uuid.UUID(made["id"]))
    assert (row.approved_by_id, row.version) == (tenant.staff_ids["admin"], made["version"] + 1)
    assert [w[0] for w in await writes_since(tenant, seq)] == [tenant.staff_ids["admin"]]


@pytest.mark.skipif(BACKEND == "sqlite", reason="row locks and concurrent writers: PostgreSQL")
async def test_an_approval_and_a_cancel_raced_end_with_one_of_them(tenant: Tenant,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The approval holds the row after its write; the author's cancel, on the version both read, waits for it and
    then finds the version moved: CONFLICT, the campaign approved and still a draft."""
    made = await head_draft(tenant)
    pause = locks.pause_before(monkeypatch, campaigns.writer, "append")

    async with locks.held(tenant.call("admin", APPROVE, id=made["id"], v=made["version"]), pause) as approving:
        cancel = asyncio.ensure_future(tenant.call("department_head", CANCEL, id=made["id"], v=made["version"]))
        await locks.until_waiting([cancel])
    replies = [await approving, await cancel]

    assert replies[0].errors == [] and refusal(replies[1]) == ("CONFLICT", "version", "stale_version")
    row = await Campaign.get(id=uuid.UUID(made["id"]))
    assert (row.status, row.approved_by_id) == ("draft", tenant.staff_ids["admin"])

