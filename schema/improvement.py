"""The service-improvement list."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Annotated

import strawberry

from resolvers import improvement as improvements
from resolvers.improvement import ImprovementView
from resolvers.improvement import SurveyCitation as CitationView
from schema.common import (
    CURSOR,
    DEFAULT_PAGE_SIZE,
    EDGES,
    NODES,
    PAGE_INFO,
    After,
    First,
    Info,
    OrderDirection,
    PageInfo,
    Version,
    asks_total,
    provided,
    uuid_of,
)
from schema.questionnaire import LocalizedText


@strawberry.enum(description="Where an improvement item stands.")
class ImprovementStatus(Enum):
    OPEN = strawberry.enum_value("open", description="On the list, work not started.")
    IN_PROGRESS = strawberry.enum_value("in_progress", description="The measure is being carried out.")
    DONE = strawberry.enum_value("done", description="Rectified.")
    CANCELLED = strawberry.enum_value("cancelled", description="Dropped: no longer to be done.")


@strawberry.enum(description="Where the problem was found.")
class ImprovementSource(Enum):
    TICKET = strawberry.enum_value("ticket", description="Tickets showed it (the default; see ticketIds).")
    SURVEY = strawberry.enum_value("survey", description="A satisfaction survey's results showed it (see "
                                                         "surveyCitation).")
    INTERNAL_CHECK = strawberry.enum_value(
        "internal_check", description="The institution's own inspection or audit found it.")


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
    month: str = strawberry.field(description="The month of the results, YYYY-MM, from the year 2000 on, not one "
                                              "to come.")


@strawberry.type(description="A service problem on the improvement list.")
class ImprovementItem:
    id: strawberry.ID = strawberry.field(description="The item's id.")
    problem: str = strawberry.field(description="The problem found (organisational text, kept in clear).")
    measure: str = strawberry.field(description="What will be done about it; empty until decided.")
    department_id: strawberry.ID = strawberry.field(description="The department responsible.")
    deadline: date = strawberry.field(description="The date it must be rectified by.")
    status: ImprovementStatus = strawberry.field(description="Where it stands.")
    source: ImprovementSource = strawberry.field(description="Where the problem was found.")
    overdue: bool = strawberry.field(description="Past its deadline and neither done nor cancelled.")
    ticket_ids: list[strawberry.ID] = strawberry.field(description="Tickets that showed the problem.")
    survey_citation: SurveyCitation | None = strawberry.field(
        description="The survey finding it cites (source SURVEY); null otherwise.")
    updated_at: datetime = strawberry.field(description="When it last changed.")
    version: int = strawberry.field(description="Pass back as `version` when you change it.")

    @classmethod
    def of(cls, view: ImprovementView) -> ImprovementItem:
        row = view.row
        return cls(id=strawberry.ID(str(row.id)), problem=row.problem, measure=row.measure,
                   department_id=strawberry.ID(str(row.department_id)), deadline=row.deadline,
                   status=ImprovementStatus(row.status), source=ImprovementSource(row.source),
                   overdue=view.overdue, ticket_ids=[strawberry.ID(str(t)) for t in view.ticket_ids],
                   survey_citation=SurveyCitation.of(view.citation), updated_at=row.updated_at,
                   version=row.version)


@strawberry.type(description="One improvement item of a page, with its cursor.")
class ImprovementEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: ImprovementItem = strawberry.field(description="The improvement item.")


@strawberry.type(description="A page of improvement items, soonest deadline first unless another order is asked "
                             "for.")
class ImprovementConnection:
    edges: list[ImprovementEdge] = strawberry.field(description=EDGES)
    nodes: list[ImprovementItem] = strawberry.field(description=NODES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int = strawberry.field(description="The number of items that match the filter in your reach, "
                                                    "counted when asked for.")


@strawberry.enum(description="What the improvement list can be sorted by.")
class ImprovementOrderField(Enum):
    DEADLINE = strawberry.enum_value("deadline", description="By deadline (the default, soonest first).")
    UPDATED_AT = strawberry.enum_value("updated_at", description="By last change.")


@strawberry.input(description="The order of the improvement list; ties are broken by id. A cursor works only with "
                              "the order it came from.")
class ImprovementOrder:
    field: ImprovementOrderField = strawberry.field(description="What to sort by.")
    direction: OrderDirection = strawberry.field(default=OrderDirection.ASC, description="Ascending or descending.")


@strawberry.input(description="A new improvement item.")
class ImprovementCreateInput:
    problem: str = strawberry.field(description="The problem found, 1-500 characters.")
    department_id: strawberry.ID = strawberry.field(description="The department responsible (one you keep the list "
                                                                "for).")
    deadline: date = strawberry.field(description="The date it must be rectified by: today or later (the "
                                                  "institution's date).")
    measure: str | None = strawberry.field(default=strawberry.UNSET,
                                           description="What will be done, at most 1000 characters.")
    source: ImprovementSource | None = strawberry.field(default=strawberry.UNSET,
                                                        description="Where it was found; TICKET when left out.")
    ticket_ids: list[strawberry.ID] | None = strawberry.field(default=strawberry.UNSET,
                                                              description="Tickets that showed it, at most 200.")
    survey_citation: SurveyCitationInput | None = strawberry.field(
        default=strawberry.UNSET, description="Required when source is SURVEY, refused otherwise.")


@strawberry.input(description="Changes to an improvement item; ticketIds are added to the linked tickets.")
class ImprovementUpdateInput:
    problem: str | None = strawberry.field(default=strawberry.UNSET, description="The problem, 1-500 characters.")
    measure: str | None = strawberry.field(default=strawberry.UNSET,
                                           description="What will be done, at most 1000 characters.")
    department_id: strawberry.ID | None = strawberry.field(default=strawberry.UNSET,
                                                           description="Move it to another department you keep the "
                                                                       "list for.")
    deadline: date | None = strawberry.field(default=strawberry.UNSET, description="A new deadline: today or later "
                                                                               "(the institution's date) unless "
                                                                               "the item is closed by this change.")
    status: ImprovementStatus | None = strawberry.field(default=strawberry.UNSET, description="Where it stands now.")
    ticket_ids: list[strawberry.ID] | None = strawberry.field(default=strawberry.UNSET,
                                                              description="More tickets to link (added to those "
                                                                          "linked; at most 200 in all).")


@strawberry.type
class ImprovementQuery:
    @strawberry.field(description="The improvement list you keep, soonest deadline first.")
    async def improvement_items(
        self, info: Info, first: First = DEFAULT_PAGE_SIZE, after: After = None,
        status: Annotated[ImprovementStatus | None, strawberry.argument(
            description="Only items in this status; null: all.")] = None,
        overdue: Annotated[bool, strawberry.argument(
            description="Only items past their deadline and neither done nor cancelled.")] = False,
        department_id: Annotated[strawberry.ID | None, strawberry.argument(
            description="Only this department's items; null: every department you keep the list for.")] = None,
        order_by: Annotated[ImprovementOrder | None, strawberry.argument(
            description="The order; null: soonest deadline first.")] = None,
    ) -> ImprovementConnection:
        order = None if order_by is None else improvements.ImprovementOrder(str(order_by.field.value),
                                                                            str(order_by.direction.value))
        found = await improvements.page(info.context, first=first, after=after,
                                        status=str(status.value) if status else None, overdue=overdue,
                                        department_id=uuid_of(department_id, "departmentId"), order=order,
                                        count=asks_total(info))
        edges = [ImprovementEdge(cursor=c, node=ImprovementItem.of(v)) for c, v in found.page.items]
        return ImprovementConnection(edges=edges, nodes=[e.node for e in edges], page_info=PageInfo.of(found.page),
                                     total_count=found.total or 0)


@strawberry.type
class ImprovementMutation:
    @strawberry.mutation(description="Put a problem on the improvement list.")
    async def improvement_create(self, info: Info, input: Annotated[ImprovementCreateInput, strawberry.argument(
            description="The new item.")]) -> ImprovementItem | None:
        data = provided(input)
        citation = data.pop("survey_citation", None)
        if citation is not None:
            data["survey_citation"] = {"questionnaire_key": uuid_of(citation.questionnaire_key,
                                                                    "surveyCitation.questionnaireKey"),
                                       "month": citation.month}
        return ImprovementItem.of(await improvements.create(info.context, data))

    @strawberry.mutation(description="Change an improvement item or link more tickets to it. Pass the version "
                                     "you read: a stale one answers CONFLICT.")
    async def improvement_update(
        self, info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The item's id.")],
        input: Annotated[ImprovementUpdateInput, strawberry.argument(
            description="The changes; fields left out stay as they are.")],
        version: Version = None,
    ) -> ImprovementItem | None:
        return ImprovementItem.of(await improvements.update(info.context, uuid_of(id), provided(input), version))
