"""core.questionnaire: definitions, answers and scores, exact numbers."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import questionnaire_fhir as fhir
from core.errors import BadUserInput, InvalidInput
from core.questionnaire import Score, check_answers, check_definition, clean_definition, score, visible, walk
from resolvers.questionnaire_templates import TEMPLATES


def t(zh: str, en: str | None = None) -> dict[str, str]:
    return {"zh-CN": zh, **({"en": en} if en else {})}


def likert(link_id: str, **extra: Any) -> dict[str, Any]:
    return {"link_id": link_id, "kind": "likert", "text": t("题目", "Question"), "required": True, **extra}


ITEMS: list[dict[str, Any]] = [
    likert("q1", anchors={"1": t("很不满意", "Very dissatisfied"), "5": t("很满意", "Very satisfied")}),
    likert("q2"),
    {"link_id": "why", "kind": "text", "text": t("原因"), "required": True,
     "enable_when": {"link_id": "q1", "operator": "<=", "answer": 2}},
    {"link_id": "s", "kind": "section", "text": t("其他"), "items": [
        {"link_id": "rec", "kind": "yes_no", "text": t("推荐吗"), "counts": True},
        {"link_id": "ch", "kind": "choice", "text": t("渠道"),
         "options": [{"code": "a", "text": t("甲")}, {"code": "b", "text": t("乙")}]},
        {"link_id": "mc", "kind": "multi_choice", "text": t("多选"), "enable_when":
            {"link_id": "ch", "operator": "=", "answer": "b"},
         "options": [{"code": "x", "text": t("X")}, {"code": "y", "text": t("Y")}, {"code": "z", "text": t("Z")}]},
    ]},
    {"link_id": "nps", "kind": "nps", "text": t("推荐可能性")},
    {"link_id": "csat", "kind": "csat", "text": t("总体"), "counts": False},
]
SCORING: dict[str, Any] = {"method": "mean", "satisfied_at": 75, "nps_item": "nps", "csat_item": "csat",
                           "low": {"any_item_at_most": 2, "nps_at_most": 6}}


def fault(items: Any, scoring: Any = None) -> str | None:
    with pytest.raises(BadUserInput) as caught:
        check_definition(items, SCORING if scoring is None else scoring)
    return caught.value.field


def changed(path: tuple[Any, ...], value: Any, *, delete: bool = False) -> list[dict[str, Any]]:
    items = copy.deepcopy(ITEMS)
    target: Any = items
    for step in path[:-1]:
        target = target[step]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return items


def test_a_sound_definition_is_cleaned_with_its_defaults() -> None:
    check_definition(ITEMS, SCORING)
    items, scoring = clean_definition(ITEMS, SCORING)
    assert items[0]["counts"] is True and items[1]["counts"] is True  # Likert counts unless told
    assert items[3]["items"][0]["required"] is False and items[4]["counts"] is False  # NPS does not
    assert items[5]["counts"] is False
    assert scoring == SCORING
    spaced = changed((0, "text"), {"zh-CN": "  题目 \r\n 二 ", "en": ""})
    assert clean_definition(spaced, SCORING)[0][0]["text"] == {"zh-CN": "题目 \n 二"}


@pytest.mark.parametrize(("items", "field"), [
    ([], "items"),
    (changed((1, "link_id"), "q1"), "items[1].linkId"),
    (changed((1, "link_id"), "1q"), "items[1].linkId"),
    (changed((1, "kind"), "slider"), "items[1].kind"),
    (changed((1, "text"), {"en": "Only English"}), "items[1].text.zhCN"),
    (changed((1, "text"), {"zh-CN": "题", "fr": "Question"}), "items[1].text"),
    (changed((1, "text"), {"zh-CN": "x" * 501}), "items[1].text.zhCN"),
    (changed((1, "text"), {"zh-CN": "题\u202e"}), "items[1].text.zhCN"),
    (changed((1, "colour"), "red"), "items[1].colour"),
    (changed((1, "required"), "yes"), "items[1].required"),
    (changed((1, "anchors"), {"6": t("六")}), "items[1].anchors"),
    (changed((1, "anchors"), {"5": {"en": "no zh"}}), "items[1].anchors.5.zhCN"),
    (changed((4, "anchors"), {"10": t("十")}), "items[4].anchors"),  # NPS: no anchors
    (changed((1, "options"), [{"code": "a", "text": t("甲")}, {"code": "b", "text": t("乙")}]), "items[1].options"),
    (changed((3, "items", 1, "options"), [{"code": "a", "text": t("甲")}]), "items[3].items[1].options"),
    (changed((3, "items", 1, "options"), [{"code": f"c{i}", "text": t("甲")} for i in range(21)]),
     "items[3].items[1].options"),
    (changed((3, "items", 1, "options", 1, "code"), "a"), "items[3].items[1].options[1].code"),
    (changed((3, "items", 1, "options", 1, "code"), "a b"), "items[3].items[1].options[1].code"),
    (changed((3, "items", 1, "options", 1, "text"), {}), "items[3].items[1].options[1].text.zhCN"),
    (changed((3, "items", 1), {"link_id": "ch", "kind": "choice", "text": t("渠道")}), "items[3].items[1].options"),
    (changed((2, "counts"), True), "items[2].counts"),
    (changed((3, "items", 0, "items"), [likert("deep")]), "items[3].items[0].items"),
    (changed((3, "items", 0), {"link_id": "sub", "kind": "section", "text": t("子"), "items": [likert("d")]}),
     "items[3].items[0].kind"),
    (changed((3, "items"), []), "items[3].items"),
    (changed((3, "required"), True), "items[3].required"),
    (changed((2, "enable_when", "link_id"), "nps"), "items[2].enableWhen.linkId"),  # a later item
    (changed((2, "enable_when", "link_id"), "nope"), "items[2].enableWhen.linkId"),
    (changed((2, "enable_when", "operator"), "~"), "items[2].enableWhen.operator"),
    (changed((2, "enable_when", "answer"), 6), "items[2].enableWhen.answer"),
    (changed((2, "enable_when", "answer"), True), "items[2].enableWhen.answer"),
    (changed((2, "enable_when"), {"link_id": "q1"}), "items[2].enableWhen"),
    (changed((4, "enable_when"), {"link_id": "why", "operator": "=", "answer": "x"}), "items[4].enableWhen.linkId"),
    (changed((3, "items", 2, "enable_when", "operator"), "<"), "items[3].items[2].enableWhen.operator"),
    (changed((3, "items", 2, "enable_when", "answer"), "q"), "items[3].items[2].enableWhen.answer"),
    (changed((4, "enable_when"), {"link_id": "rec", "operator": ">", "answer": True}), "items[4].enableWhen.operator"),
    (changed((4, "enable_when"), {"link_id": "rec", "operator": "=", "answer": 1}), "items[4].enableWhen.answer"),
    (changed((4, "enable_when"), {"link_id": "mc", "operator": "=", "answer": "x"}), "items[4].enableWhen.linkId"),
    ([{"link_id": "s", "kind": "section", "text": t("节"), "items": [
        {"link_id": "s2", "kind": "text", "text": t("文")}]}] + [likert(f"q{i}") for i in range(99)], "items"),
    ([likert(f"q{i}") for i in range(101)], "items"),
    ([{"link_id": "s", "kind": "section", "text": t("节"), "items": [likert("a")]}, "nonsense"], "items[1]"),
])
def test_definition_faults_name_their_place(items: Any, field: str) -> None:
    assert fault(items) == field


def test_a_hundred_items_are_enough() -> None:
    check_definition([likert(f"q{i}") for i in range(100)], {"method": "mean", "satisfied_at": 80})


@pytest.mark.parametrize(("scoring", "field"), [
    (None, "scoring"),
    ({**SCORING, "method": "median"}, "scoring.method"),
    ({**SCORING, "satisfied_at": 101}, "scoring.satisfiedAt"),
    ({**SCORING, "satisfied_at": True}, "scoring.satisfiedAt"),
    ({**SCORING, "nps_item": "q1"}, "scoring.npsItem"),
    ({**SCORING, "csat_item": "nps"}, "scoring.csatItem"),
    ({**SCORING, "low": {"any_item_at_most": 5}}, "scoring.low.anyItemAtMost"),
    ({**SCORING, "low": {"nps_at_most": 10}}, "scoring.low.npsAtMost"),
    ({**SCORING, "low": {"worst": 1}}, "scoring.low"),
    ({**SCORING, "weights": {}}, "scoring.weights"),
])
def test_scoring_faults_name_their_place(scoring: Any, field: str) -> None:
    if scoring is None:
        with pytest.raises(BadUserInput) as caught:
            check_definition(ITEMS, None)
        assert caught.value.field == field
        return
    assert fault(ITEMS, scoring) == field


def items() -> list[dict[str, Any]]:
    return clean_definition(ITEMS, SCORING)[0]


def answer_fault(answers: dict[str, Any]) -> str | None:
    with pytest.raises(BadUserInput) as caught:
        check_answers(items(), answers)
    return caught.value.field


def test_answers_are_checked_and_put_in_item_order() -> None:
    answers = {"csat": 4.0, "mc": ["z", "x"], "ch": "b", "rec": False, "q2": 5, "q1": 1, "why": "  太慢 ",
               "nps": None}
    assert list(check_answers(items(), answers).items()) == [
        ("q1", 1), ("q2", 5), ("why", "太慢"), ("rec", False), ("ch", "b"), ("mc", ["x", "z"]), ("csat", 4)]
    assert check_answers(items(), {"q1": 3, "q2": 3, "why": None, "mc": None}) == {"q1": 3, "q2": 3}
    assert check_answers(items(), {"q1": 2, "q2": 3, "why": "x" * 2000})["why"] == "x" * 2000


@pytest.mark.parametrize(("answers", "field"), [
    ({"q2": 3}, "answers.q1"),  # required
    ({"q1": 2, "q2": 3}, "answers.why"),  # required when shown
    ({"q1": 2, "q2": 3, "why": "   "}, "answers.why"),  # blank is no answer
    ({"q1": 3, "q2": 3, "why": "fine"}, "answers.why"),  # hidden
    ({"q1": 3, "q2": 3, "ch": "a", "mc": ["x"]}, "answers.mc"),  # hidden
    ({"q1": 3, "q2": 3, "mc": ["x"]}, "answers.mc"),  # its source unanswered
    ({"q1": 3, "q2": 3, "zz": 1}, "answers.zz"),
    ({"q1": 3, "q2": 3, "s": 1}, "answers.s"),  # a section takes no answer
    ({"q1": 3, "q2": 3, "bad key!": 1}, "answers"),
    ({"q1": 0, "q2": 3}, "answers.q1"),
    ({"q1": 6, "q2": 3}, "answers.q1"),
    ({"q1": 2.5, "q2": 3}, "answers.q1"),
    ({"q1": True, "q2": 3}, "answers.q1"),
    ({"q1": "5", "q2": 3}, "answers.q1"),
    ({"q1": 3, "q2": 3, "nps": 11}, "answers.nps"),
    ({"q1": 3, "q2": 3, "nps": -1}, "answers.nps"),
    ({"q1": 3, "q2": 3, "csat": 0}, "answers.csat"),
    ({"q1": 3, "q2": 3, "rec": 1}, "answers.rec"),
    ({"q1": 3, "q2": 3, "ch": "c"}, "answers.ch"),
    ({"q1": 3, "q2": 3, "ch": ["a"]}, "answers.ch"),
    ({"q1": 3, "q2": 3, "ch": "b", "mc": "x"}, "answers.mc"),
    ({"q1": 3, "q2": 3, "ch": "b", "mc": ["x", "x"]}, "answers.mc"),
    ({"q1": 3, "q2": 3, "ch": "b", "mc": ["w"]}, "answers.mc"),
    ({"q1": 1, "q2": 3, "why": "x" * 2001}, "answers.why"),
    ({"q1": 1, "q2": 3, "why": "a\x00b"}, "answers.why"),
    ({"q1": 1, "q2": 3, "why": 5}, "answers.why"),
])
def test_answer_faults_name_the_item(answers: dict[str, Any], field: str) -> None:
    assert answer_fault(answers) == field


def test_every_faulty_answer_is_reported_at_once() -> None:
    with pytest.raises(InvalidInput) as caught:
        check_answers(items(), {"q1": 9, "zz": 1, "rec": 1, "nps": 11})  # q2 required and missing
    assert [(field, reason) for field, reason, _ in caught.value.problems] == [
        ("answers.q1", "invalid"), ("answers.zz", "unknown"), ("answers.rec", "invalid"), ("answers.nps", "invalid"),
        ("answers.q2", "required")]


def test_a_hidden_section_hides_its_items() -> None:
    gated = [likert("q1"), {"link_id": "s", "kind": "section", "text": t("节"), "items": [likert("q2")],
                            "enable_when": {"link_id": "q1", "operator": "<", "answer": 3}}]
    definition, _ = clean_definition(gated, {"method": "mean", "satisfied_at": 50})
    assert visible(definition, {"q1": 4}) == {"q1"}
    assert visible(definition, {"q1": 2}) == {"q1", "s", "q2"}
    assert check_answers(definition, {"q1": 4}) == {"q1": 4}  # q2 required but hidden
    with pytest.raises(BadUserInput):
        check_answers(definition, {"q1": 2})
    with pytest.raises(BadUserInput):
        check_answers(definition, {"q1": 4, "q2": 5})


@pytest.mark.parametrize(("operator", "answer", "shown"), [
    ("=", 3, [3]), ("!=", 3, [1, 2, 4, 5]), ("<", 3, [1, 2]), ("<=", 3, [1, 2, 3]), (">", 3, [4, 5]),
    (">=", 3, [3, 4, 5]),
])
def test_every_operator(operator: str, answer: int, shown: list[int]) -> None:
    definition, _ = clean_definition(
        [likert("q1"), {"link_id": "b", "kind": "text", "text": t("文"),
                        "enable_when": {"link_id": "q1", "operator": operator, "answer": answer}}],
        {"method": "mean", "satisfied_at": 50})
    assert [v for v in range(1, 6) if "b" in visible(definition, {"q1": v})] == shown


def scored(answers: dict[str, Any], scoring: dict[str, Any] | None = None) -> Score:
    definition, clean = clean_definition(ITEMS, scoring or SCORING)
    return score(definition, clean, check_answers(definition, answers))


def test_mean_scores_scale_counted_items_to_100() -> None:
    # q1 4 -> 75, q2 5 -> 100, rec yes -> 100; nps and csat do not count here
    assert scored({"q1": 4, "q2": 5, "rec": True, "nps": 3, "csat": 1}) == Score(
        score=91.666667, satisfied=True, nps=3, csat=1, low=True)
    # q1 3 -> 50, q2 3 -> 50, rec no -> 0: 33.33
    result = scored({"q1": 3, "q2": 3, "rec": False})
    assert result.score == 33.333333 and result.satisfied is False and result.nps is None and result.low is False
    assert scored({"q1": 1, "q2": 5, "why": "慢"}).score == 50.0  # 0 and 100


def test_nps_counts_times_ten_when_declared() -> None:
    counted = copy.deepcopy(ITEMS)
    counted[4]["counts"] = True
    definition, clean = clean_definition(counted, SCORING)
    assert score(definition, clean, {"q1": 5, "q2": 5, "nps": 7}).score == 90.0  # 100, 100, 70
    assert score(definition, clean, {"q1": 5, "q2": 5, "nps": 0}).score == pytest.approx(66.666667)


def test_top2box_is_the_share_of_fours_and_fives() -> None:
    top = {**SCORING, "method": "top2box", "satisfied_at": 60}
    assert scored({"q1": 4, "q2": 3, "rec": True}, top) == Score(
        score=66.666667, satisfied=True, nps=None, csat=None, low=False)
    assert scored({"q1": 5, "q2": 2, "rec": False}, top).score == pytest.approx(33.333333)
    assert scored({"q1": 5, "q2": 4}, top).score == 100.0
    counted = copy.deepcopy(ITEMS)
    counted[4]["counts"] = True
    definition, clean = clean_definition(counted, top)
    assert score(definition, clean, {"q1": 5, "q2": 5, "nps": 8}).score == pytest.approx(66.666667)
    assert score(definition, clean, {"q1": 5, "q2": 5, "nps": 9}).score == 100.0


def test_no_counted_answer_no_score() -> None:
    definition, clean = clean_definition([{"link_id": "n", "kind": "nps", "text": t("推荐")}],
                                         {"method": "mean", "satisfied_at": 80, "nps_item": "n"})
    assert score(definition, clean, {"n": 10}) == Score(score=None, satisfied=None, nps=10, csat=None, low=False)


@pytest.mark.parametrize(("answers", "low"), [
    ({"q1": 3, "q2": 3}, False),
    ({"q1": 3, "q2": 2}, True),  # any item <= 2
    ({"q1": 3, "q2": 3, "csat": 2}, True),  # an uncounted CSAT item too
    ({"q1": 3, "q2": 3, "nps": 6}, True),
    ({"q1": 3, "q2": 3, "nps": 7}, False),
])
def test_low_closes_the_loop(answers: dict[str, Any], low: bool) -> None:
    assert scored(answers).low is low
    assert scored(answers, {**SCORING, "low": None}).low is False


def test_satisfied_at_the_threshold() -> None:
    assert scored({"q1": 4, "q2": 4}, {**SCORING, "satisfied_at": 75}).satisfied is True  # 75
    assert scored({"q1": 4, "q2": 4}, {**SCORING, "satisfied_at": 75.5}).satisfied is False


# --- the shipped templates and FHIR ---------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(TEMPLATES))
def test_the_templates_are_sound_and_canonical(code: str) -> None:
    template = TEMPLATES[code]
    assert clean_definition(template.items, template.scoring) == (template.items, template.scoring)
    for texts in (template.title, template.purpose, *(i["text"] for i in walk(template.items))):
        assert set(texts) == {"zh-CN", "en"}


def test_the_outpatient_form_scores_as_the_clinic_counts() -> None:
    template = TEMPLATES["outpatient_satisfaction"]
    fours = {item["link_id"]: 4 for item in template.items if item["kind"] in ("likert", "csat")}
    assert score(template.items, template.scoring, check_answers(template.items, fours)) == Score(
        score=75.0, satisfied=True, nps=None, csat=4, low=False)
    twos = {**fours, "waiting_time": 2, "overall": 3, "comment": "等了很久"}
    result = score(template.items, template.scoring, check_answers(template.items, twos))
    # (5 x 75 + 25 + 50) / 7; waiting time 2 is low
    assert (result.score, result.satisfied, result.csat, result.low) == (64.285714, False, 3, True)


def test_fhir_json_is_bounded_and_checked() -> None:
    with pytest.raises(BadUserInput) as caught:
        fhir.parse("{" + " " * fhir.MAX_JSON + "}")
    assert caught.value.field == "json"
    with pytest.raises(BadUserInput) as caught:
        fhir.parse("[" * 5000 + "]" * 5000)
    assert caught.value.field == "json"


def test_fhir_round_trip_of_the_definition() -> None:
    items, scoring = clean_definition(ITEMS, SCORING)
    stored = {"id": "q-1", "key": "k", "version": 3, "status": "active", "title": t("标题", "Title"), "purpose": {},
              "respondent": "family", "subject": "clinician", "anonymous": True, "items": items, "scoring": scoring}
    resource = fhir.to_fhir(stored)
    back = fhir.from_fhir(resource)
    assert back == {"title": stored["title"], "purpose": {}, "respondent": "family", "subject": "clinician",
                    "anonymous": True, "items": items, "scoring": scoring}


# --- nothing a client sends ends in anything but BAD_USER_INPUT -----------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-20, 20) | st.floats(allow_nan=True) | st.sampled_from(
        ["q1", "why", "ch", "a", "b", "likert", "integer", "choice", "group", "boolean", "=", "<=", "!=", "exists",
         "all", "zh-CN", "en", "mean", "http://hl7.org/fhir/StructureDefinition/translation", fhir.KIND, fhir.ANCHOR,
         fhir.SCORING]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(
        ["linkId", "link_id", "type", "kind", "text", "_text", "item", "items", "extension", "url", "valueCode",
         "valueInteger", "valueString", "answerOption", "valueCoding", "code", "display", "enableWhen", "question",
         "operator", "answerInteger", "answerBoolean", "answerCoding", "enableBehavior", "answer", "options",
         "anchors", "repeats", "required", "enable_when", "method", "satisfied_at", "low", "title",
         "resourceType"]), children, max_size=5),
    max_leaves=30)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_JSON, min_size=1, max_size=3), _JSON, _JSON)
def test_any_fhir_json_is_taken_or_refused_as_bad_input(items: list[Any], title: Any, scoring: Any) -> None:
    resource = {"resourceType": "Questionnaire", "title": title, "item": items,
                "extension": [{"url": fhir.SCORING, "extension": scoring}]}
    try:
        clean_definition(**{k: v for k, v in fhir.from_fhir(resource).items() if k in ("items", "scoring")})
    except BadUserInput:
        pass


@settings(max_examples=300, deadline=None)
@given(_JSON, _JSON)
def test_any_definition_is_taken_or_refused_as_bad_input(items: Any, scoring: Any) -> None:
    try:
        check_definition(items, scoring)
    except BadUserInput:
        pass


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["q1", "q2", "why", "s", "rec", "ch", "mc", "nps", "csat", "x"]), _JSON))
def test_any_answers_are_taken_or_refused_as_bad_input(answers: dict[str, Any]) -> None:
    try:
        checked = check_answers(items(), answers)
    except BadUserInput:
        return
    assert 0 <= (score(items(), SCORING, checked).score or 0) <= 100
