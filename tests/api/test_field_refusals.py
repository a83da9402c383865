"""Every field-level FORBIDDEN says why, as a portal can branch on it (docs/architecture.md, Field-level FORBIDDEN):
reason ``field_class`` with ``fieldClass`` for a class of the patient's file (tests/api/test_permissions.py),
``permission`` with the ``permission`` (``object:action``) missing for any other right (a file's sections, its
contacts, commercial terms, clauses, free-text answers, a partner's clients), and for a partner's token the
``scope`` it lacks; ``partner_view`` for what a partner's view of a contract leaves out, ``staff_only`` for what
only staff read. Each refusal is noted on the trail; each has its allowed twin, the field there when permitted.
Found in review: only the classes of the file said why, the other refusals had their path only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from resolvers.context import Services
from tests.api.test_appointments import BOOK, book, booking, make_schedule
from tests.api.test_patient_page import PAGE, furnished
from tests.api.test_questionnaire_responses import TEXTS, answered
from tests.api.test_schedules import EXCEPTION_ADD, ONE, _exception, a_schedule
from tests.api.test_service_catalogue import STANDARD_AND_PRICES, an_item, priced
from tests.contracts import active_contract, item_input, make_item, today
from tests.factories import Response, Tenant, make_patient
from tests.partners import ALL_SCOPES, make_client, make_partner, make_partnership
from tests.patients import events_since, make_contact, mark, open_account
from tests.surveys import questionnaire

MESSAGE = "Not allowed to read this field."


def refusals(reply: Response) -> dict[str, dict[str, Any]]:
    """Each FORBIDDEN by its path (dotted, indices kept), with its extensions; asserts the one message."""
    assert set(reply.codes) == {"FORBIDDEN"}, reply.errors
    assert {error["message"] for error in reply.errors} == {MESSAGE}
    return {".".join(map(str, error["path"])): error["extensions"] for error in reply.errors}


def by_permission(permission: str, scope: str | None = None) -> dict[str, Any]:
    return {"code": "FORBIDDEN", "reason": "permission", "permission": permission,
            **({"scope": scope} if scope else {})}


async def noted_refusals(tenant: Tenant, seq: int) -> list[tuple[str, str]]:
    """The refusals on the trail since ``seq``: what was refused, why (sorted)."""
    return sorted((event.resource_type, event.reason)
                  for event in await events_since(tenant.id, seq, outcome="denied"))


# -- a file's sections and contacts -------------------------------------------------------------------------------


async def test_a_section_refused_names_the_permission_missing(tenant: Tenant) -> None:
    pid = await furnished(tenant, 1)
    seq = await mark(tenant.id)
    desk = await tenant.call("front_desk", PAGE, id=str(pid))
    found = refusals(desk)
    assert found["patient.carePlans"] == by_permission("care_plan:read")
    assert found["patient.openFollowUpTasks"] == by_permission("follow_up_task:read")
    assert ("care_plan", "forbidden_field") in await noted_refusals(tenant, seq)
    assert ("follow_up_task", "forbidden_field") in await noted_refusals(tenant, seq)
    nurse = await tenant.call("nurse", PAGE, id=str(pid))
    assert nurse.errors == [] and len(nurse.data["patient"]["carePlans"]) == 1


async def test_a_partner_token_without_a_sections_scope_is_told_the_scope(tenant: Tenant) -> None:
    page = "query($id: ID!) { patient(id: $id) { id upcomingAppointments { id } } }"
    narrow = await make_partnership(tenant, ["patient.identity:read"])
    await book(tenant, await make_schedule(tenant), narrow.granted)
    reply = await narrow.call(page, id=str(narrow.granted))
    assert refusals(reply) == {"patient.upcomingAppointments": by_permission("appointment:read", "appointment:read")}
    assert reply.data == {"patient": {"id": str(narrow.granted), "upcomingAppointments": None}}
    wide = await make_partnership(tenant, ["patient.identity:read", "appointment:read", "appointment:create"])
    booked = await wide.call(BOOK, input=booking(await make_schedule(tenant), wide.granted))  # it sees its own
    assert booked.errors == [], booked.errors
    allowed = await wide.call(page, id=str(wide.granted))
    assert allowed.errors == [] and len(allowed.data["patient"]["upcomingAppointments"]) == 1


async def test_contacts_refused_name_the_permission_and_a_partners_scope(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    await make_contact(tenant, pid, "Li Na")
    query = "query($id: ID!) { patient(id: $id) { id contacts { name } } }"
    seq = await mark(tenant.id)
    officer = await tenant.call("compliance_officer", query, id=str(pid))
    assert refusals(officer) == {"patient.contacts": by_permission("contact:read")}
    assert await noted_refusals(tenant, seq) == [("contact", "forbidden_field")]
    desk = await tenant.call("front_desk", query, id=str(pid))
    assert desk.errors == [] and desk.data["patient"]["contacts"] == [{"name": "Li Na"}]
    narrow = await make_partnership(tenant, [s for s in ALL_SCOPES if s != "contact:read"])
    refused = await narrow.call(query, id=str(narrow.granted))
    assert refusals(refused) == {"patient.contacts": by_permission("contact:read", "contact:read")}
    wide = await make_partnership(tenant, ALL_SCOPES)
    allowed = await wide.call(query, id=str(wide.granted))
    assert allowed.errors == [] and allowed.data["patient"]["contacts"] == [{"name": wide.contact_name}]


# -- commercial terms, clauses and a partner's view of a contract ------------------------------------------------


async def test_a_service_items_terms_refused_name_the_permission(tenant: Tenant) -> None:
    item = await an_item(tenant)
    await priced(tenant, item["id"], "100.00", "2026-01-01")
    desk = await tenant.call("front_desk", STANDARD_AND_PRICES, id=item["id"])
    assert refusals(desk) == {"serviceItem.priceOn": by_permission("contract.terms:read"),
                              "serviceItem.prices": by_permission("contract.terms:read")}
    finance = await tenant.call("finance", STANDARD_AND_PRICES, id=item["id"])
    assert finance.errors == [] and finance.data["serviceItem"]["priceOn"] == {"number": 1}


CONTRACT = """query($id: ID!) { contract(id: $id) { id statusReason versions { number changeSummary clauses
  periodTotal { amount } } } }"""


async def test_a_contracts_terms_and_clauses_refused_name_their_permissions(tenant: Tenant,
                                                                            services: Services) -> None:
    made = await active_contract(tenant, services, clauses="Diabetic diet")
    seq = await mark(tenant.id)
    desk = await tenant.call("front_desk", CONTRACT, id=made["id"])
    assert refusals(desk) == {"contract.versions.0.clauses": by_permission("contract.clauses:read"),
                              "contract.versions.0.periodTotal": by_permission("contract.terms:read")}
    assert await noted_refusals(tenant, seq) == [("contract", "forbidden_field")]
    finance = await tenant.call("finance", CONTRACT, id=made["id"])
    assert finance.errors == []
    assert finance.data["contract"]["versions"][0]["clauses"] == "Diabetic diet"
    assert finance.data["contract"]["versions"][0]["periodTotal"] == {"amount": "480.00"}


async def test_what_a_partners_view_of_a_contract_leaves_out_says_so(tenant: Tenant, services: Services) -> None:
    partnership = await make_partnership(tenant, [*ALL_SCOPES, "contract:read"])
    delivered = await make_item(tenant)
    made = await active_contract(tenant, services, patient_id=partnership.granted,
                                 items=[item_input(delivered, by_partner=True)],
                                 partnerId=str(partnership.partner_id), clauses="Dementia: accompany always")
    amended = await tenant.call("finance", """mutation($id: ID!, $v: Int!, $input: ContractAmendInput!) {
      contractAmend(contractId: $id, expectedVersion: $v, input: $input) { id } }""", id=made["id"],
                                v=made["version"], input={"effectiveOn": (today() + timedelta(days=7)).isoformat(),
                                                          "changeSummary": "Night visits"})
    assert amended.errors == [], amended.errors
    seen = await partnership.call(CONTRACT, id=made["id"])
    partner_view = {"code": "FORBIDDEN", "reason": "partner_view"}
    assert refusals(seen) == {
        "contract.statusReason": partner_view,
        **{f"contract.versions.{n}.{name}": partner_view for n in (0, 1) for name in ("changeSummary", "periodTotal")},
        **{f"contract.versions.{n}.clauses": by_permission("contract.clauses:read") for n in (0, 1)}}
    finance = await tenant.call("finance", CONTRACT, id=made["id"])
    assert finance.errors == [] and [v["changeSummary"] for v in finance.data["contract"]["versions"]] == [
        None, "Night visits"]


async def test_a_reports_revenue_refused_names_the_permission(tenant: Tenant) -> None:
    report = """query($from: String!, $to: String!, $dep: ID) {
      contractReport(from: $from, to: $to, departmentId: $dep) { months { month revenue { amount } } } }"""
    month = today().strftime("%Y-%m")
    span = {"from": month, "to": month, "dep": str(tenant.departments["A"].id)}
    head = await tenant.call("department_head", report, **span)
    assert refusals(head) == {"contractReport.months.0.revenue": by_permission("contract.terms:read")}
    admin = await tenant.call("admin", report, **span)
    assert admin.errors == [] and admin.data["contractReport"]["months"] == [{"month": month, "revenue": []}]


# -- free-text answers, a schedule's exceptions, a partner's clients ----------------------------------------------


async def test_free_text_answers_refused_name_the_permission(tenant: Tenant, services: Services) -> None:
    q = await questionnaire(tenant)
    await answered(tenant, services, q)
    seq = await mark(tenant.id)
    admin = await tenant.call("admin", TEXTS, q=str(q.id))
    [(path, extensions)] = refusals(admin).items()
    assert path.endswith(".text") and extensions == by_permission("questionnaire_response.text:read")
    assert await noted_refusals(tenant, seq) == [("questionnaire_response", "forbidden_field")]
    head = await tenant.call("department_head", TEXTS, q=str(q.id))
    assert head.errors == [] and "Friendly nurses, my gums bled a little" in str(head.data)


async def test_an_exceptions_reason_refused_to_patients_and_partners_is_staff_only(tenant: Tenant) -> None:
    created = await a_schedule(tenant)
    week_on = today() + timedelta(days=7)  # still to come: a past exception is not shown outside the staff
    added = await tenant.call("admin", EXCEPTION_ADD, id=created["id"], input=_exception(
        reason="Personal", startsAt=f"{week_on}T09:00:00+08:00", endsAt=f"{week_on}T10:00:00+08:00"))
    assert added.errors == [], added.errors
    staff_only = {"code": "FORBIDDEN", "reason": "staff_only"}  # no `field`: the path is the place
    patient = await open_account(tenant)
    assert refusals(await patient.call(ONE, id=created["id"])) == {"schedule.exceptions.0.reason": staff_only}
    partnership = await make_partnership(tenant, ["patient.identity:read", "schedule:read"])
    assert refusals(await partnership.call(ONE, id=created["id"])) == {"schedule.exceptions.0.reason": staff_only}
    desk = await tenant.call("front_desk", ONE, id=created["id"])
    assert desk.errors == [] and desk.data["schedule"]["exceptions"][0]["reason"] == "Personal"


async def test_a_partners_clients_refused_name_the_permission(tenant: Tenant) -> None:
    partner_id = await make_partner(tenant)
    await make_client(tenant, partner_id)
    query = "{ partners { nodes { id clients { id } } } }"
    desk = await tenant.call("front_desk", query)
    assert refusals(desk) == {"partners.nodes.0.clients": by_permission("partner:update")}
    admin = await tenant.call("admin", query)
    assert admin.errors == [] and len(admin.data["partners"]["nodes"][0]["clients"]) == 1
