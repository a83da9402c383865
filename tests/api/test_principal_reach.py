"""What a patient in the portal and a partner's API client reach beyond the roots they may ask: nested fields, lists
and records that other people's answers or other files leave on a file the principal does reach (a fresh-eyes
review of the relationship domains)."""

from __future__ import annotations

import json
import uuid
from datetime import date, timedelta
from typing import Any

from models import Communication, QuestionnaireResponse, SurveyInvitation, Ticket
from resolvers.context import Services
from tests.api.test_survey_family import Collect, deliver
from tests.contracts import active_contract, item_input, make_item
from tests.factories import Tenant
from tests.partners import ALL_SCOPES, make_partnership
from tests.patients import denials_since, events_since, mark, open_account
from tests.surveys import LOW, family_member, finished_visit, link_of, questionnaire, texted, trigger

BY_LINK_ANSWER = """mutation($t: String!, $answers: [SurveyAnswerInput!]!) {
  surveyAnswerByLink(token: $t, answers: $answers) { followUp } }"""
MY_TICKETS = "{ myTickets { totalCount nodes { id subject description } } }"
MY_EXPORT = "{ myDataExport }"


def ok(reply: Any, root: str) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data[root]


# -- a family member's survey answer ------------------------------------------------------------------------


async def family_invited(tenant: Tenant) -> tuple[uuid.UUID, SurveyInvitation]:
    """A file whose family member was invited to the family's survey by a finished visit: its id and the invitation."""
    q = await questionnaire(tenant, respondent="family")
    await trigger(tenant, q, delayHours=0)
    pid = await texted(tenant)
    await family_member(tenant, pid, "Zhao Family")
    await finished_visit(tenant, pid)
    invitation = await SurveyInvitation.get(institution_id=tenant.id, patient_id=pid)
    assert invitation.contact_id is not None
    return pid, invitation


async def family_answered_low(tenant: Tenant, services: Services) -> uuid.UUID:
    """``family_invited``'s file, the family's answer low (by its link): it opened the call-back ticket."""
    pid, invitation = await family_invited(tenant)
    assert ok(await tenant.call(None, BY_LINK_ANSWER, t=link_of(services, invitation), answers=LOW),
              "surveyAnswerByLink") == {"followUp": True}
    return pid


async def test_a_low_family_answer_opens_a_ticket_the_patient_does_not_see(tenant: Tenant, services: Services) -> None:
    """The portal never shows the patient what their family answered (docs/surveys.md). A family member's low answer
    opens the call-back ticket on the patient's file, its description the questionnaire's score and NPS: found in
    review, the patient read it in myTickets and in their data export. Staff still work it."""
    pid, invitation = await family_invited(tenant)
    answered = ok(await tenant.call(None, BY_LINK_ANSWER, t=link_of(services, invitation), answers=LOW),
                  "surveyAnswerByLink")
    assert answered == {"followUp": True}
    response = await QuestionnaireResponse.get(institution_id=tenant.id, patient_id=pid)
    ticket = await Ticket.get(id=response.follow_up_ticket_id)
    assert ticket.patient_id == pid
    user = await open_account(tenant, pid)

    mine = ok(await user.call(MY_TICKETS), "myTickets")
    export = ok(await user.call(MY_EXPORT), "myDataExport")

    assert mine == {"totalCount": 0, "nodes": []}
    text = json.dumps(export)
    assert export["tickets"] == [] and str(ticket.id) not in text and "NPS" not in text
    queue = ok(await tenant.call("support_agent", "{ tickets { nodes { id } } }"), "tickets")["nodes"]
    assert {"id": str(ticket.id)} in queue


TICKET_CREATE = "mutation($input: TicketCreateInput!) { ticketCreate(input: $input) { id } }"
TICKET_MOVE = """mutation($id: ID!, $to: TicketStatus!, $resolution: String) {
  ticketTransition(id: $id, to: $to, resolution: $resolution) { id status } }"""


SETTINGS_SET = "mutation($input: SurveySettingsInput!) { surveySettingsUpdate(input: $input) { fatigueDays } }"
FEEDBACK = "mutation($id: ID!, $feedback: String!) { ticketRecordFeedback(id: $id, feedback: $feedback) { id } }"


async def close(tenant: Tenant, ticket_id: str) -> None:
    """Through the closed loop: a complaint closes once the patient's feedback is recorded."""
    for to in ("ACKNOWLEDGED", "INVESTIGATING", "RESOLVED", "CLOSED"):
        if to == "CLOSED":
            reply = await tenant.call("support_agent", FEEDBACK, id=ticket_id, feedback="Satisfied.")
            ok(reply, "ticketRecordFeedback")
        extra = {"resolution": "Called back."} if to == "RESOLVED" else {}
        ok(await tenant.call("support_agent", TICKET_MOVE, id=ticket_id, to=to, **extra), "ticketTransition")


async def test_closing_the_call_back_a_family_answer_opened_does_not_survey_the_patient(
        tenant: Tenant, services: Services) -> None:
    """Found in review: a TICKET_CLOSED trigger invited the patient to a survey about the call-back ticket their
    family's low answer had opened, which told them their family had complained (the portal never shows what the
    family answered). Closing it invites nobody; closing a ticket staff opened invites its patient as before."""
    family = await questionnaire(tenant, respondent="family")
    await trigger(tenant, family, delayHours=0)
    await trigger(tenant, await questionnaire(tenant), event="TICKET_CLOSED", delayHours=0)
    # No fatigue cap: the family's invitation would hold the patient's back for 30 days, and no longer
    ok(await tenant.call("admin", SETTINGS_SET, input={"fatigueDays": 0}), "surveySettingsUpdate")
    pid = await texted(tenant)
    await family_member(tenant, pid, "Qian Family")
    await finished_visit(tenant, pid)
    invitation = await SurveyInvitation.get(institution_id=tenant.id, patient_id=pid)
    ok(await tenant.call(None, BY_LINK_ANSWER, t=link_of(services, invitation), answers=LOW), "surveyAnswerByLink")
    call_back = (await QuestionnaireResponse.get(institution_id=tenant.id, patient_id=pid)).follow_up_ticket_id
    assert call_back is not None
    other = await texted(tenant)
    staff_ticket = ok(await tenant.call("support_agent", TICKET_CREATE, input={
        "channel": "HOTLINE", "category": "ENQUIRY", "subject": "Parking", "patientId": str(other)}), "ticketCreate")

    await close(tenant, str(call_back))
    await close(tenant, staff_ticket["id"])

    assert not await SurveyInvitation.exists(institution_id=tenant.id, ticket_id=call_back)
    assert await SurveyInvitation.filter(institution_id=tenant.id, ticket_id=staff_ticket["id"]).values_list(
        "patient_id", "contact_id") == [(other, None)]



MY_MESSAGES = """query($pid: ID!) {
  myCommunications(first: 50) { totalCount nodes { cause contactId } }
  patientCommunications(patientId: $pid, first: 50) { nodes { cause contactId } }
  patient(id: $pid) { recentCommunications(count: 20) { cause contactId } } }"""
STAFF_MESSAGES = "query($pid: ID!) { patientCommunications(patientId: $pid, first: 50) { nodes { cause contactId } } }"


async def test_the_portal_does_not_list_the_familys_survey_messages(tenant: Tenant) -> None:
    """The portal neither lists family invitations nor tells the patient whether their family answered
    (docs/surveys.md). Their messages (the invitation and its reminder, sent to the contact) are on the patient's
    communication log: found in review, the patient read there that the family was invited, which contact, and by
    the reminder that followed or not whether they had answered. The patient's view of the log, its totalCount and
    their data export leave them out; staff see them."""
    q = await questionnaire(tenant, respondent="family")
    await trigger(tenant, q, delayHours=0)
    pid = await texted(tenant)
    contact = await family_member(tenant, pid, "Zhao Family")
    await finished_visit(tenant, pid)
    staff = ok(await tenant.call("nurse", STAFF_MESSAGES, pid=str(pid)), "patientCommunications")["nodes"]
    assert {"cause": "SURVEY_INVITATION", "contactId": str(contact)} in staff
    user = await open_account(tenant, pid)

    reply = await user.call(MY_MESSAGES, pid=str(pid))
    export = ok(await user.call(MY_EXPORT), "myDataExport")

    assert reply.errors == [], reply.errors
    listed = [*reply.data["myCommunications"]["nodes"], *reply.data["patientCommunications"]["nodes"],
              *reply.data["patient"]["recentCommunications"]]
    assert [n for n in listed if n["contactId"] is not None] == []
    assert reply.data["myCommunications"]["nodes"] == [n for n in staff if n["contactId"] is None]  # the rest stays
    assert reply.data["myCommunications"]["totalCount"] == len(reply.data["myCommunications"]["nodes"])
    assert [m for m in export["communications"] if m["cause"] == "survey_invitation"] == []

OPEN_TICKET = "mutation($input: TicketCreateInput!) { ticketCreate(input: $input) { id } }"
MY_LOG = "{ myAccessLog(first: 100) { totalCount nodes { action refused accessor { kind } } } }"
STAFF_TRAIL = """query($pid: ID!) { auditEvents(first: 100, filter: {patient: $pid}) {
  nodes { resourceType resourceId actorKind } } }"""


async def test_my_access_log_leaves_out_my_familys_survey(tenant: Tenant, services: Services) -> None:
    """The portal never shows the patient their family's survey: its invitation, its messages, what the family
    answered, the call-back ticket a low answer opened (docs/surveys.md). Found in review: "who viewed my record" showed
    the family's link (its read, its answer, the invitation taken, a second answer refused) as anonymous entries on the
    file and the call-back's creation as the system's. myAccessLog, and its totalCount, leave them out; everything else
    on the file's trail is there as before, and a compliance officer's trail of the file keeps them all."""
    pid, invitation = await family_invited(tenant)
    message, collect = await Communication.get(key=f"survey:{invitation.id}:invitation"), Collect()
    await deliver(services, collect, invitation)  # its message goes to the family member: disclosed on the trail
    assert message.id in {sent.communication_id for sent in collect.sent}
    link = link_of(services, invitation)
    ok(await tenant.call(None, "query($t: String!) { surveyByLink(token: $t) { expiresAt } }", t=link), "surveyByLink")
    assert ok(await tenant.call(None, BY_LINK_ANSWER, t=link, answers=LOW), "surveyAnswerByLink") == {"followUp": True}
    assert (await tenant.call(None, BY_LINK_ANSWER, t=link, answers=LOW)).codes == ["BAD_USER_INPUT"]
    response = await QuestionnaireResponse.get(institution_id=tenant.id, patient_id=pid)
    familys = {str(invitation.id), str(message.id), str(response.id), str(response.follow_up_ticket_id)}
    user = await open_account(tenant, pid)
    trail = ok(await tenant.call("compliance_officer", STAFF_TRAIL, pid=str(pid)), "auditEvents")["nodes"]
    seq = await mark(tenant.id)

    log = ok(await user.call(MY_LOG), "myAccessLog")

    theirs = [e for e in await events_since(tenant.id, 0, patient_id=pid) if e.seq <= seq]
    kept = [e for e in theirs if str(e.resource_id) not in familys]
    assert len(kept) < len(theirs)  # the family's records are on the trail
    assert log["nodes"] == [{"action": e.action.upper(), "refused": e.outcome != "allowed",
                             "accessor": {"kind": e.actor_kind.upper()}} for e in reversed(kept)]
    assert log["totalCount"] == len(kept)
    assert [n for n in log["nodes"] if n["accessor"]["kind"] == "ANONYMOUS"] == []
    assert familys <= {n["resourceId"] for n in trail}  # staff's view keeps them



async def test_my_access_log_leaves_out_the_attachments_of_my_familys_call_back(tenant: Tenant,
                                                                                services: Services) -> None:
    """The call-back ticket a family member's low answer opened is left out of "who viewed my record" with everything
    done on it (docs/surveys.md). Found in review: its attachments' records (uploaded, downloaded) are the
    attachment's, not the ticket's, and were shown to the patient as TicketAttachment entries by the support agent,
    telling them of the ticket the portal never shows. An attachment of a ticket of their own stays in their log
    (the twin), and a compliance officer's trail of the file keeps both."""
    from tests.api.test_attachments import upload

    pid = await family_answered_low(tenant, services)
    call_back = str((await QuestionnaireResponse.get(institution_id=tenant.id, patient_id=pid)).follow_up_ticket_id)
    own = ok(await tenant.call("support_agent", OPEN_TICKET, input={
        "channel": "HOTLINE", "category": "REQUEST", "subject": "Reprint my report", "patientId": str(pid)}),
        "ticketCreate")["id"]
    user = await open_account(tenant, pid)
    attachment_log = "{ myAccessLog(first: 100) { totalCount nodes { action resourceTypeName accessor { kind } } } }"
    before = ok(await user.call(attachment_log), "myAccessLog")
    auth = {"authorization": f"Bearer {tenant.tokens['support_agent']}"}
    stored = {}
    for ticket in (call_back, own):
        sent = await upload(tenant, "support_agent", ticket)
        assert sent.status_code == 201, sent.text
        stored[ticket] = sent.json()["id"]
        assert (await tenant.client.get(f"/attachments/{stored[ticket]}", headers=auth)).status_code == 200

    log = ok(await user.call(attachment_log), "myAccessLog")

    shown = [n for n in log["nodes"] if n["resourceTypeName"] == "TicketAttachment"]
    assert shown == [{"action": "READ", "resourceTypeName": "TicketAttachment", "accessor": {"kind": "STAFF"}},
                     {"action": "CREATE", "resourceTypeName": "TicketAttachment", "accessor": {"kind": "STAFF"}}]
    assert log["totalCount"] == len(log["nodes"]) == before["totalCount"] + 1 + 2  # a log read, my ticket's two
    trail = ok(await tenant.call("compliance_officer", STAFF_TRAIL, pid=str(pid)), "auditEvents")["nodes"]
    assert set(stored.values()) <= {n["resourceId"] for n in trail}  # staff's view keeps them



async def test_my_access_log_leaves_out_a_list_read_of_my_familys_call_back(tenant: Tenant,
                                                                            services: Services) -> None:
    """A page of tickets read alike is one record listing them (its subjects): a support agent's queue holding the
    call-back ticket a family member's low answer opened on the file and another patient's ticket. Found in review:
    that record, naming no ticket by its own id, was shown in "who viewed my record" as the agent's read of a
    Ticket, telling the patient of the ticket the portal never shows. Left out when every record it lists on the
    person's files is the family's; the twin, a queue holding a ticket of their own too, is shown."""
    pid = await family_answered_low(tenant, services)
    ok(await tenant.call("support_agent", OPEN_TICKET, input={
        "channel": "HOTLINE", "category": "REQUEST", "subject": "Reprint my report",
        "patientId": str(await texted(tenant))}), "ticketCreate")
    user = await open_account(tenant, pid)
    log = "{ myAccessLog(first: 100) { totalCount nodes { action resourceTypeName accessor { kind } } } }"
    queue = "{ ticketQueue(first: 10) { nodes { id subject } } }"
    agents_ticket_reads = {"action": "READ", "resourceTypeName": "Ticket", "accessor": {"kind": "STAFF"}}
    assert len(ok(await tenant.call("support_agent", queue), "ticketQueue")["nodes"]) == 2
    read_alike = (await tenant.audit_events(actor_id=tenant.staff_ids["support_agent"], resource_type="ticket",
                                            action="read"))[-1]
    assert read_alike.resource_id is None and len(read_alike.subjects.split()) == 2  # one record lists both

    shown = ok(await user.call(log), "myAccessLog")

    assert agents_ticket_reads not in shown["nodes"]
    assert shown["totalCount"] == len(shown["nodes"])
    ok(await tenant.call("support_agent", OPEN_TICKET, input={
        "channel": "HOTLINE", "category": "REQUEST", "subject": "Reprint my report", "patientId": str(pid)}),
        "ticketCreate")  # a ticket of my own: the next queue lists it too
    assert len(ok(await tenant.call("support_agent", queue), "ticketQueue")["nodes"]) == 3
    shown = ok(await user.call(log), "myAccessLog")
    assert shown["nodes"][0] == agents_ticket_reads and shown["totalCount"] == len(shown["nodes"])


# -- a contract's amendments -------------------------------------------------------------------------------

AMEND = """mutation($id: ID!, $input: ContractAmendInput!, $v: Int!) {
  contractAmend(contractId: $id, input: $input, expectedVersion: $v) { version } }"""
SUMMARIES = "query($id: ID!) { contract(id: $id) { versions { number changeSummary } } }"
SUMMARY = "Home nursing up from 120.00 to 150.00 CNY a visit; the deposit stays; notice 60 days"


async def test_a_partner_does_not_read_what_an_amendment_says_changed(tenant: Tenant, services: Services) -> None:
    """A partner named on a contract reads its own items and no money, nor the clauses (docs/contracts.md); an
    amendment's changeSummary says in words what changed in the whole contract and why, fees and every party's items
    with them. Found in review: the partner read it in full. Null with FORBIDDEN for the partner,
    recorded as a refused read of the contract; the patient and staff read it."""
    partnership = await make_partnership(tenant, [*ALL_SCOPES, "contract:read"])
    items = [item_input(await make_item(tenant)), item_input(await make_item(tenant), quantity=2, by_partner=True)]
    contract = await active_contract(tenant, services, patient_id=partnership.granted, items=items,
                                     partnerId=str(partnership.partner_id))
    effective = date.fromisoformat(contract["startOn"]) + timedelta(days=30)
    ok(await tenant.call("finance", AMEND, id=contract["id"], v=contract["version"],
                         input={"effectiveOn": effective.isoformat(), "changeSummary": SUMMARY, "noticeDays": 60}),
       "contractAmend")
    seq = await mark(tenant.id)

    reply = await partnership.call(SUMMARIES, id=contract["id"])

    assert SUMMARY not in json.dumps(reply.body)
    assert reply.data == {"contract": {"versions": [{"number": 1, "changeSummary": None},
                                                    {"number": 2, "changeSummary": None}]}}
    assert reply.codes == ["FORBIDDEN", "FORBIDDEN"]
    assert [d[:3] for d in await denials_since(tenant.id, seq)] == [("read", "contract", "forbidden_field")]
    staff = ok(await tenant.call("finance", SUMMARIES, id=contract["id"]), "contract")["versions"]
    assert [v["changeSummary"] for v in staff] == [None, SUMMARY]


SUSPEND = """mutation($id: ID!, $v: Int!, $reason: String!) {
  contractSuspend(contractId: $id, expectedVersion: $v, reason: $reason) { version } }"""
REASON = "Two months of fees unpaid; the family disputes the bill"


async def test_a_partner_does_not_read_why_a_contract_was_suspended(tenant: Tenant, services: Services) -> None:
    """A partner's view shows its own items and no money (docs/contracts.md); why the institution suspended or ended
    the contract is its business with the client (unpaid fees, a dispute). Found in review: the partner read it. Null
    with FORBIDDEN for the partner, recorded as a refused read of the contract; staff read it."""
    partnership = await make_partnership(tenant, [*ALL_SCOPES, "contract:read"])
    items = [item_input(await make_item(tenant)), item_input(await make_item(tenant), quantity=2, by_partner=True)]
    contract = await active_contract(tenant, services, patient_id=partnership.granted, items=items,
                                     partnerId=str(partnership.partner_id))
    ok(await tenant.call("finance", SUSPEND, id=contract["id"], v=contract["version"], reason=REASON),
       "contractSuspend")
    seq = await mark(tenant.id)

    reply = await partnership.call("query($id: ID!) { contract(id: $id) { status statusReason } }", id=contract["id"])

    assert REASON not in json.dumps(reply.body)
    assert reply.data == {"contract": {"status": "SUSPENDED", "statusReason": None}} and reply.codes == ["FORBIDDEN"]
    assert [d[:3] for d in await denials_since(tenant.id, seq)] == [("read", "contract", "forbidden_field")]
    staff = ok(await tenant.call("finance", "query($id: ID!) { contract(id: $id) { statusReason } }",
                                 id=contract["id"]), "contract")
    assert staff == {"statusReason": REASON}
