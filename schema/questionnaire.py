"""Survey instruments (FHIR Questionnaire): versioned questionnaires with typed items, their scoring, the
shipped templates, and FHIR R4 import and export.

A questionnaire's versions share a ``key``; a version that has a response never changes again (editing it
makes the next version, a draft, which replaces it when activated), so each report says which version its
figures come from. Texts come in Simplified Chinese (required) and English (optional).
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from core.validation import Problems
from resolvers import questionnaire as questionnaires
from schema.common import DEFAULT_PAGE_SIZE, TOTAL_COUNT, First, Info, PageInfo, asks_total, provided, uuid_of
from schema.staff import StaffSummary

if TYPE_CHECKING:
    from models import Questionnaire as QuestionnaireRow
    from resolvers.pagination import Page
    from resolvers.questionnaire_templates import Template


@strawberry.enum(description="Where a questionnaire version is in its life (FHIR PublicationStatus).")
class QuestionnaireStatus(Enum):
    DRAFT = strawberry.enum_value("draft", description="Being written: edited freely, sent to nobody.")
    ACTIVE = strawberry.enum_value("active", description="In use: the version invitations ask (one per key).")
    RETIRED = strawberry.enum_value("retired", description="No longer asked; its responses and figures stay.")


@strawberry.enum(description="Who answers a questionnaire.")
class QuestionnaireRespondent(Enum):
    PATIENT = strawberry.enum_value("patient", description="The patient.")
    FAMILY = strawberry.enum_value("family", description="A relative or carer of the patient.")
    STAFF = strawberry.enum_value("staff", description="Staff (e.g. doctors rating a department's nursing).")


@strawberry.enum(description="What a questionnaire is about: what its figures are grouped by.")
class QuestionnaireSubject(Enum):
    VISIT = strawberry.enum_value("visit", description="A visit.")
    TICKET = strawberry.enum_value("ticket", description="A closed ticket (how the problem was handled).")
    FOLLOW_UP = strawberry.enum_value("follow_up", description="A follow-up call.")
    DEPARTMENT = strawberry.enum_value("department", description="A department's service as a whole.")
    CLINICIAN = strawberry.enum_value("clinician", description="One clinician.")
    SERVICE = strawberry.enum_value("service", description="A service received (any contact).")


@strawberry.enum(description="The kind of a questionnaire item: what it asks and what answer it takes.")
class QuestionnaireItemKind(Enum):
    LIKERT = strawberry.enum_value("likert", description="A rating from 1 to 5, with labelled anchors.")
    NPS = strawberry.enum_value("nps", description="0 to 10: how likely to recommend (Net Promoter Score).")
    CSAT = strawberry.enum_value("csat", description="Satisfaction from 1 to 5 (CSAT), with labelled anchors.")
    YES_NO = strawberry.enum_value("yes_no", description="Yes or no.")
    CHOICE = strawberry.enum_value("choice", description="One of 2 to 20 options.")
    MULTI_CHOICE = strawberry.enum_value("multi_choice", description="Any of 2 to 20 options.")
    TEXT = strawberry.enum_value("text", description="Free text, at most 2,000 characters (stored encrypted).")
    SECTION = strawberry.enum_value("section", description="A heading over items (one level); takes no answer.")


@strawberry.enum(description="How a response's score (0 to 100) is computed from the items that count.")
class QuestionnaireScoringMethod(Enum):
    MEAN = strawberry.enum_value("mean", description="The mean of the counted answers, each scaled to 0-100 "
                                                     "(1-5: (v-1)/4*100; 0-10: v*10; yes 100, no 0).")
    TOP_TWO_BOX = strawberry.enum_value("top2box", description="The share of counted answers in the top two "
                                                               "boxes (4 or 5; 9 or 10; yes), as 0-100.")


@strawberry.enum(description="How a condition compares the earlier item's answer.")
class QuestionnaireConditionOperator(Enum):
    EQUAL = strawberry.enum_value("=", description="Equal to.")
    NOT_EQUAL = strawberry.enum_value("!=", description="Not equal to.")
    LESS = strawberry.enum_value("<", description="Less than (ratings only).")
    LESS_OR_EQUAL = strawberry.enum_value("<=", description="At most (ratings only).")
    GREATER = strawberry.enum_value(">", description="Greater than (ratings only).")
    GREATER_OR_EQUAL = strawberry.enum_value(">=", description="At least (ratings only).")


@strawberry.enum(description="A questionnaire careloop ships, which an institution adopts in one call.")
class QuestionnaireTemplateCode(Enum):
    OUTPATIENT_SATISFACTION = strawberry.enum_value(
        "outpatient_satisfaction", description="Outpatients rate 7 items: reception, nurses' attitude, nursing "
                                               "skill, health guidance, the clinic, waiting time, overall.")
    NURSING_BY_DOCTORS = strawberry.enum_value(
        "nursing_by_doctors", description="Doctors rate their department's nursing on 5 items: the head nurse's "
                                          "management, nurses' competence, attitude, cooperation, overall "
                                          "(anonymous).")
    NPS = strawberry.enum_value("nps", description="How likely to recommend us (0-10), and why.")
    CSAT = strawberry.enum_value("csat", description="Satisfaction with the service (1-5), and a comment.")


# -- reading -------------------------------------------------------------------------------------


@strawberry.type(description="A text in Simplified Chinese and, optionally, English.")
class LocalizedText:
    zh_cn: str = strawberry.field(name="zhCN", description="Simplified Chinese (always there).")
    en: str | None = strawberry.field(description="English; null when not translated.")

    @classmethod
    def of(cls, texts: dict[str, str]) -> LocalizedText:
        return cls(zh_cn=texts["zh-CN"], en=texts.get("en"))


@strawberry.type(description="The label of one point of a rating scale.")
class QuestionnaireAnchor:
    value: int = strawberry.field(description="The scale point (1 to 5).")
    text: LocalizedText = strawberry.field(description="Its label, e.g. 很满意 / Very satisfied.")


@strawberry.type(description="An option of a choice item.")
class QuestionnaireOption:
    code: str = strawberry.field(description="What an answer records (unique within the item).")
    text: LocalizedText = strawberry.field(description="What the respondent reads.")


@strawberry.type(description="When an item is shown: an earlier item's answer compared with a value. An item whose "
                             "condition is false (or whose earlier item is unanswered or hidden) is hidden and takes "
                             "no answer.")
class QuestionnaireCondition:
    link_id: str = strawberry.field(description="The earlier item (a rating, yes/no or single choice).")
    operator: QuestionnaireConditionOperator = strawberry.field(description="How its answer is compared.")
    answer_number: int | None = strawberry.field(description="The value, for a rating item; null for the "
                                                              "others (a condition sets exactly one of "
                                                              "answerNumber, answerBoolean, answerCode).")
    answer_boolean: bool | None = strawberry.field(description="The value, for a yes/no item; null for the "
                                                                "others.")
    answer_code: str | None = strawberry.field(description="The option code, for a choice item; null for the "
                                                            "others.")


@strawberry.type(description="An item of a questionnaire (FHIR Questionnaire.item).")
class QuestionnaireItem:
    link_id: str = strawberry.field(description="The item's id within the questionnaire; answers name it.")
    kind: QuestionnaireItemKind = strawberry.field(description="What it asks.")
    text: LocalizedText = strawberry.field(description="The question (or a section's heading).")
    required: bool = strawberry.field(description="Must be answered when shown (false for sections).")
    counts: bool = strawberry.field(description="Counts toward the satisfaction score (ratings and yes/no only).")
    anchors: list[QuestionnaireAnchor] = strawberry.field(description="Labelled points of a Likert or CSAT scale.")
    options: list[QuestionnaireOption] = strawberry.field(description="A choice item's options, in order.")
    enable_when: QuestionnaireCondition | None = strawberry.field(description="Shown only when this holds; null: "
                                                                              "always shown.")
    items: list[QuestionnaireItem] = strawberry.field(description="A section's items (empty for questions).")

    @classmethod
    def of(cls, item: dict[str, Any]) -> QuestionnaireItem:
        condition = item.get("enable_when")
        return cls(
            link_id=item["link_id"], kind=QuestionnaireItemKind(item["kind"]), text=LocalizedText.of(item["text"]),
            required=bool(item.get("required")), counts=bool(item.get("counts")),
            anchors=[QuestionnaireAnchor(value=int(point), text=LocalizedText.of(texts))
                     for point, texts in (item.get("anchors") or {}).items()],
            options=[QuestionnaireOption(code=o["code"], text=LocalizedText.of(o["text"]))
                     for o in item.get("options") or ()],
            enable_when=None if condition is None else _condition(condition),
            items=[QuestionnaireItem.of(child) for child in item.get("items") or ()])


def _condition(condition: dict[str, Any]) -> QuestionnaireCondition:
    answer = condition["answer"]
    return QuestionnaireCondition(
        link_id=condition["link_id"], operator=QuestionnaireConditionOperator(condition["operator"]),
        answer_boolean=answer if isinstance(answer, bool) else None,
        answer_number=answer if isinstance(answer, int) and not isinstance(answer, bool) else None,
        answer_code=answer if isinstance(answer, str) else None)


@strawberry.type(description="When a response is low enough to close the loop (a complaint ticket on the patient's "
                             "file, identified questionnaires only). Either bar may be null.")
class QuestionnaireLowThreshold:
    any_item_at_most: int | None = strawberry.field(description="Any answered Likert or CSAT item at or under this "
                                                                "(1 to 4).")
    nps_at_most: int | None = strawberry.field(description="An NPS answer at or under this (0 to 9).")


@strawberry.type(description="How a response is scored, declared with the questionnaire.")
class QuestionnaireScoring:
    method: QuestionnaireScoringMethod = strawberry.field(description="How the score (0 to 100) is computed.")
    satisfied_at: float = strawberry.field(description="A response scoring at least this (0 to 100) is satisfied.")
    nps_item: str | None = strawberry.field(description="The NPS item reports use, if any.")
    csat_item: str | None = strawberry.field(description="The CSAT item reports use, if any.")
    low: QuestionnaireLowThreshold | None = strawberry.field(description="When a response is low; null: never.")

    @classmethod
    def of(cls, scoring: dict[str, Any]) -> QuestionnaireScoring:
        low = scoring.get("low")
        return cls(method=QuestionnaireScoringMethod(scoring["method"]), satisfied_at=float(scoring["satisfied_at"]),
                   nps_item=scoring.get("nps_item"), csat_item=scoring.get("csat_item"),
                   low=None if not low else QuestionnaireLowThreshold(any_item_at_most=low.get("any_item_at_most"),
                                                                      nps_at_most=low.get("nps_at_most")))


@strawberry.type(description="One version of a questionnaire (FHIR Questionnaire).")
class Questionnaire:
    stored: strawberry.Private[Any]  # the row (models are for type hints only here)

    @classmethod
    def of(cls, row: QuestionnaireRow) -> Questionnaire:
        return cls(stored=row)

    @property
    def row(self) -> QuestionnaireRow:
        return self.stored

    @strawberry.field(description="This version's id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field(description="The same for every version of the questionnaire.")
    def key(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.key))

    @strawberry.field(description="The version number under the key, from 1; reports name it.")
    def version(self) -> int:
        return self.row.version

    @strawberry.field(description="Pass back when you edit, activate or retire this version: a stale one answers "
                                  "CONFLICT. Counts the writes to this version (edits in place, status changes).")
    def revision(self) -> int:
        return self.row.revision

    @strawberry.field(description="Draft, active or retired.")
    def status(self) -> QuestionnaireStatus:
        return QuestionnaireStatus(self.row.status)

    @strawberry.field(description="The title shown to respondents, in Chinese and (when written) English.")
    def title(self) -> LocalizedText:
        return LocalizedText.of(self.row.title)

    @strawberry.field(description="What it is for; null when not given.")
    def purpose(self) -> LocalizedText | None:
        return LocalizedText.of(self.row.purpose) if self.row.purpose else None

    @strawberry.field(description="Who answers it.")
    def respondent(self) -> QuestionnaireRespondent:
        return QuestionnaireRespondent(self.row.respondent)

    @strawberry.field(description="What it is about.")
    def subject(self) -> QuestionnaireSubject:
        return QuestionnaireSubject(self.row.subject)

    @strawberry.field(description="Anonymous: responses keep no link to the patient.")
    def anonymous(self) -> bool:
        return self.row.anonymous

    @strawberry.field(description="The items, in order.")
    def items(self) -> list[QuestionnaireItem]:
        return [QuestionnaireItem.of(item) for item in self.row.items]

    @strawberry.field(description="How a response is scored.")
    def scoring(self) -> QuestionnaireScoring:
        return QuestionnaireScoring.of(self.row.scoring)

    @strawberry.field(description="The template it was adopted from; null for one written here or imported.")
    def template(self) -> QuestionnaireTemplateCode | None:
        return None if self.row.template is None else QuestionnaireTemplateCode(self.row.template)

    @strawberry.field(description="Who wrote this version; null for none (or a departed account). Needs the right to "
                                  "read questionnaires (FORBIDDEN on the field otherwise: a respondent reads the "
                                  "version's items, not who wrote it).")
    async def author(self, info: Info) -> StaffSummary | None:
        staff_id = await questionnaires.author_id(info.context, self.row)
        row = None if staff_id is None else await info.context.require_loaders().staff.load(staff_id)
        return None if row is None else StaffSummary.of(row)

    @strawberry.field(description="Responses to this version. Of a version whose responses name nobody (flagged "
                                  "anonymous, or answered by staff), only those the response list shows: of a closed "
                                  "month, in a department's month of at least minCell responses (once there is any "
                                  "response, editing makes a new version). Needs the right to read "
                                  "questionnaires (FORBIDDEN on the field otherwise).")
    async def response_count(self, info: Info) -> int:
        return await questionnaires.response_count(info.context, self.row)

    @strawberry.field(description="When this version was created.")
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field(description="When this version last changed (edited, activated, retired).")
    def updated_at(self) -> datetime:
        return self.row.updated_at


@strawberry.type(description="A questionnaire careloop ships; questionnaireAdopt makes the institution's copy.")
class QuestionnaireTemplate:
    stored: strawberry.Private[Any]  # resolvers.questionnaire_templates.Template

    @property
    def template(self) -> Template:
        return self.stored

    @strawberry.field(description="What questionnaireAdopt takes.")
    def code(self) -> QuestionnaireTemplateCode:
        return QuestionnaireTemplateCode(self.template.code)

    @strawberry.field(description="The template's title, in Chinese and English (its copy starts with it).")
    def title(self) -> LocalizedText:
        return LocalizedText.of(self.template.title)

    @strawberry.field(description="What it is for.")
    def purpose(self) -> LocalizedText:
        return LocalizedText.of(self.template.purpose)

    @strawberry.field(description="Who answers it.")
    def respondent(self) -> QuestionnaireRespondent:
        return QuestionnaireRespondent(self.template.respondent)

    @strawberry.field(description="What it is about.")
    def subject(self) -> QuestionnaireSubject:
        return QuestionnaireSubject(self.template.subject)

    @strawberry.field(description="Anonymous: responses keep no link to the patient.")
    def anonymous(self) -> bool:
        return self.template.anonymous

    @strawberry.field(description="The items, in order.")
    def items(self) -> list[QuestionnaireItem]:
        return [QuestionnaireItem.of(item) for item in self.template.items]

    @strawberry.field(description="How a response is scored.")
    def scoring(self) -> QuestionnaireScoring:
        return QuestionnaireScoring.of(self.template.scoring)


@strawberry.type(description="One questionnaire version of a page and its cursor.")
class QuestionnaireEdge:
    cursor: str = strawberry.field(description="Pass as `after` for the versions after this one.")
    node: Questionnaire = strawberry.field(description="The questionnaire version.")


@strawberry.type(description="A page of questionnaire versions, in creation order.")
class QuestionnaireConnection:
    edges: list[QuestionnaireEdge] = strawberry.field(description="The versions with their cursors.")
    page_info: PageInfo = strawberry.field(description="Whether another page follows.")
    total_count: int | None = strawberry.field(default=None, description=TOTAL_COUNT)

    @strawberry.field(description="The versions of this page.")
    def nodes(self) -> list[Questionnaire]:
        return [edge.node for edge in self.edges]


@strawberry.type(description="What an edit wrote.")
class QuestionnaireUpdatePayload:
    questionnaire: Questionnaire = strawberry.field(description="The version written: the one edited, or the new "
                                                                "version.")
    new_version: bool = strawberry.field(description="True when the edited version had responses: the edit is the "
                                                     "next version, a draft (activate it to replace the old one, "
                                                     "which stays as it was).")


# -- writing -------------------------------------------------------------------------------------


@strawberry.input(description="A text in Simplified Chinese (required) and English (optional).")
class LocalizedTextInput:
    zh_cn: str = strawberry.field(name="zhCN", description="Simplified Chinese.")
    en: str | None = strawberry.field(default=None, description="English; null or empty: none.")


@strawberry.input(description="The label of one point of a Likert or CSAT scale.")
class QuestionnaireAnchorInput:
    value: int = strawberry.field(description="The scale point, 1 to 5; each at most once.")
    text: LocalizedTextInput = strawberry.field(description="Its label (at most 200 characters).")


@strawberry.input(description="An option of a choice item.")
class QuestionnaireOptionInput:
    code: str = strawberry.field(description="A letter or digit, then up to 39 letters, digits, _ . or -; unique "
                                             "within the item.")
    text: LocalizedTextInput = strawberry.field(description="Its label (at most 200 characters).")


@strawberry.input(description="Show the item only when an EARLIER item's answer compares so. Give exactly one "
                              "answer field, of the earlier item's kind.")
class QuestionnaireConditionInput:
    link_id: str = strawberry.field(description="An earlier rating (Likert, NPS, CSAT), yes/no or single choice item.")
    operator: QuestionnaireConditionOperator = strawberry.field(description="= and != for every kind; < <= > >= "
                                                                            "for ratings.")
    answer_number: int | None = strawberry.field(default=None, description="For a rating: a value of its scale.")
    answer_boolean: bool | None = strawberry.field(default=None, description="For a yes/no item.")
    answer_code: str | None = strawberry.field(default=None, description="For a choice item: one of its codes.")


@strawberry.input(description="A question (an item inside a section: sections nest one level).")
class QuestionnaireQuestionInput:
    link_id: str = strawberry.field(description="Unique in the questionnaire: a letter, then up to 39 letters, "
                                                "digits, _ . or -.")
    kind: QuestionnaireItemKind = strawberry.field(description="What it asks (not SECTION here).")
    text: LocalizedTextInput = strawberry.field(description="The question (at most 500 characters).")
    required: bool | None = strawberry.field(default=None, description="Must be answered when shown; default "
                                                                       "false.")
    counts: bool | None = strawberry.field(default=None, description="Counts toward the score (ratings and yes/no); "
                                                                     "default true for Likert and CSAT.")
    anchors: list[QuestionnaireAnchorInput] | None = strawberry.field(default=None, description="Likert and CSAT "
                                                                                               "only.")
    options: list[QuestionnaireOptionInput] | None = strawberry.field(default=None, description="Choice items: 2 to "
                                                                                               "20.")
    enable_when: QuestionnaireConditionInput | None = strawberry.field(default=None, description="Shown only when "
                                                                                                "this holds.")


@strawberry.input(description="An item: a question, or a section (kind SECTION) holding questions in `items`.")
class QuestionnaireItemInput:
    link_id: str = strawberry.field(description="Unique in the questionnaire: a letter, then up to 39 letters, "
                                                "digits, _ . or -.")
    kind: QuestionnaireItemKind = strawberry.field(description="What it asks, or SECTION.")
    text: LocalizedTextInput = strawberry.field(description="The question or heading (at most 500 characters).")
    required: bool | None = strawberry.field(default=None, description="Must be answered when shown; default "
                                                                       "false. Not for sections.")
    counts: bool | None = strawberry.field(default=None, description="Counts toward the score (ratings and yes/no); "
                                                                     "default true for Likert and CSAT.")
    anchors: list[QuestionnaireAnchorInput] | None = strawberry.field(default=None, description="Likert and CSAT "
                                                                                               "only.")
    options: list[QuestionnaireOptionInput] | None = strawberry.field(default=None, description="Choice items: 2 to "
                                                                                               "20.")
    enable_when: QuestionnaireConditionInput | None = strawberry.field(default=None, description="Shown only when "
                                                                                                "this holds (a "
                                                                                                "hidden section "
                                                                                                "hides its items).")
    items: list[QuestionnaireQuestionInput] | None = strawberry.field(default=None, description="A section's "
                                                                                               "questions.")


@strawberry.input(description="When a response is low (either bar may be left out).")
class QuestionnaireLowThresholdInput:
    any_item_at_most: int | None = strawberry.field(default=None, description="Any Likert or CSAT answer at or "
                                                                              "under this (1 to 4).")
    nps_at_most: int | None = strawberry.field(default=None, description="The NPS answer at or under this (0 to 9).")


@strawberry.input(description="How a response is scored.")
class QuestionnaireScoringInput:
    method: QuestionnaireScoringMethod = strawberry.field(description="Mean or top-two-box.")
    satisfied_at: float = strawberry.field(description="The score (0 to 100) from which a response is satisfied.")
    nps_item: str | None = strawberry.field(default=None, description="The NPS item reports use.")
    csat_item: str | None = strawberry.field(default=None, description="The CSAT item reports use.")
    low: QuestionnaireLowThresholdInput | None = strawberry.field(default=None, description="When a response is "
                                                                                           "low; null: never.")


@strawberry.input(description="A new questionnaire (a draft, version 1). At most 100 items, sections included.")
class QuestionnaireCreateInput:
    title: LocalizedTextInput = strawberry.field(description="At most 200 characters.")
    items: list[QuestionnaireItemInput] = strawberry.field(description="The items, in order.")
    scoring: QuestionnaireScoringInput = strawberry.field(description="How a response is scored.")
    purpose: LocalizedTextInput | None = strawberry.field(default=None, description="What it is for (at most 1,000 "
                                                                                    "characters).")
    respondent: QuestionnaireRespondent = strawberry.field(default=QuestionnaireRespondent.PATIENT,
                                                           description="Who answers it.")
    subject: QuestionnaireSubject = strawberry.field(default=QuestionnaireSubject.VISIT,
                                                     description="What it is about.")
    anonymous: bool = strawberry.field(default=False, description="Responses keep no link to the patient.")


@strawberry.input(description="Changes to a questionnaire: fields left out stay as they are; items and scoring are "
                              "replaced as a whole and checked together.")
class QuestionnaireUpdateInput:
    title: LocalizedTextInput | None = strawberry.field(
        default=strawberry.UNSET, description="The new title, replacing both languages; left out: unchanged.")
    items: list[QuestionnaireItemInput] | None = strawberry.field(default=strawberry.UNSET, description="Every "
                                                                                                       "item.")
    scoring: QuestionnaireScoringInput | None = strawberry.field(
        default=strawberry.UNSET, description="The new scoring, as a whole, checked against the items; left out: "
                                              "unchanged.")
    purpose: LocalizedTextInput | None = strawberry.field(default=strawberry.UNSET, description="What it is for; "
                                                                                               "null: none.")
    respondent: QuestionnaireRespondent | None = strawberry.field(default=strawberry.UNSET,
                                                                  description="Who answers it.")
    subject: QuestionnaireSubject | None = strawberry.field(default=strawberry.UNSET,
                                                            description="What it is about.")
    anonymous: bool | None = strawberry.field(default=strawberry.UNSET, description="Responses keep no link to the "
                                                                                    "patient.")


def _texts(text: LocalizedTextInput) -> dict[str, str]:
    return {"zh-CN": text.zh_cn, **({"en": text.en} if text.en else {})}


def _item(item: QuestionnaireItemInput | QuestionnaireQuestionInput, path: str, problems: Problems) -> dict[str, Any]:
    """An item input as the stored JSON (checked by core.questionnaire); what the JSON cannot say (a scale point
    labelled twice, a condition without exactly one answer) is added to ``problems``, for the item and its own."""
    out: dict[str, Any] = {"link_id": item.link_id, "kind": item.kind.value, "text": _texts(item.text)}
    if item.required is not None:
        out["required"] = item.required
    if item.counts is not None:
        out["counts"] = item.counts
    if item.anchors:
        points = [anchor.value for anchor in item.anchors]
        if len(set(points)) != len(points):
            problems.add(f"{path}.anchors", "duplicate", "label each scale point once.")
        out["anchors"] = {str(anchor.value): _texts(anchor.text) for anchor in item.anchors}
    if item.options is not None:
        out["options"] = [{"code": option.code, "text": _texts(option.text)} for option in item.options]
    if item.enable_when is not None:
        out["enable_when"] = _condition_input(item.enable_when, f"{path}.enableWhen", problems)
    children = getattr(item, "items", None)
    if children is not None:
        out["items"] = [_item(child, f"{path}.items[{i}]", problems) for i, child in enumerate(children)]
    return out


def _condition_input(condition: QuestionnaireConditionInput, path: str, problems: Problems) -> dict[str, Any]:
    answers = [a for a in (condition.answer_number, condition.answer_boolean, condition.answer_code) if a is not None]
    if len(answers) != 1:
        problems.add(f"{path}.answer", "one_value", "give exactly one of answerNumber, answerBoolean, answerCode.")
    return {"link_id": condition.link_id, "operator": condition.operator.value,
            "answer": answers[0] if answers else None}


def _scoring(scoring: QuestionnaireScoringInput) -> dict[str, Any]:
    low = scoring.low
    satisfied_at = scoring.satisfied_at
    return {"method": scoring.method.value,
            "satisfied_at": int(satisfied_at) if float(satisfied_at).is_integer() else satisfied_at,
            "nps_item": scoring.nps_item, "csat_item": scoring.csat_item,
            "low": None if low is None else {"any_item_at_most": low.any_item_at_most, "nps_at_most": low.nps_at_most}}


def _input(data: QuestionnaireCreateInput | QuestionnaireUpdateInput) -> dict[str, Any]:
    """The input as the resolver takes it. The shape problems only this layer sees are refused together, every
    one of every item (InvalidInput), before anything else is looked at: the definition's own checks
    (core.questionnaire, in the resolver) follow once the shape is right, so the two never mix in one answer."""
    raw = {f: getattr(data, f) for f in ("title", "items", "scoring", "purpose")}
    values = provided(data)
    problems = Problems()
    for name, value in raw.items():
        if value is strawberry.UNSET or value is None:
            continue
        if name in ("title", "purpose"):
            values[name] = _texts(value)
        elif name == "items":
            values[name] = [_item(item, f"items[{i}]", problems) for i, item in enumerate(value)]
        else:
            values[name] = _scoring(value)
    problems.check()
    return values


def _connection(page: Page[QuestionnaireRow]) -> QuestionnaireConnection:
    return QuestionnaireConnection(
        edges=[QuestionnaireEdge(cursor=cursor, node=Questionnaire.of(row)) for cursor, row in page.items],
        page_info=PageInfo.of(page), total_count=page.total)


@strawberry.type
class QuestionnaireQuery:
    @strawberry.field(description="The institution's questionnaire versions (of one status, or of one key), in "
                                  "creation order; 1 to 100 a page.")
    async def questionnaires(
        self, info: Info,
        status: Annotated[QuestionnaireStatus | None, strawberry.argument(description="Only this status.")] = None,
        key: Annotated[strawberry.ID | None, strawberry.argument(description="Only the versions of this "
                                                                             "questionnaire.")] = None,
        first: First = DEFAULT_PAGE_SIZE,
        after: Annotated[str | None, strawberry.argument(description="The endCursor of the previous page.")] = None,
    ) -> QuestionnaireConnection:
        page = await questionnaires.page(info.context, status=None if status is None else str(status.value),
                                         key=uuid_of(key, "key"), first=first, after=after, count=asks_total(info))
        return _connection(page)

    @strawberry.field(description="One questionnaire version. NOT_FOUND when it is not your institution's.")
    async def questionnaire(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The version's id.")],
    ) -> Questionnaire | None:
        return Questionnaire.of(await questionnaires.one(info.context, uuid_of(id)))

    @strawberry.field(description="The questionnaires careloop ships, to adopt with questionnaireAdopt: one per "
                                  "QuestionnaireTemplateCode value, the same for every institution.")
    async def questionnaire_templates(self, info: Info) -> list[QuestionnaireTemplate]:
        return [QuestionnaireTemplate(stored=t) for t in await questionnaires.templates(info.context)]

    @strawberry.field(description="One questionnaire version as a FHIR R4 Questionnaire resource (JSON text): "
                                  "English as translations, our scoring, respondent, subject, anonymity, anchors "
                                  "and counted items in extensions. A != condition (which hides its item while the "
                                  "question is unanswered) is two enableWhen, exists true and !=, enableBehavior "
                                  "all.")
    async def questionnaire_export_fhir(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The version's id.")],
    ) -> str | None:
        return await questionnaires.export_fhir(info.context, uuid_of(id))


# The revision an activation or retirement goes over, as questionnaireUpdate states it (optional here).
_REVISION = Annotated[int | None, strawberry.argument(
    description="The revision you read: a version changed since answers CONFLICT (read it again). Null: whatever "
                "revision is current when the change is made.")]


@strawberry.type
class QuestionnaireMutation:
    @strawberry.mutation(description="A new questionnaire: a draft, version 1 (admins and department heads).")
    async def questionnaire_create(
        self, info: Info,
        input: Annotated[QuestionnaireCreateInput, strawberry.argument(description="The questionnaire.")],
    ) -> Questionnaire | None:
        return Questionnaire.of(await questionnaires.create(info.context, _input(input)))

    @strawberry.mutation(description="Edit the newest version of a questionnaire. Without responses it changes in "
                                     "place; with responses it stays as it is and the edit becomes the next version, "
                                     "a draft (newVersion true). Pass the revision you read: a stale one answers "
                                     "CONFLICT, as do a retired version and an older one.")
    async def questionnaire_update(
        self, info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The version's id.")],
        input: Annotated[QuestionnaireUpdateInput, strawberry.argument(description="What changes.")],
        revision: Annotated[int, strawberry.argument(description="The revision you read.")],
    ) -> QuestionnaireUpdatePayload | None:
        row, new_version = await questionnaires.update(info.context, uuid_of(id), _input(input), revision)
        return QuestionnaireUpdatePayload(questionnaire=Questionnaire.of(row), new_version=new_version)

    @strawberry.mutation(description="Make this version the active one of its questionnaire; the version active "
                                     "until now is retired (each gets its next revision). CONFLICT when it is active "
                                     "already. Pass the revision you read: a stale one answers CONFLICT.")
    async def questionnaire_activate(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The version's id.")],
        revision: _REVISION = None,
    ) -> Questionnaire | None:
        return Questionnaire.of(await questionnaires.activate(info.context, uuid_of(id), revision))

    @strawberry.mutation(description="Retire a version: no more invitations ask it; its responses and figures stay. "
                                     "CONFLICT when it is retired already. Pass the revision you read: a stale one "
                                     "answers CONFLICT.")
    async def questionnaire_retire(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The version's id.")],
        revision: _REVISION = None,
    ) -> Questionnaire | None:
        return Questionnaire.of(await questionnaires.retire(info.context, uuid_of(id), revision))

    @strawberry.mutation(description="Adopt a shipped template: the institution's own copy, active at once. "
                                     "CONFLICT while a copy of it is in use (draft or active).")
    async def questionnaire_adopt(
        self, info: Info,
        template: Annotated[QuestionnaireTemplateCode, strawberry.argument(
            description="Which shipped template to copy (questionnaireTemplates lists them).")],
    ) -> Questionnaire | None:
        return Questionnaire.of(await questionnaires.adopt(info.context, str(template.value)))

    @strawberry.mutation(description="Import a FHIR R4 Questionnaire (JSON text) as a new draft. What careloop "
                                     "cannot represent (display or open-choice items, value sets, several conditions "
                                     "on one item but exists true and != on one question, a bare != (it shows its "
                                     "item while the question is unanswered), initial values...) is refused, "
                                     "BAD_USER_INPUT naming the place in the JSON (field json.item[2].type).")
    async def questionnaire_import_fhir(
        self, info: Info,
        json: Annotated[str, strawberry.argument(description="The Questionnaire resource, at most 200,000 "
                                                             "characters, and within the request body's limit "
                                                             "(64 KiB unless the operator raises "
                                                             "CARELOOP_LIMIT_MAX_BODY_BYTES; over it, "
                                                             "413 PAYLOAD_TOO_LARGE).")],
    ) -> Questionnaire | None:
        return Questionnaire.of(await questionnaires.import_fhir(info.context, json))
