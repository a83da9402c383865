"""totalCount on every connection, for the portals' pagination (found in review: 8 of the 33 connections had it).
Each list is read by two callers whose reach differs (another role, another institution, another patient, another
partner): the totalCount of the first page is the number of items its pages hold, walked two at a time, and
never one the caller may not see (a patient's list out of reach is NOT_FOUND, not a count); and a page costs the
same SQL statements whatever its size, one more when totalCount is selected (none more for the lists cut from what
a page loads anyway: message templates, a ticket's timeline, an item's prices)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from models import SurveyInvitation, SurveySettings, SurveyTrigger
from resolvers.context import Services
from tests import surveys
from tests.api.test_campaigns import CREATE as CAMPAIGN
from tests.api.test_campaigns import draft
from tests.api.test_flags import raise_flag
from tests.api.test_follow_up_rules import a_rule
from tests.api.test_nested_list_costs import tickets_with_replies
from tests.api.test_paged_lists import read_file, readers
from tests.api.test_questionnaire_responses import answered
from tests.api.test_service_catalogue import an_item, priced
from tests.api.test_survey_family import family_invited
from tests.api.test_survey_review import BY_LINK_ANSWER
from tests.conftest import SqlCounter
from tests.factories import Response, Tenant, gql, make_patient
from tests.partners import ALL_SCOPES, OWN_LOG, consent_and_grant, make_partnership
from tests.patients import open_account

PAGE = "totalCount pageInfo { hasNextPage endCursor }"
PERIOD = {"f": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
          "t": (datetime.now(UTC) + timedelta(days=1)).isoformat()}


def listing(root: str, args: str = "", params: str = "", node: str = "__typename") -> str:
    """A query of one root connection: a page of $n after $after, with its totalCount."""
    return (f"query($n: Int!, $after: String{params}) {{ {root}(first: $n, after: $after{args}) {{ {PAGE} "
            f"nodes {{ {node} }} }} }}")


@dataclass
class Reader:
    """One caller reading one list: how it sends a query, and the list's arguments."""

    call: Callable[..., Awaitable[Response]]  # (query, **variables)
    variables: dict[str, Any] = field(default_factory=dict)


def staff(tenant: Tenant, role: str, **variables: Any) -> Reader:
    return Reader(lambda query, **more: tenant.call(role, query, **more), variables)


def token(tenant: Tenant, bearer: str, **variables: Any) -> Reader:
    return Reader(lambda query, **more: gql(tenant.client, query, more, bearer), variables)


def ok(reply: Response) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data


def dig(data: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        data = data[name]
    return data


async def walk(reader: Reader, query: str, path: tuple[str, ...], size: int = 2) -> tuple[list[int], int]:
    """Every page, ``size`` items at a time: each page's totalCount, and how many items the pages held."""
    totals, held, after = [], 0, None
    while True:
        page = dig(ok(await reader.call(query, n=size, after=after, **reader.variables)), path)
        totals.append(page["totalCount"])
        held += len(page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            return totals, held
        assert len(page["nodes"]) == size, page
        after = page["pageInfo"]["endCursor"]


async def cost(sql_counter: SqlCounter, reader: Reader, query: str, path: tuple[str, ...], n: int) -> int:
    start = len(sql_counter.statements)
    page = dig(ok(await reader.call(query, n=n, after=None, **reader.variables)), path)
    assert len(page["nodes"]) == n, (n, page)
    return len(sql_counter.statements) - start


async def counts(sql_counter: SqlCounter, query: str, path: tuple[str, ...], readers_: list[Reader], *,
                 extra: int = 1, grows: bool = False) -> list[int]:
    """Each reader's totalCount, checked against its pages and its cost; ``grows``: a list that grows at its top as
    it is read (the trail: reading it is recorded), whose later pages count the newer items they do not show."""
    found = []
    for reader in readers_:
        totals, held = await walk(reader, query, path)
        assert totals[0] == held > 0, (path, totals, held)
        assert totals == sorted(totals) if grows else set(totals) == {held}, (path, totals)
        found.append(held)
        plain = query.replace(" totalCount", "")
        await cost(sql_counter, reader, query, path, 1)  # anything made once per process or institution, made
        one = await cost(sql_counter, reader, query, path, 1)
        many = await cost(sql_counter, reader, query, path, min(held, 5))
        assert one == many == await cost(sql_counter, reader, plain, path, 1) + extra, (path, one, many, extra)
    assert len(set(found)) == len(found), (path, found)  # the readers' reaches differ, so do their counts
    return found


async def out_of_reach(reader: Reader, query: str, root: str) -> None:
    """A patient's list out of the caller's reach: NOT_FOUND, nothing counted."""
    reply = await reader.call(query, n=5, after=None, **reader.variables)
    assert reply.codes == ["NOT_FOUND"] and reply.data in ({root: None}, None), reply.body


# -- lists of the institution: each institution counts its own ------------------------------------------------------


async def test_the_institutions_own_lists(tenant: Tenant, other_tenant: Tenant, sql_counter: SqlCounter) -> None:
    for place, n in ((tenant, 3), (other_tenant, 1)):
        for i in range(n):
            ok(await place.call("admin", "mutation($n: String!) { departmentCreate(name: $n) { id } }", n=f"Ward {i}"))
            await an_item(place, code=f"C-{i:02}")
            ok(await place.call("admin", "mutation($n: String!) { partnerCreate(name: $n) { id } }", n=f"P {i}"))
            ok(await place.call("admin", CAMPAIGN, input=draft()))
            await a_rule(place)
            ok(await place.call("admin", """mutation($input: ScheduleCreateInput!) { scheduleCreate(input: $input)
              { id } }""", input={"name": f"Chair {i}", "kind": "RESOURCE",
                                  "departmentId": str(place.departments["A"].id), "slotMinutes": 30, "capacity": 1,
                                  "week": [{"weekday": 1, "sessions": [{"start": "08:00", "end": "12:00"}]}]}))
            q = await surveys.questionnaire(place)
            await surveys.trigger(place, q)
        retired = await an_item(place, code="Z-RETIRED")  # the catalogue lists active items by default
        ok(await place.call("admin", "mutation($id: ID!) { serviceItemSetActive(id: $id, active: false) { id } }",
                            id=retired["id"]))
    ok(await tenant.call("admin", """mutation($input: MessageTemplateInput!) { messageTemplateSet(input: $input)
      { version } }""", input={"cause": "APPOINTMENT_REMINDER", "channel": "SMS", "language": "EN",
                               "body": "See you {date}"}))
    cases = [
        ("departmentsConnection", "nurse", "admin"),
        ("serviceItemsConnection", "front_desk", "finance"),
        ("partners", "admin", "compliance_officer"),
        ("campaigns", "department_head", "admin"),
        ("followUpRules", "nurse", "admin"),
        ("schedules", "front_desk", "admin"),
        ("questionnaires", "nurse", "admin"),
        ("surveyTriggers", "department_head", "admin"),
        ("messageTemplates", "admin", "department_head"),
    ]
    for root, here, there in cases:
        extra = 0 if root == "messageTemplates" else 1  # the templates in force are listed from one statement
        await counts(sql_counter, listing(root), (root,), [staff(tenant, here), staff(other_tenant, there)],
                     extra=extra)
    # an argument narrows the count as it narrows the pages
    query = listing("serviceItemsConnection", ", includeRetired: true")
    assert await counts(sql_counter, query, ("serviceItemsConnection",),
                        [staff(tenant, "nurse"), staff(other_tenant, "nurse")]) == [4, 2]


async def test_an_items_prices_are_counted_with_the_page_of_items(tenant: Tenant, other_tenant: Tenant,
                                                                  sql_counter: SqlCounter) -> None:
    """A nested connection: counted from the versions a page of items loads in one statement, after a cursor too."""
    items = {}
    for place, n in ((tenant, 3), (other_tenant, 2)):
        items[place.id] = item = await an_item(place, code="PRICED")
        for month in range(1, n + 1):
            await priced(place, item["id"], f"{100 + month}.00", f"2026-{month:02}-01")
    query = f"""query($n: Int!, $after: String, $id: ID!) {{ serviceItem(id: $id) {{ prices(first: $n,
      after: $after) {{ {PAGE} nodes {{ number }} }} }} }}"""
    await counts(sql_counter, query, ("serviceItem", "prices"),
                 [staff(tenant, "finance", id=items[tenant.id]["id"]),
                  staff(other_tenant, "admin", id=items[other_tenant.id]["id"])], extra=0)
    after_one = ok(await tenant.call("finance", query, id=items[tenant.id]["id"], n=1, after=None))
    cursor = after_one["serviceItem"]["prices"]["pageInfo"]["endCursor"]
    later = ok(await tenant.call("finance", query, id=items[tenant.id]["id"], n=1, after=cursor))
    assert later["serviceItem"]["prices"]["totalCount"] == 3  # the whole list, not what follows the cursor
    for _ in range(4):
        item = await an_item(tenant, code=f"I-{uuid.uuid4().hex[:6]}")
        await priced(tenant, item["id"], "10.00", "2026-01-01")
    every = """query($n: Int!) { serviceItemsConnection(first: $n) { nodes { prices(first: 1) { totalCount } } } }"""

    async def statements(n: int) -> int:
        start = len(sql_counter.statements)
        nodes = ok(await tenant.call("finance", every, n=n))["serviceItemsConnection"]["nodes"]
        assert len(nodes) == n and all(node["prices"]["totalCount"] >= 1 for node in nodes)
        return len(sql_counter.statements) - start
    await statements(1)
    assert await statements(1) == await statements(5)


# -- review queues, the trail and its reports ------------------------------------------------------------------


async def test_review_queues(tenant: Tenant, other_tenant: Tenant, sql_counter: SqlCounter) -> None:
    for place, n in ((tenant, 3), (other_tenant, 1)):
        for _ in range(n):
            pid = await make_patient(place, departmentId=str(place.departments["B"].id))  # out of the nurse's reach
            ok(await place.call("nurse", """mutation($id: ID!) { breakGlass(patientId: $id,
              reason: "Unconscious in the waiting room", hours: 1) { id } }""", id=str(pid)))
        for role in ("DOCTOR", "NURSE")[:n]:  # a role that reads patient data: a grant to review
            ok(await place.call("admin", "mutation($s: ID!, $r: Role!) { roleAssign(staffId: $s, role: $r) { id } }",
                                s=str(place.staff_ids["finance"]), r=role))
    for root in ("emergencyAccesses", "roleGrants"):
        await counts(sql_counter, listing(root), (root,),
                     [staff(tenant, "compliance_officer"), staff(other_tenant, "compliance_officer")])


async def test_the_trail_and_what_is_read_from_it(tenant: Tenant, services: Services,
                                                  sql_counter: SqlCounter) -> None:
    pship, lab = await make_partnership(tenant, [*ALL_SCOPES, OWN_LOG]), await make_partnership(tenant)
    for _ in range(3):
        ok(await pship.call("query($id: ID!) { patient(id: $id) { fullName } }", id=str(pship.granted)))
    ok(await lab.call("query($id: ID!) { patient(id: $id) { fullName } }", id=str(lab.granted)))
    # the officer's trail (narrowed to the nurse's events: the officer's own reads land at its top as it pages)
    # and the partner's own log: another reach of the same trail
    trail = listing("auditEvents", ", filter: {actor: $actor}", ", $actor: ID", "seq")
    log = listing("partnerAccessLog", node="seq")
    await counts(sql_counter, trail, ("auditEvents",),
                 [staff(tenant, "compliance_officer", actor=str(tenant.staff_ids["nurse"]))])
    await counts(sql_counter, log, ("partnerAccessLog",), [token(tenant, pship.token)], grows=True)
    everything = listing("auditEvents", node="seq")
    officer = await counts(sql_counter, everything, ("auditEvents",), [staff(tenant, "compliance_officer")],
                           grows=True)
    partner = await counts(sql_counter, log, ("partnerAccessLog",), [token(tenant, pship.token)], grows=True)
    assert officer[0] > partner[0]

    # disclosures: to every partner, to one
    disclosures = listing("disclosures", ", from: $f, to: $t, partnerId: $q", ", $f: DateTime!, $t: DateTime!, $q: ID",
                          "partnerName")
    await counts(sql_counter, disclosures, ("disclosures",),
                 [staff(tenant, "compliance_officer", **PERIOD, q=None),
                  staff(tenant, "compliance_officer", **PERIOD, q=str(lab.partner_id))])

    # a file's access report: one entry per person, counted up to the first page's latest event, as it pages
    busy, quiet = await make_patient(tenant), await make_patient(tenant)
    await readers(tenant, services, busy, 4)
    for _ in range(3):  # one person, several events: counted once
        await read_file(tenant, tenant.tokens["nurse"], quiet)
    report = listing("patientAccessReportConnection", ", patientId: $p", ", $p: ID!", "actorId")
    assert await counts(sql_counter, report, ("patientAccessReportConnection",),
                        [staff(tenant, "compliance_officer", p=str(busy)),
                         staff(tenant, "compliance_officer", p=str(quiet))]) == [5, 2]  # and the registrar

    # a patient's own access log: another patient's is another count
    mine, theirs = await open_account(tenant, busy), await open_account(tenant, quiet)
    own = listing("myAccessLog", node="occurredAt")
    await counts(sql_counter, own, ("myAccessLog",), [token(tenant, mine.token), token(tenant, theirs.token)],
                 grows=True)


# -- a patient's lists: counted for whoever reaches the file, NOT_FOUND for whoever does not ---------------------------


async def test_a_patients_lists(tenant: Tenant, sql_counter: SqlCounter) -> None:
    pship = await make_partnership(tenant, [*ALL_SCOPES, "flag:read"])
    pid, few = pship.granted, await make_patient(tenant)
    for kind in ("VIP", "DIFFICULT_PAYER", "ALLERGY", "FALL_RISK"):
        await raise_flag(tenant, pid, kind)
    plan = "mutation($input: CarePlanCreateInput!) { carePlanCreate(input: $input) { id } }"
    call = """mutation($p: ID!) { communicationLogCall(input: {patientId: $p, direction: OUTBOUND, note: "Rang"})
      { id } }"""
    for patient, n in ((pid, 3), (few, 1)):
        for i in range(n):
            ok(await tenant.call("doctor", plan, input={"patientId": str(patient), "title": f"Plan {i}",
                                                        "activities": [{"kind": "CALL", "afterDays": 1}]}))
            ok(await tenant.call("front_desk", call, p=str(patient)))
    grant = """mutation($p: ID!, $q: ID!, $until: DateTime!) { partnerGrantCreate(input: {partnerId: $q,
      patientId: $p, purpose: "Lab work", expiresAt: $until}) { id } }"""
    ok(await tenant.call("front_desk", grant, p=str(pid), q=str(pship.partner_id),
                         until=(datetime.now(UTC) + timedelta(days=30)).isoformat()))
    await consent_and_grant(tenant, pship.partner_id, few)

    # the alerts: the partner is not shown the staff-only labels (VIP, difficult payer), nor counted them
    flags = listing("patientFlagsConnection", ", patientId: $p", ", $p: ID!", "id kind")
    assert await counts(sql_counter, flags, ("patientFlagsConnection",),
                        [staff(tenant, "nurse", p=str(pid)), token(tenant, pship.token, p=str(pid))]) == [4, 2]
    plans = listing("carePlans", ", patientId: $p", ", $p: ID!", "id")
    communications = listing("patientCommunications", ", patientId: $p", ", $p: ID!", "id")
    grants = listing("partnerGrants", ", patientId: $p", ", $p: ID!", "id")
    for query, root, one, another, expected in (
            (plans, "carePlans", "doctor", "nurse", [3, 1]),
            (communications, "patientCommunications", "nurse", "front_desk", [3, 1]),
            (grants, "partnerGrants", "nurse", "front_desk", [2, 1])):
        readers_ = [staff(tenant, one, p=str(pid)), staff(tenant, another, p=str(few))]
        assert await counts(sql_counter, query, (root,), readers_) == expected, root
    # the patients' own: their plans and messages, each their own count
    mine, theirs = await open_account(tenant, pid), await open_account(tenant, few)
    await counts(sql_counter, plans, ("carePlans",), [token(tenant, mine.token, p=str(pid)),
                                                      token(tenant, theirs.token, p=str(few))])
    await counts(sql_counter, listing("myCommunications", node="id"), ("myCommunications",),
                 [token(tenant, mine.token), token(tenant, theirs.token)])

    # out of reach: a department head of A does not reach a file of department B, a patient another's file
    elsewhere = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))
    for query, root in ((flags, "patientFlagsConnection"), (plans, "carePlans"),
                        (communications, "patientCommunications"), (grants, "partnerGrants")):
        await out_of_reach(staff(tenant, "department_head", p=str(elsewhere)), query, root)
    await out_of_reach(token(tenant, mine.token, p=str(few)), plans, "carePlans")
    await out_of_reach(token(tenant, pship.token, p=str(pship.other)), flags, "patientFlagsConnection")


async def test_survey_invitations_staff_and_the_patient_see(tenant: Tenant, sql_counter: SqlCounter) -> None:
    """Staff list a family questionnaire's invitation on the patient's file; the patient does not (it is their
    family's to answer), and is not counted it."""
    await SurveySettings.create(institution_id=tenant.id, fatigue_days=0)
    pid, _, family = await family_invited(tenant)
    own = await surveys.questionnaire(tenant)
    for n in range(2):  # older than the family's (so that every page loads its contacts, as a page with one does)
        await SurveyInvitation.create(id=uuid.UUID(int=family.id.int - 1 - n), institution_id=tenant.id,
                                      questionnaire_id=own.id, cause_key=uuid.uuid4().hex, patient_id=pid,
                                      send_at=family.send_at, expires_at=family.expires_at)
    user = await open_account(tenant, pid)
    staff_view = listing("patientSurveyInvitations", ", patientId: $p", ", $p: ID!", "id")
    assert await counts(sql_counter, staff_view, ("patientSurveyInvitations",), [staff(tenant, "nurse", p=str(pid))])\
        == [3]
    assert await counts(sql_counter, listing("mySurveyInvitations", node="id"), ("mySurveyInvitations",),
                        [token(tenant, user.token)]) == [2]
    elsewhere = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))
    await out_of_reach(staff(tenant, "nurse", p=str(elsewhere)), staff_view, "patientSurveyInvitations")


# -- tickets ------------------------------------------------------------------------------------------------------


async def test_ticket_lists(tenant: Tenant, sql_counter: SqlCounter) -> None:
    pid, other = await make_patient(tenant), await make_patient(tenant)
    await tickets_with_replies(tenant, 3, pid=pid, role="front_desk")
    made = await tickets_with_replies(tenant, 1, pid=other, role="nurse")
    opened = listing("myOpenedTickets", node="id")
    await counts(sql_counter, opened, ("myOpenedTickets",), [staff(tenant, "front_desk"), staff(tenant, "nurse")])
    mine, theirs = await open_account(tenant, pid), await open_account(tenant, other)
    await counts(sql_counter, listing("myTickets", node="id"), ("myTickets",),
                 [token(tenant, mine.token), token(tenant, theirs.token)])
    # a ticket's timeline, with and without the internal notes (created, a reply, an internal note)
    timeline = f"""query($n: Int!, $after: String, $id: ID!, $internal: Boolean!) {{ ticket(id: $id) {{
      timeline(first: $n, after: $after, includeInternal: $internal) {{ {PAGE} nodes {{ kind }} }} }} }}"""
    every, shown = await counts(sql_counter, timeline, ("ticket", "timeline"),
                                [staff(tenant, "support_agent", id=made[0], internal=True),
                                 staff(tenant, "support_agent", id=made[0], internal=False)], extra=0)
    assert every > shown  # the internal notes

    # partners' tickets: each partner counts the ones it opened
    scopes = [*ALL_SCOPES, "ticket:create", "partner_ticket:read"]
    first, second = await make_partnership(tenant, scopes), await make_partnership(tenant, scopes)
    for pship, n in ((first, 3), (second, 1)):
        for i in range(n):
            ok(await pship.call("""mutation($input: PartnerTicketCreateInput!) { partnerTicketCreate(input: $input)
              { id } }""", input={"patientId": str(pship.granted), "category": "REQUEST", "subject": f"S {i}"}))
    await counts(sql_counter, listing("partnerTickets", node="id"), ("partnerTickets",),
                 [token(tenant, first.token), token(tenant, second.token)])

    # the timelines of a page of tickets are counted from the one statement that loads them
    page = """query($n: Int!) { tickets(first: $n) { nodes { timeline(first: 1) { totalCount } } } }"""

    async def statements(n: int) -> int:
        start = len(sql_counter.statements)
        nodes = ok(await tenant.call("support_agent", page, n=n))["tickets"]["nodes"]
        assert len(nodes) == n and all(node["timeline"]["totalCount"] >= 1 for node in nodes)
        return len(sql_counter.statements) - start
    await statements(1)
    assert await statements(1) == await statements(4)


# -- survey responses: an anonymous one counts only once it is listed -------------------------------------------------


async def test_responses_are_counted_as_they_are_listed(tenant: Tenant, services: Services,
                                                        sql_counter: SqlCounter) -> None:
    """Admins reach the institution's responses, department heads their departments'; an anonymous response of the
    live month is neither listed nor counted (counted, polling totalCount would tell when an answer came), nor one
    of a cell under minCell."""
    await SurveySettings.create(institution_id=tenant.id, fatigue_days=0, min_cell=3)
    identified = await surveys.questionnaire(tenant)
    for department in ("A", "A", "B"):
        await answered(tenant, services, identified, department=department)
    responses = listing("questionnaireResponses", node="id")
    assert await counts(sql_counter, responses, ("questionnaireResponses",),
                        [staff(tenant, "admin"), staff(tenant, "department_head")]) == [3, 2]
    comments = listing("questionnaireResponseComments", node="id")
    pid, _ = await answered(tenant, services, identified, department="B")
    user = await open_account(tenant, pid)
    assert await counts(sql_counter, comments, ("questionnaireResponseComments",),
                        [staff(tenant, "department_head"), token(tenant, user.token)]) == [2, 1]

    await SurveyTrigger.filter(institution_id=tenant.id, questionnaire_key=identified.key).update(active=False)
    anonymous = await surveys.questionnaire(tenant, anonymous=True)
    await surveys.trigger(tenant, anonymous, delayHours=0)
    of_anonymous = listing("questionnaireResponses", ", questionnaireId: $q", ", $q: ID", "id")

    async def total(role: str) -> Any:
        return ok(await tenant.call(role, of_anonymous, q=str(anonymous.id), n=5, after=None))[
            "questionnaireResponses"]["totalCount"]

    for n in range(4):
        _, _, link = await surveys.invited(tenant, services, anonymous)
        ok(await tenant.call(None, BY_LINK_ANSWER, t=link, answers=surveys.GOOD))
        assert [await total("admin"), await total("department_head")] == [0, 0], n  # the live month: not yet
    await surveys.month_closed(tenant)
    assert [await total("admin"), await total("department_head")] == [4, 4]
    _, _, link = await surveys.invited(tenant, services, anonymous, department="B")  # a new cell of one, in B
    ok(await tenant.call(None, BY_LINK_ANSWER, t=link, answers=surveys.GOOD))
    await surveys.month_closed(tenant)
    assert [await total("admin"), await total("department_head")] == [4, 4]  # under minCell: neither shown nor counted
