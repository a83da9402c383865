"""Every shape problem of a questionnaire or of a list of survey answers in one answer (issue 16): the ones only
the GraphQL layer sees (a scale point labelled twice, a condition without exactly one answer, an item answered
twice, an answer without exactly one value, too many answers), each with its path and reason, never a value,
and nothing written. They come before the definition's and the answers' own checks, which follow once the
shape is right (the two never mix in one answer)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from models import QuestionnaireResponse, SurveyInvitation
from resolvers.context import Services
from tests.api.test_input_errors import problems
from tests.api.test_questionnaire_responses import BY_LINK_ANSWER, ENTER, REQUIRED_ANSWERS
from tests.api.test_questionnaire_responses import written as answers_written
from tests.api.test_questionnaires import ANCHORS, CREATE, ITEMS, UPDATE, a_questionnaire, create, t, written
from tests.api.test_survey_staff_answers import RATING, STAFF_ANSWER, nursing_form
from tests.factories import Tenant
from tests.surveys import GOOD, invited, questionnaire

SECRET = "My neighbour Li Hua saw me cry in the waiting room"  # an answer's text: never in an error


# -- questionnaires ----------------------------------------------------------------------------------------


def _misshapen() -> list[dict[str, Any]]:
    """ITEMS with a shape problem in four places, a section's own item among them."""
    items = copy.deepcopy(ITEMS)
    items[0]["anchors"] = [*ANCHORS, ANCHORS[0]]  # point 1 twice
    items[1]["enableWhen"] = {"linkId": "reception", "operator": "LESS_OR_EQUAL"}  # no answer
    items[2]["items"][2]["enableWhen"] = {"linkId": "channel", "operator": "EQUAL", "answerCode": "mail",
                                          "answerBoolean": True}  # two answers
    items[4]["anchors"] = [ANCHORS[1], ANCHORS[1], ANCHORS[1]]  # point 5 three times: one problem
    return items


MISSHAPEN_PROBLEMS = [("input.items[0].anchors", "duplicate"), ("input.items[1].enableWhen.answer", "one_value"),
                      ("input.items[2].items[2].enableWhen.answer", "one_value"),
                      ("input.items[4].anchors", "duplicate")]


async def test_a_new_questionnaire_reports_every_misshapen_item_at_once(tenant: Tenant) -> None:
    before, events = await written(tenant), await tenant.audit_count()

    reply = await tenant.call("admin", CREATE, input=a_questionnaire(items=_misshapen()))

    assert problems(reply) == MISSHAPEN_PROBLEMS
    error = reply.errors[0]
    assert (error["extensions"]["field"], error["extensions"]["reason"]) == MISSHAPEN_PROBLEMS[0]
    assert error["message"] == ("input.items[0].anchors: label each scale point once. "
                                "(and 3 more: see extensions.invalid)")
    assert [p["message"] for p in error["extensions"]["invalid"]][1:3] == [
        "give exactly one of answerNumber, answerBoolean, answerCode."] * 2
    assert await written(tenant) == before and await tenant.audit_count() == events


async def test_an_update_reports_every_misshapen_item_at_once(tenant: Tenant) -> None:
    made = await create(tenant)
    before = await written(tenant)

    reply = await tenant.call("admin", UPDATE, id=made["id"], revision=made["revision"],
                              input={"items": _misshapen()})

    assert problems(reply) == MISSHAPEN_PROBLEMS
    assert await written(tenant) == before


async def test_the_shape_comes_first_then_the_definitions_own_checks(tenant: Tenant) -> None:
    """Chosen: shape problems alone (the definition is checked by the resolver, on a shape it can read); fixed,
    the definition's own problems follow, every one of them too."""
    items = _misshapen()
    items[1]["linkId"] = "1st"  # the definition's own problems: a bad link id, a blank title
    before = await written(tenant)

    first = await tenant.call("admin", CREATE, input=a_questionnaire(items=items, title=t("  ")))
    assert problems(first) == MISSHAPEN_PROBLEMS

    items[0]["anchors"], items[4]["anchors"] = ANCHORS, ANCHORS
    items[1]["enableWhen"]["answerNumber"] = 2
    del items[2]["items"][2]["enableWhen"]["answerBoolean"]
    second = await tenant.call("admin", CREATE, input=a_questionnaire(items=items, title=t("  ")))
    assert problems(second) == [("input.title.zhCN", "invalid"), ("input.items[1].linkId", "invalid")]
    assert await written(tenant) == before


async def test_a_shape_problem_alone_is_still_one_list(tenant: Tenant) -> None:
    items = copy.deepcopy(ITEMS)
    items[2]["enableWhen"] = {"linkId": "reception", "operator": "EQUAL"}  # a section's condition
    reply = await tenant.call("admin", CREATE, input=a_questionnaire(items=items))
    assert problems(reply) == [("input.items[2].enableWhen.answer", "one_value")]


# -- survey answers ------------------------------------------------------------------------------------------

MISSHAPEN_ANSWERS: list[dict[str, Any]] = [
    {"linkId": "q1", "number": 4, "boolean": True},  # two values
    {"linkId": "q3", "number": 4},
    {"linkId": "q1", "number": 5},  # q1 again
    {"linkId": "q7"},  # no value
    {"linkId": "q8", "text": SECRET, "code": "web"},  # two values, one of them patient text
    {"linkId": "q3", "number": 4},  # q3 again
    {"linkId": "q1", "number": 5},  # q1 a third time: still one problem
    {"linkId": "Li Hua", "number": 3, "text": SECRET},  # not a link id: named by its place
]
MISSHAPEN_ANSWER_PROBLEMS = [("answers.q1", "one_value"), ("answers.q1", "duplicate"), ("answers.q7", "one_value"),
                             ("answers.q8", "one_value"), ("answers.q3", "duplicate"), ("answers[7]", "one_value")]


def no_value_in(reply: Any) -> None:
    assert SECRET not in str(reply.body) and "Li Hua" not in str(reply.body)


async def test_answers_through_a_link_report_every_misshapen_answer_at_once(tenant: Tenant,
                                                                           services: Services) -> None:
    q = await questionnaire(tenant)
    _, row, token = await invited(tenant, services, q)
    before = await answers_written(tenant)

    reply = await tenant.call(None, BY_LINK_ANSWER, t=token, answers=MISSHAPEN_ANSWERS)

    assert problems(reply) == MISSHAPEN_ANSWER_PROBLEMS
    assert reply.errors[0]["message"] == ("answers.q1: give exactly one value: number, boolean, code, codes or "
                                          "text. (and 5 more: see extensions.invalid)")
    no_value_in(reply)
    assert await answers_written(tenant) == before
    assert not (await SurveyInvitation.get(id=row.id)).answered
    ok = await tenant.call(None, BY_LINK_ANSWER, t=token, answers=GOOD)  # the link still answers
    assert ok.errors == [], ok.errors


async def test_answers_entered_by_staff_and_staff_ratings_report_them_the_same(tenant: Tenant,
                                                                              services: Services) -> None:
    _, row, _ = await invited(tenant, services, await questionnaire(tenant))
    entered = await tenant.call("nurse", ENTER, id=str(row.id), answers=MISSHAPEN_ANSWERS, source="PHONE")
    assert problems(entered) == MISSHAPEN_ANSWER_PROBLEMS
    no_value_in(entered)

    form = await nursing_form(tenant)
    rating = [*RATING, {"linkId": "overall", "number": 5}, {"linkId": "cooperation", "number": 4, "boolean": True}]
    rated = await tenant.call("doctor", STAFF_ANSWER, q=str(form.id), d=str(tenant.departments["A"].id),
                              answers=rating)
    assert problems(rated) == [("answers.overall", "duplicate"), ("answers.cooperation", "one_value"),
                               ("answers.cooperation", "duplicate")]
    assert await QuestionnaireResponse.filter(institution_id=tenant.id).count() == 0


async def test_the_answers_shape_comes_first_then_their_own_checks(tenant: Tenant, services: Services) -> None:
    """Chosen: shape problems alone (the answers are checked against the questionnaire on a list it can read,
    after the link is looked up); fixed, the answers' own problems follow at the same paths."""
    q = await questionnaire(tenant)
    _, _, token = await invited(tenant, services, q)
    answers = [{"linkId": "q1", "number": 9}, {"linkId": "q9", "number": 3}, {"linkId": "q7", "number": 3},
               {"linkId": "q7", "number": 4}, {"linkId": "q8", "text": SECRET, "boolean": False}]

    first = await tenant.call(None, BY_LINK_ANSWER, t=token, answers=answers)
    assert problems(first) == [("answers.q7", "duplicate"), ("answers.q8", "one_value")]

    second = await tenant.call(None, BY_LINK_ANSWER, t=token, answers=[*answers[:3], {"linkId": "q8", "number": 2}])
    assert problems(second) == [("answers.q1", "invalid"), ("answers.q9", "unknown"), ("answers.q8", "invalid"),
                                ("answers.q3", "required")]
    no_value_in(first)


async def test_a_forged_link_with_misshapen_answers_answers_the_shape(tenant: Tenant) -> None:
    """The list's shape is read before any link is looked up, as before: it tells nothing about an invitation."""
    reply = await tenant.call(None, BY_LINK_ANSWER, t="clq_forged", answers=MISSHAPEN_ANSWERS[:3])
    assert problems(reply) == [("answers.q1", "one_value"), ("answers.q1", "duplicate")]


@pytest.mark.parametrize("extra", [0, 1])
async def test_too_many_answers_are_one_problem(tenant: Tenant, services: Services, extra: int) -> None:
    _, row, token = await invited(tenant, services, await questionnaire(tenant))
    answers = [*REQUIRED_ANSWERS, *({"linkId": f"x{n}"} for n in range(198 + extra))]

    reply = await tenant.call(None, BY_LINK_ANSWER, t=token, answers=answers)

    if extra:  # 201: refused as a whole, its answers unread
        assert problems(reply) == [("answers", "too_many")]
        assert reply.errors[0]["message"] == "answers: at most 200 answers."
    else:  # 200: each read
        assert len(problems(reply)) == 198 and problems(reply)[0] == ("answers.x0", "one_value")
    assert not (await SurveyInvitation.get(id=row.id)).answered
