"""Campaigns through the API: a preview that counts what the consent gate lets through (counts only), a draft
started by a department head for their own departments or by an admin for the institution, queued in batches
each in its own transaction, delivered with the campaign's own text, cancelled with its unsent messages; and
every refusal leaving nothing written but its record."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from core.messages import Outgoing
from models import Campaign, Communication, Patient
from models.fields import tags_to_db
from resolvers import campaign as campaigns
from resolvers import communication
from resolvers.context import Services
from tests.api import test_visits as visits
from tests.campaigns import approve, second_admin
from tests.factories import Tenant, make_patient
from tests.patients import denials_since, mark

PREVIEW = """query($purpose: CampaignPurpose!, $audience: CampaignAudienceInput) {
  campaignPreview(purpose: $purpose, audience: $audience) { audience recipients refused { reason count } } }"""
FIELDS = """id name purpose status recipients queued version departmentIds segment
  refused { reason count } progress { waiting sent delivered failed refused { reason count } }"""
CREATE = f"mutation($input: CampaignCreateInput!) {{ campaignCreate(input: $input) {{ {FIELDS} }} }}"
START = f"mutation($id: ID!, $v: Int) {{ campaignStart(id: $id, version: $v) {{ {FIELDS} }} }}"
CANCEL = f"mutation($id: ID!, $v: Int) {{ campaignCancel(id: $id, version: $v) {{ {FIELDS} }} }}"
ONE = f"query($id: ID!) {{ campaign(id: $id) {{ {FIELDS} }} }}"
LIST = """query($first: Int, $after: String) { campaigns(first: $first, after: $after) {
  nodes { id progress { sent } } pageInfo { hasNextPage endCursor } } }"""
BODY = "{patient_name}，{institution_name}春季健康讲座本周六开讲。退订：{unsubscribe_url}"


def ok(reply: Any, root: str) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data[root]


async def patient(tenant: Tenant, department: str = "A", *, consent: bool = True,
                  purposes: tuple[str, ...] = ("CARE", "CAMPAIGN"), **more: Any) -> uuid.UUID:
    return await make_patient(tenant, departmentId=str(tenant.departments[department].id), contactConsent=consent,
                              contactChannels=["EMAIL"], email=f"p{uuid.uuid4().hex[:8]}@example.org",
                              contactPurposes=list(purposes), **more)


def draft(**audience: Any) -> dict[str, Any]:
    return {"name": "Spring lecture", "purpose": "CAMPAIGN", "subject": "Spring lecture", "body": BODY,
            "audience": audience}


class Collect:
    def __init__(self) -> None:
        self.sent: list[Outgoing] = []

    async def send(self, message: Outgoing) -> str | None:
        self.sent.append(message)
        return None


async def rows_of(campaign_id: str) -> list[Communication]:
    return await Communication.filter(campaign_id=uuid.UUID(campaign_id)).order_by("patient_id")


# -- preview ----------------------------------------------------------------------------------------------


async def test_the_preview_counts_who_the_gate_lets_through_and_why_not_the_others(tenant: Tenant) -> None:
    await patient(tenant)
    await patient(tenant)
    await patient(tenant, consent=False)
    await patient(tenant, purposes=("CARE",))
    await patient(tenant, "B")

    head = ok(await tenant.call("department_head", PREVIEW, purpose="CAMPAIGN"), "campaignPreview")
    admin = ok(await tenant.call("admin", PREVIEW, purpose="CAMPAIGN"), "campaignPreview")

    assert head == {"audience": 4, "recipients": 2, "refused": [
        {"reason": "NO_CONSENT", "count": 1}, {"reason": "PURPOSE_NOT_CONSENTED", "count": 1}]}
    assert (admin["audience"], admin["recipients"]) == (5, 3)  # the whole institution


async def test_a_segment_narrows_the_audience(tenant: Tenant) -> None:
    await patient(tenant, segments=["VIP"])
    await patient(tenant)

    found = ok(await tenant.call("admin", PREVIEW, purpose="CAMPAIGN", audience={"segment": "VIP"}),
               "campaignPreview")

    assert (found["audience"], found["recipients"]) == (1, 1)


# -- sending ----------------------------------------------------------------------------------------------


async def test_a_started_campaign_is_queued_in_batches_and_sent_with_its_own_text(
        tenant: Tenant, services: Services) -> None:
    reached = [await patient(tenant) for _ in range(3)]
    refused = await patient(tenant, consent=False)
    made = ok(await tenant.call("department_head", CREATE, input=draft()), "campaignCreate")
    assert (made["status"], made["departmentIds"]) == ("DRAFT", [str(tenant.departments["A"].id)])

    version = await approve(tenant, made["id"], "admin")  # four eyes: someone other than the head who wrote it
    started_at = datetime.now(UTC)
    started = ok(await tenant.call("department_head", START, id=made["id"], v=version), "campaignStart")
    assert (started["status"], started["recipients"]) == ("SENDING", 4)

    await campaigns.advance(batch=2)  # one batch, its own transaction: progress is visible
    assert len(await rows_of(made["id"])) == 2
    halfway = ok(await tenant.call("department_head", ONE, id=made["id"]), "campaign")
    assert halfway["status"] == "SENDING" and halfway["queued"] + sum(r["count"] for r in halfway["refused"]) == 2
    await campaigns.advance(batch=2)
    await campaigns.advance(batch=2)
    assert len(await rows_of(made["id"])) == 4
    done = ok(await tenant.call("department_head", ONE, id=made["id"]), "campaign")
    assert (done["status"], done["queued"], done["refused"]) == (
        "COMPLETED", 3, [{"reason": "NO_CONSENT", "count": 1}])

    collect = Collect()
    # Sent when they fall due: now, or the end of the quiet hours when the test runs in them (the outbox moved
    # them there), so that the test does not depend on the hour it runs at.
    queued = [r for r in await rows_of(made["id"]) if r.status == "queued"]
    assert len(queued) == 3 and all(r.due_at >= started_at for r in queued)
    await communication.deliver_due(services, {"email": collect}, now=max(r.due_at for r in queued))
    mine = [m for m in collect.sent if m.institution_id == tenant.id]
    assert sorted(m.address for m in mine) == sorted(
        [str((await Patient.get(id=pid)).email) for pid in reached])
    assert all("春季健康讲座" in m.body and "/unsubscribe?token=" in m.body for m in mine)
    assert {r.patient_id for r in await rows_of(made["id"]) if r.status == "refused"} == {refused}
    progress = ok(await tenant.call("admin", ONE, id=made["id"]), "campaign")["progress"]
    assert (progress["sent"], progress["waiting"], progress["refused"]) == (
        3, 0, [{"reason": "NO_CONSENT", "count": 1}])


async def test_cancelling_stops_the_queue_and_cancels_unsent_messages(tenant: Tenant, services: Services) -> None:
    for _ in range(3):
        await patient(tenant)
    made = ok(await tenant.call("admin", CREATE, input=draft()), "campaignCreate")
    await approve(tenant, made["id"], await second_admin(tenant, services))
    ok(await tenant.call("admin", START, id=made["id"]), "campaignStart")
    await campaigns.advance(batch=2)

    cancelled = ok(await tenant.call("admin", CANCEL, id=made["id"]), "campaignCancel")

    assert cancelled["status"] == "CANCELLED"
    await campaigns.advance(batch=2)
    assert len(await rows_of(made["id"])) == 2
    assert {r.status for r in await rows_of(made["id"])} == {"cancelled"}
    again = await tenant.call("admin", CANCEL, id=made["id"])
    assert again.codes == ["CONFLICT"]


async def test_a_stale_version_does_not_start_a_campaign(tenant: Tenant, services: Services) -> None:
    made = ok(await tenant.call("admin", CREATE, input=draft()), "campaignCreate")
    version = await approve(tenant, made["id"], await second_admin(tenant, services))

    reply = await tenant.call("admin", START, id=made["id"], v=version + 1)

    assert reply.codes == ["CONFLICT"]
    assert (await Campaign.get(id=made["id"])).status == "draft"


async def test_campaigns_are_listed_newest_first_at_a_fixed_cost(tenant: Tenant) -> None:
    ids = [ok(await tenant.call("admin", CREATE, input=draft()), "campaignCreate")["id"] for _ in range(3)]

    first = ok(await tenant.call("department_head", LIST, first=2), "campaigns")
    rest = ok(await tenant.call("department_head", LIST, first=2, after=first["pageInfo"]["endCursor"]), "campaigns")

    assert [n["id"] for n in first["nodes"] + rest["nodes"]] == ids[::-1]


# -- refusals ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["front_desk", "nurse", "doctor", "support_agent", "compliance_officer"])
async def test_roles_without_campaigns_are_refused_and_nothing_is_written(tenant: Tenant, role: str) -> None:
    await patient(tenant)
    before = await mark(tenant.id)

    replies = [await tenant.call(role, CREATE, input=draft()), await tenant.call(role, PREVIEW, purpose="CAMPAIGN")]

    assert [r.codes for r in replies] == [["FORBIDDEN"], ["FORBIDDEN"]]
    assert await Campaign.filter(institution_id=tenant.id).count() == 0
    assert [d[:3] for d in await denials_since(tenant.id, before)] == [
        ("create", "campaign", "forbidden"), ("read", "campaign", "forbidden")]


async def test_a_department_head_addresses_only_their_own_departments(tenant: Tenant) -> None:
    before = await mark(tenant.id)

    reply = await tenant.call("department_head", CREATE,
                              input=draft(departmentId=str(tenant.departments["B"].id)))

    assert reply.codes == ["FORBIDDEN"]
    assert await Campaign.filter(institution_id=tenant.id).count() == 0
    assert [d[:3] for d in await denials_since(tenant.id, before)] == [("create", "campaign", "other_department")]


async def test_a_department_head_does_not_start_an_institution_wide_campaign(tenant: Tenant) -> None:
    made = ok(await tenant.call("admin", CREATE, input=draft()), "campaignCreate")
    before = await mark(tenant.id)

    reply = await tenant.call("department_head", START, id=made["id"])

    assert reply.codes == ["FORBIDDEN"]
    assert (await Campaign.get(id=made["id"])).status == "draft"
    assert [d[:3] for d in await denials_since(tenant.id, before)] == [("update", "campaign", "other_department")]


async def test_another_institutions_campaign_looks_missing(tenant: Tenant, other_tenant: Tenant) -> None:
    made = ok(await other_tenant.call("admin", CREATE, input=draft()), "campaignCreate")

    for query in (ONE, START, CANCEL):
        reply = await tenant.call("admin", query, id=made["id"])
        assert reply.codes == ["NOT_FOUND"]
    assert (await Campaign.get(id=made["id"])).status == "draft"


@pytest.mark.parametrize(("body", "field"), [
    ("{patient_name}, spring lecture on Saturday.", "input.body"),  # no way out
    ("{patient_name}: your {diagnosis} lecture. {unsubscribe_url}", "input.body"),  # clinical detail
    ("{patient_name!r} {unsubscribe_url}", "input.body"),
    ("", "input.body"),
])
async def test_a_campaign_text_is_checked_like_a_template(tenant: Tenant, body: str, field: str) -> None:
    reply = await tenant.call("admin", CREATE, input={**draft(), "body": body})

    assert reply.codes == ["BAD_USER_INPUT"]
    assert reply.errors[0]["extensions"]["field"] == field
    assert await Campaign.filter(institution_id=tenant.id).count() == 0


async def test_an_unknown_department_in_the_audience_is_bad_input(tenant: Tenant) -> None:
    reply = await tenant.call("admin", CREATE, input=draft(departmentId=str(uuid.uuid4())))

    assert reply.codes == ["BAD_USER_INPUT"]


async def test_queued_rows_name_the_campaign_and_its_patients_only(tenant: Tenant, services: Services) -> None:
    """Keys per campaign and patient: a campaign queued twice (two workers) schedules each patient once."""
    pid = await patient(tenant)
    made = ok(await tenant.call("admin", CREATE, input=draft()), "campaignCreate")
    await approve(tenant, made["id"], await second_admin(tenant, services))
    ok(await tenant.call("admin", START, id=made["id"]), "campaignStart")
    row = await Campaign.get(id=made["id"])

    await campaigns.advance()
    await campaigns._queue_batch(row, datetime.now(UTC), campaigns.BATCH)  # a stale worker's copy: a no-op

    assert [(r.key, r.patient_id) for r in await rows_of(made["id"])] == [(f"campaign:{made['id']}:{pid}", pid)]
    assert tags_to_db(["campaign", "care"]) == (await Patient.get(id=pid)).contact_purposes


async def test_a_segment_and_a_catalogue_cohort_are_named_by_their_enums(tenant: Tenant) -> None:
    assert (await tenant.call("admin", visits.CATALOGUE, code="IMPLANT")).errors == []
    coded_vip, coded = await patient(tenant, segments=["VIP"]), await patient(tenant)
    await patient(tenant, segments=["VIP"])  # in the segment, without the code
    for pid in (coded_vip, coded):
        vid = (await visits.a_visit(tenant, pid, role="nurse"))["id"]
        ok(await tenant.call("nurse", visits.ADD_CODE, id=vid, input={"kind": "PROCEDURE", "code": "IMPLANT"}),
           "visitCodeAdd")
    audience = {"segment": "VIP", "code": "IMPLANT", "codeSystem": "SERVICE"}

    preview = ok(await tenant.call("admin", PREVIEW, purpose="CAMPAIGN", audience=audience), "campaignPreview")
    created = ok(await tenant.call("admin", CREATE, input=draft(**audience)), "campaignCreate")

    assert (preview["audience"], preview["recipients"]) == (1, 1)  # the VIP with the code only
    assert created["segment"] == "VIP"
    assert ok(await tenant.call("admin", ONE, id=created["id"]), "campaign")["segment"] == "VIP"
    before = await Campaign.filter(institution_id=tenant.id).count()
    lower = await tenant.call("admin", CREATE, input=draft(segment="VIP", code="IMPLANT", codeSystem="service"))
    assert lower.codes == ["BAD_USER_INPUT"]
    assert lower.errors[0]["extensions"]["field"] == "input.audience.codeSystem"
    assert await Campaign.filter(institution_id=tenant.id).count() == before
