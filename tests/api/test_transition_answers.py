"""A change answers the record as stored (found in review): carePlanTransition and visitTransition answered the
old updatedAt while the compare-and-set stored the change's time, and message templates and messaging settings
never moved theirs (a query set's update skips auto_now)."""

from __future__ import annotations

import asyncio

from tests.api.test_care_plans import a_plan
from tests.api.test_visits import a_visit
from tests.factories import Tenant, make_patient

PLAN = "id status version updatedAt"
PLAN_MOVE = f"""mutation($id: ID!, $to: CarePlanStatus!, $version: Int) {{
  carePlanTransition(id: $id, to: $to, version: $version) {{ {PLAN} }} }}"""
PLAN_READ = f"query($id: ID!) {{ carePlan(id: $id) {{ {PLAN} }} }}"
VISIT = "id status version arrivedAt updatedAt"
VISIT_MOVE = f"""mutation($id: ID!, $to: VisitStatus!, $version: Int) {{
  visitTransition(id: $id, to: $to, version: $version) {{ {VISIT} }} }}"""
VISIT_READ = f"query($id: ID!) {{ visit(id: $id) {{ {VISIT} }} }}"


async def test_a_moved_care_plan_answers_the_updated_at_stored(tenant: Tenant) -> None:
    plan = await a_plan(tenant, await make_patient(tenant))
    await asyncio.sleep(0.01)  # the move's time differs from the creation's

    moved = await tenant.call("doctor", PLAN_MOVE, id=plan["id"], to="COMPLETED", version=1)

    assert moved.errors == []
    stored = (await tenant.call("doctor", PLAN_READ, id=plan["id"])).data["carePlan"]
    assert moved.data["carePlanTransition"] == stored


async def test_a_moved_visit_answers_the_updated_at_stored(tenant: Tenant) -> None:
    visit = await a_visit(tenant, await make_patient(tenant))
    await asyncio.sleep(0.01)

    moved = await tenant.call("nurse", VISIT_MOVE, id=visit["id"], to="ARRIVED", version=1)

    assert moved.errors == []
    stored = (await tenant.call("nurse", VISIT_READ, id=visit["id"])).data["visit"]
    assert moved.data["visitTransition"] == stored


async def test_a_template_written_again_moves_its_updated_at(tenant: Tenant) -> None:
    """A query set's update skips Tortoise's auto_now: a changed template kept its first time (found in review)."""
    from tests.api.test_message_templates import SET, a_template
    first = (await tenant.call("admin", SET, input=a_template())).data["messageTemplateSet"]
    await asyncio.sleep(0.01)
    again = await tenant.call("admin", SET, input=a_template(body="{patient_name}: see you soon."), version=1)
    assert again.errors == [], again.errors
    second = again.data["messageTemplateSet"]
    assert second["version"] == 2 and second["updatedAt"] > first["updatedAt"]


async def test_messaging_settings_changed_move_their_updated_at(tenant: Tenant) -> None:
    from models import MessagingSettings
    update = "mutation($input: MessagingSettingsInput!) { messagingSettingsUpdate(input: $input) { version } }"
    assert (await tenant.call("admin", update, input={"quietStart": "21:00", "quietEnd": "08:00"})).errors == []
    created = (await MessagingSettings.get(institution_id=tenant.id)).updated_at
    await asyncio.sleep(0.01)
    assert (await tenant.call("admin", update, input={"quietStart": "22:00", "quietEnd": "08:00"})).errors == []
    assert (await MessagingSettings.get(institution_id=tenant.id)).updated_at > created
