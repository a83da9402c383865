"""What a patient in the portal and a partner's API client reach beyond the roots they may ask: nested fields, lists
and records that other people's answers or other files leave on a file the principal does reach (a fresh-eyes
review of the relationship domains)."""

from __future__ import annotations

import json
from typing import Any

from models import QuestionnaireResponse, SurveyInvitation, Ticket
from resolvers.context import Services
from tests.factories import Tenant
from tests.patients import open_account
from tests.surveys import LOW, family_member, finished_visit, link_of, questionnaire, texted, trigger

BY_LINK_ANSWER = """mutation($t: String!, $answers: [SurveyAnswerInput!]!) {
  surveyAnswerByLink(token: $t, answers: $answers) { followUp } }"""
MY_TICKETS = "{ myTickets { totalCount nodes { id subject description } } }"
MY_EXPORT = "{ myDataExport }"


def ok(reply: Any, root: str) -> Any:
    assert reply.errors == [], reply.errors
    return reply.data[root]


# -- a family member's survey answer ------------------------------------------------------------------------


async def test_a_low_family_answer_opens_a_ticket_the_patient_does_not_see(tenant: Tenant, services: Services) -> None:
    """The portal never shows the patient what their family answered (docs/surveys.md). A family member's low answer
    opens the call-back ticket on the patient's file, its description the questionnaire's score and NPS: found in
    review, the patient read it in myTickets and in their data export. Staff still work it."""
    q = await questionnaire(tenant, respondent="family")
    await trigger(tenant, q, delayHours=0)
    pid = await texted(tenant)
    await family_member(tenant, pid, "Zhao Family")
    await finished_visit(tenant, pid)
    invitation = await SurveyInvitation.get(institution_id=tenant.id, patient_id=pid)
    assert invitation.contact_id is not None
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
