"""The service-improvement list."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum

import strawberry

from resolvers import improvement as improvements
from resolvers.improvement import ImprovementView
from resolvers.improvement import SurveyCitation as CitationView
from schema.common import DEFAULT_PAGE_SIZE, Info, PageInfo, provided, uuid_of
from schema.questionnaire import LocalizedText


@strawberry.enum(description="Where an improvement item stands.")
class ImprovementStatus(Enum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    CANCELLED = "cancelled"


@strawberry.enum(description="Where the problem was found.")
class ImprovementSource(Enum):
    TICKET = "ticket"
    SURVEY = "survey"
    INTERNAL_CHECK = "internal_check"


@strawberry.type(description="The survey finding an item cites: a questionnaire's results in a month, in the item's "
                               "department (aggregates, never one response).")
class SurveyCitation:
    questionnaire_key: strawberry.ID = strawberry.field(description="The questionnaire (its key: every version).")
    month: str = strawberry.field(description="The month of the results (\"2026-12\").")
    title: LocalizedText = strawberry.field(description="The questionnaire's title (its newest version's).")
    version: int = strawberry.field(description="The questionnaire's newest version.")

    @classmethod
    def of(cls, view: CitationView | None) -> SurveyCitation | None:
        if view is None:
            return None
        return cls(questionnaire_key=strawberry.ID(str(view.questionnaire_key)), month=view.month,
                   title=LocalizedText.of(view.title), version=view.version)


@strawberry.input(description="The survey finding a new item cites (its source must be SURVEY).")
class SurveyCitationInput:
    questionnaire_key: strawberry.ID = strawberry.field(description="A questionnaire of the institution (its key).")
    month: str = strawberry.field(description="The month of the results, YYYY-MM, not one to come.")


@strawberry.type(description="A service problem on the improvement list.")
class ImprovementItem:
    id: strawberry.ID
    problem: str
    measure: str
    department_id: strawberry.ID = strawberry.field(description="The department responsible.")
    deadline: date
    status: ImprovementStatus
    source: ImprovementSource
    overdue: bool = strawberry.field(description="Past its deadline and neither done nor cancelled.")
    ticket_ids: list[strawberry.ID] = strawberry.field(description="Tickets that showed the problem.")
    survey_citation: SurveyCitation | None = strawberry.field(
        description="The survey finding it cites (source SURVEY); null otherwise.")
    updated_at: datetime

    @classmethod
    def of(cls, view: ImprovementView) -> ImprovementItem:
        row = view.row
        return cls(id=strawberry.ID(str(row.id)), problem=row.problem, measure=row.measure,
                   department_id=strawberry.ID(str(row.department_id)), deadline=row.deadline,
                   status=ImprovementStatus(row.status), source=ImprovementSource(row.source),
                   overdue=view.overdue, ticket_ids=[strawberry.ID(str(t)) for t in view.ticket_ids],
                   survey_citation=SurveyCitation.of(view.citation), updated_at=row.updated_at)


@strawberry.type
class ImprovementEdge:
    cursor: str
    node: ImprovementItem


@strawberry.type(description="A page of improvement items, soonest deadline first.")
class ImprovementConnection:
    edges: list[ImprovementEdge]
    page_info: PageInfo


@strawberry.input(description="A new improvement item.")
class ImprovementCreateInput:
    problem: str
    department_id: strawberry.ID
    deadline: date
    measure: str | None = strawberry.UNSET
    source: ImprovementSource | None = strawberry.UNSET
    ticket_ids: list[strawberry.ID] | None = strawberry.UNSET
    survey_citation: SurveyCitationInput | None = strawberry.field(
        default=strawberry.UNSET, description="Required when source is SURVEY, refused otherwise.")


@strawberry.input(description="Changes to an improvement item; ticketIds are added to the linked tickets.")
class ImprovementUpdateInput:
    problem: str | None = strawberry.UNSET
    measure: str | None = strawberry.UNSET
    department_id: strawberry.ID | None = strawberry.UNSET
    deadline: date | None = strawberry.UNSET
    status: ImprovementStatus | None = strawberry.UNSET
    ticket_ids: list[strawberry.ID] | None = strawberry.UNSET


@strawberry.type
class ImprovementQuery:
    @strawberry.field(description="The improvement list you keep, soonest deadline first.")
    async def improvement_items(self, info: Info, first: int = DEFAULT_PAGE_SIZE, after: str | None = None,
                                status: ImprovementStatus | None = None, overdue: bool = False,
                                department_id: strawberry.ID | None = None) -> ImprovementConnection:
        page = await improvements.page(info.context, first=first, after=after,
                                       status=status.value if status else None, overdue=overdue,
                                       department_id=uuid_of(department_id, "departmentId"))
        return ImprovementConnection(
            edges=[ImprovementEdge(cursor=c, node=ImprovementItem.of(v)) for c, v in page.items],
            page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor))


@strawberry.type
class ImprovementMutation:
    @strawberry.mutation(description="Put a problem on the improvement list.")
    async def improvement_create(self, info: Info, input: ImprovementCreateInput) -> ImprovementItem | None:
        data = provided(input)
        citation = data.pop("survey_citation", None)
        if citation is not None:
            data["survey_citation"] = {"questionnaire_key": uuid_of(citation.questionnaire_key,
                                                                    "surveyCitation.questionnaireKey"),
                                       "month": citation.month}
        return ImprovementItem.of(await improvements.create(info.context, data))

    @strawberry.mutation(description="Change an improvement item or link more tickets to it.")
    async def improvement_update(self, info: Info, id: strawberry.ID,
                                 input: ImprovementUpdateInput) -> ImprovementItem | None:
        return ImprovementItem.of(await improvements.update(info.context, uuid_of(id), provided(input)))
