"""Answering surveys (FHIR QuestionnaireResponse): through the no-sign-in link, in the portal, or entered by staff
from a phone call or a paper form; staff (doctors, department heads) rating a department on a staff questionnaire,
anonymously; and reading the responses.

An anonymous questionnaire's response is linked to nobody: it shows no patient, visit, ticket or invitation,
only its month and department, and an answerer gets no id back. Free-text answers are read with
``questionnaire_response.text: read`` (department heads, support agents, the patient their own): for anyone
else the field is null with FORBIDDEN.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any, cast

import strawberry

from core.errors import InvalidInput
from core.questionnaire import LINK_ID
from core.validation import Problems
from resolvers import access
from resolvers import questionnaire_response as responses
from resolvers.questionnaire_response import AnswerView, Receipt, ResponseView
from schema.common import DEFAULT_PAGE_SIZE, TOTAL_COUNT, First, Info, PageInfo, asks_total, optional_id, uuid_of
from schema.patient import Patient
from schema.patient import node as patient_node
from schema.questionnaire import Questionnaire
from schema.visit import NAMED_VISIT, Visit, named_visit

MAX_ANSWERS = 200

_AFTER = Annotated[str | None, strawberry.argument(description="The cursor of the previous page's end.")]
_TOKEN = Annotated[str, strawberry.argument(description="The link's token (clq_...), as the message carried it.")]



@strawberry.enum(description="How a response arrived.")
class ResponseSource(Enum):
    PORTAL = strawberry.enum_value("portal", description="The patient answered in the portal.")
    LINK = strawberry.enum_value("link", description="Answered through the invitation's link (no sign-in).")
    PHONE = strawberry.enum_value("phone", description="Taken by phone and entered by staff.")
    PAPER = strawberry.enum_value("paper", description="Written on paper and entered by staff.")
    STAFF = strawberry.enum_value("staff", description="Answered by a staff member (a staff questionnaire).")


@strawberry.enum(description="Where staff took the answers they enter.")
class EnteredSource(Enum):
    PHONE = strawberry.enum_value("phone", description="On a phone call.")
    PAPER = strawberry.enum_value("paper", description="On a paper form.")


@strawberry.input(description="One item's answer: give exactly one value, of the item's kind.")
class SurveyAnswerInput:
    link_id: str = strawberry.field(description="The item (its linkId).")
    number: int | None = strawberry.field(default=None, description="Likert and CSAT 1 to 5, NPS 0 to 10.")
    boolean: bool | None = strawberry.field(default=None, description="A yes/no item: yes true, no false.")
    code: str | None = strawberry.field(default=None, description="A single choice: the option's code.")
    codes: list[str] | None = strawberry.field(default=None, description="A multiple choice: the options' codes.")
    text: str | None = strawberry.field(default=None, description="A free-text item (at most 2,000 characters).")


_ANSWERS = Annotated[list[SurveyAnswerInput], strawberry.argument(
    description="The answers, one per item answered (hidden and blank items left out).")]


def _answers(given: list[SurveyAnswerInput]) -> dict[str, Any]:
    """The answers as ``core.questionnaire`` checks them: link id -> value. What the list's shape gets wrong (an
    item answered twice, an answer without exactly one value) is refused first, every answer at once, each at
    ``answers.<linkId>`` (``answers[<index>]`` for a link id that is none; never a value); the answers' own
    checks (``core.questionnaire.check_answers``: unknown, hidden, required, out of range...) follow once the
    shape is right. A list over ``MAX_ANSWERS`` is refused as a whole (``too_many``), its answers unread."""
    if len(given) > MAX_ANSWERS:
        raise InvalidInput([("answers", "too_many", f"at most {MAX_ANSWERS} answers.")])
    problems = Problems()
    out: dict[str, Any] = {}
    seen: set[str] = set()
    for index, answer in enumerate(given):
        path = f"answers.{answer.link_id}" if LINK_ID.fullmatch(answer.link_id) else f"answers[{index}]"
        values = [v for v in (answer.number, answer.boolean, answer.code, answer.codes, answer.text) if v is not None]
        if len(values) != 1 and not _reported(problems, path, "one_value"):
            problems.add(path, "one_value", "give exactly one value: number, boolean, code, codes or text.")
        if answer.link_id in seen and not _reported(problems, path, "duplicate"):
            problems.add(path, "duplicate", "is answered more than once: give one answer per item.")
        seen.add(answer.link_id)
        if len(values) == 1 and answer.link_id not in out:
            out[answer.link_id] = values[0]
    problems.check()
    return out


def _reported(problems: Problems, path: str, reason: str) -> bool:
    return any((at, why) == (path, reason) for at, why, _ in problems.found)


@strawberry.type(description="What answering told you.")
class SurveyAnswerReceipt:
    receipt: strawberry.Private[Receipt]

    @strawberry.field(description="Whether the answers were kept without any link to you.")
    def anonymous(self) -> bool:
        return self.receipt.anonymous

    @strawberry.field(description="The response's id; null for an anonymous questionnaire (nothing traces it).")
    def response_id(self) -> strawberry.ID | None:
        return optional_id(self.receipt.response_id)

    @strawberry.field(description="Whether someone will get back to the patient about their answers.")
    def follow_up(self) -> bool:
        return self.receipt.follow_up


@strawberry.type(description="What a survey link shows: the questionnaire to answer, nothing about the patient.")
class SurveyByLink:
    found: strawberry.Private[Any]

    @strawberry.field(description="The questionnaire version to answer.")
    def questionnaire(self) -> Questionnaire:
        return Questionnaire.of(self.found.questionnaire)

    @strawberry.field(description="Until when the link may be answered.")
    def expires_at(self) -> datetime:
        return self.found.expires_at


@strawberry.type(description="One item's answer.")
class ResponseAnswer:
    view: strawberry.Private[AnswerView]
    ctx: strawberry.Private[Any]

    @strawberry.field(description="The item (its linkId).")
    def link_id(self) -> str:
        return self.view.row.link_id

    @strawberry.field(description="A rating (Likert, CSAT, NPS), or 1 / 0 for yes / no; null for a choice or "
                                  "free-text item.")
    def number(self) -> float | None:
        return self.view.row.number

    @strawberry.field(description="The chosen options' codes (one for a single choice).")
    def codes(self) -> list[str]:
        return self.view.values

    @strawberry.field(description="A free-text answer; read with questionnaire_response.text: read (without "
                                  "it, null with FORBIDDEN). Null for the other items.")
    def text(self) -> str | None:
        return responses.read_text(self.ctx, self.view)


@strawberry.type(description="One response to a questionnaire version (FHIR QuestionnaireResponse).")
class QuestionnaireResponse:
    view: strawberry.Private[ResponseView]

    @property
    def row(self) -> Any:
        return self.view.row

    @strawberry.field(description="The response's id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field(description="The questionnaire version answered.")
    def questionnaire(self) -> Questionnaire:
        return Questionnaire.of(self.view.questionnaire)

    @strawberry.field(description="Whether it is kept without any link to the patient: a questionnaire flagged "
                                  "anonymous, or one answered by staff (a staff rating names no rater).")
    def anonymous(self) -> bool:
        return self.view.anonymous

    @strawberry.field(description="How it arrived.")
    def source(self) -> ResponseSource:
        return ResponseSource(self.row.source)

    @strawberry.field(description="The institution's local month it was given in (\"2026-12\").")
    def month(self) -> str:
        return str(self.row.month)

    @strawberry.field(description="The score, 0 to 100, as the questionnaire defines it; null without a counted "
                                  "answer.")
    def score(self) -> float | None:
        return self.row.score

    @strawberry.field(description="Whether the score reaches the questionnaire's satisfied mark; null when "
                                  "score is (no counted answer).")
    def satisfied(self) -> bool | None:
        return self.row.satisfied

    @strawberry.field(description="The NPS item's answer (0 to 10); null when the questionnaire names no NPS "
                                  "item or it was left unanswered.")
    def nps(self) -> int | None:
        return self.row.nps

    @strawberry.field(description="The CSAT item's answer (1 to 5); null when the questionnaire names no "
                                  "CSAT item or it was left unanswered.")
    def csat(self) -> int | None:
        return self.row.csat

    @strawberry.field(description="Under the questionnaire's threshold (a complaint ticket was opened when it is "
                                  "identified).")
    def low(self) -> bool:
        return bool(self.row.low)

    @strawberry.field(description="The department it is about; null when its invitation named none.")
    def department_id(self) -> strawberry.ID | None:
        return optional_id(self.row.department_id)

    @strawberry.field(description="The clinician it is about, if the questionnaire is about one; null when "
                                  "anonymous (a clinician's few answers would pick out their patients: the report "
                                  "shows clinicians' cells of five or more only).")
    def clinician_id(self) -> strawberry.ID | None:
        return None if self.view.anonymous else optional_id(self.row.clinician_id)

    @strawberry.field(description="The staff member who entered it (phone, paper); null when the respondent "
                                  "answered themselves, a partner entered it, or the questionnaire is anonymous.")
    def entered_by_id(self) -> strawberry.ID | None:
        return optional_id(self.row.entered_by_id)

    @strawberry.field(description="The visit it is about; null when anonymous.")
    def visit_id(self) -> strawberry.ID | None:
        return optional_id(self.row.visit_id)

    @strawberry.field(description=f"The visit it is about; null when anonymous or about none. {NAMED_VISIT}")
    async def visit(self, info: Info) -> Visit | None:
        return await named_visit(info.context, None if self.view.anonymous else self.row.visit_id)

    @strawberry.field(description="The ticket it is about; null when anonymous.")
    def ticket_id(self) -> strawberry.ID | None:
        return optional_id(self.row.ticket_id)

    @strawberry.field(description="The complaint ticket its low score opened, if any.")
    def follow_up_ticket_id(self) -> strawberry.ID | None:
        return optional_id(self.row.follow_up_ticket_id)

    @strawberry.field(description="The patient, with the fields your role may read; null when anonymous or outside "
                                  "your reach.")
    async def patient(self, info: Info) -> Patient | None:
        if self.row.patient_id is None:
            return None
        return patient_node(info.context, await access.visible_patient(info.context, self.row.patient_id))

    @strawberry.field(description="The answers, in the questionnaire's order (batched for a page).")
    async def answers(self, info: Info) -> list[ResponseAnswer]:
        return [ResponseAnswer(view=a, ctx=info.context) for a in await responses.answers_of(info.context, self.view)]

    @strawberry.field(description="Only the free-text answers (comments), in the questionnaire's order: null with "
                                  "FORBIDDEN without questionnaire_response.text: read.")
    async def comments(self, info: Info) -> list[ResponseAnswer] | None:
        responses.require_text(info.context, self.view)
        return [ResponseAnswer(view=a, ctx=info.context) for a in await responses.answers_of(info.context, self.view)
                if a.row.text is not None]


@strawberry.type(description="A response on a page.")
class QuestionnaireResponseEdge:
    cursor: str = strawberry.field(description="Pass as `after` for the responses after this one.")
    node: QuestionnaireResponse = strawberry.field(description="The response.")


@strawberry.type(description="A page of responses.")
class QuestionnaireResponseConnection:
    edges: list[QuestionnaireResponseEdge] = strawberry.field(description="The responses with their cursors.")
    page_info: PageInfo = strawberry.field(description="Where the page ends.")
    total_count: int | None = strawberry.field(
        default=None, description=TOTAL_COUNT + " Here: an anonymous response counts only once it is listed (its "
                                                "month closed, its cell large enough), as the pages show it.")

    @strawberry.field(description="The responses of the page.")
    def nodes(self) -> list[QuestionnaireResponse]:
        return [edge.node for edge in self.edges]


@strawberry.type
class QuestionnaireResponseQuery:
    @strawberry.field(description="What a survey link shows (no sign-in): the questionnaire and until when. A "
                                  "forged, expired or answered link is BAD_USER_INPUT on token with "
                                  "extensions.reason invalid, expired or answered.")
    async def survey_by_link(self, info: Info, token: _TOKEN) -> SurveyByLink | None:
        return SurveyByLink(found=await responses.by_link(info.context, token))

    @strawberry.field(description="One response in your reach (see questionnaireResponses); NOT_FOUND otherwise.")
    async def questionnaire_response(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The response.")],
    ) -> QuestionnaireResponse | None:
        return QuestionnaireResponse(view=await responses.one(info.context, uuid_of(id)))

    @strawberry.field(description="One response in your reach as a FHIR R4 QuestionnaireResponse (JSON text): "
                                  "questionnaire is the version's url|version, choices are codings of the "
                                  "questionnaire's url. subject and authored only for an identified response (an "
                                  "anonymous one carries only its month, in an extension). Free text only with "
                                  "questionnaire_response.text: read; otherwise its item has no answer and the "
                                  "withheld extension. NOT_FOUND outside your reach.")
    async def questionnaire_response_export_fhir(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The response.")],
    ) -> str | None:
        return await responses.export_fhir(info.context, uuid_of(id))

    @strawberry.field(description="Responses in your reach (admins: the institution's; department heads: their "
                                  "departments'; support agents: those linked to tickets they work; patients: "
                                  "their own identified ones). An anonymous response is listed only once its month "
                                  "has closed, and where its questionnaire, department and month hold the minimum "
                                  "number of responses.")
    async def questionnaire_responses(
        self, info: Info, first: First = DEFAULT_PAGE_SIZE, after: _AFTER = None,
        questionnaire_id: Annotated[strawberry.ID | None, strawberry.argument(
            description="One questionnaire version's.")] = None,
        department_id: Annotated[strawberry.ID | None, strawberry.argument(
            description="One department's.")] = None,
        ticket_id: Annotated[strawberry.ID | None, strawberry.argument(
            description="Those about a ticket, or that opened it.")] = None,
    ) -> QuestionnaireResponseConnection:
        page = await responses.responses(
            info.context, questionnaire_id=uuid_of(questionnaire_id, "questionnaireId"),
            department_id=uuid_of(department_id, "departmentId"), ticket_id=uuid_of(ticket_id, "ticketId"),
            first=first, after=after, count=asks_total(info))
        return _connection(page)

    @strawberry.field(description="The responses in your reach with a free-text answer, to read what patients "
                                  "wrote (select comments): needs questionnaire_response.text: read as well "
                                  "(department heads, support agents, patients their own).")
    async def questionnaire_response_comments(
        self, info: Info, first: First = DEFAULT_PAGE_SIZE, after: _AFTER = None,
        questionnaire_id: Annotated[strawberry.ID | None, strawberry.argument(
            description="One questionnaire version's.")] = None,
        department_id: Annotated[strawberry.ID | None, strawberry.argument(
            description="One department's.")] = None,
    ) -> QuestionnaireResponseConnection:
        page = await responses.responses(
            info.context, questionnaire_id=uuid_of(questionnaire_id, "questionnaireId"),
            department_id=uuid_of(department_id, "departmentId"), ticket_id=None, first=first, after=after,
            commented=True, count=asks_total(info))
        return _connection(page)


def _connection(page: Any) -> QuestionnaireResponseConnection:
    return QuestionnaireResponseConnection(
        edges=[QuestionnaireResponseEdge(cursor=cursor, node=QuestionnaireResponse(view=view))
               for cursor, view in page.items],
        page_info=PageInfo.of(page), total_count=page.total)


@strawberry.type
class QuestionnaireResponseMutation:
    @strawberry.mutation(description="Answer through a survey link (no sign-in); once. A forged, expired or answered "
                                     "link is BAD_USER_INPUT on token with extensions.reason, and nothing is kept.")
    async def survey_answer_by_link(self, info: Info, token: _TOKEN, answers: _ANSWERS) -> SurveyAnswerReceipt | None:
        return SurveyAnswerReceipt(receipt=await responses.answer_by_link(info.context, token, _answers(answers)))

    @strawberry.mutation(description="Answer one of your own invitations (patients in the portal); once.")
    async def survey_answer(
        self, info: Info, invitation_id: Annotated[strawberry.ID, strawberry.argument(
            description="The id of one of your own invitations (mySurveyInvitations); another's answers NOT_FOUND.")],
        answers: _ANSWERS,
    ) -> SurveyAnswerReceipt | None:
        return SurveyAnswerReceipt(receipt=await responses.answer_own(
            info.context, uuid_of(invitation_id, "invitationId"), _answers(answers)))

    @strawberry.mutation(description="Answer a staff questionnaire's active version about a department (doctors and "
                                     "department heads: the doctors' rating of a department's nursing), anonymously: "
                                     "the response names neither you nor anyone, only the department and the month, "
                                     "and you get no id back. Once per questionnaire, department and month (a second "
                                     "answer is CONFLICT); a questionnaire not answered by staff, or not the active "
                                     "version, is BAD_USER_INPUT on questionnaireId.")
    async def survey_staff_answer(
        self, info: Info,
        questionnaire_id: Annotated[strawberry.ID, strawberry.argument(
            description="The staff questionnaire's active version.")],
        department_id: Annotated[strawberry.ID, strawberry.argument(description="The department rated.")],
        answers: _ANSWERS,
    ) -> SurveyAnswerReceipt | None:
        return SurveyAnswerReceipt(receipt=await responses.answer_as_staff(
            info.context, uuid_of(questionnaire_id, "questionnaireId"), uuid_of(department_id, "departmentId"),
            _answers(answers)))

    @strawberry.mutation(description="Enter answers taken by phone or on paper (nurses, front desk), recorded as such "
                                     "and naming who entered them; once per invitation.")
    async def survey_response_enter(
        self, info: Info,
        invitation_id: Annotated[strawberry.ID, strawberry.argument(description="The patient's invitation.")],
        answers: _ANSWERS,
        source: Annotated[EnteredSource, strawberry.argument(description="Where the answers were taken.")],
    ) -> SurveyAnswerReceipt | None:
        return SurveyAnswerReceipt(receipt=await responses.enter(
            info.context, uuid_of(invitation_id, "invitationId"), _answers(answers), cast(str, source.value)))
