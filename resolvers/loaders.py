"""DataLoaders for one request, each bound to the caller's institution.

Batch functions filter by institution themselves: a loader never trusts the resolver that
called it to have checked the tenant.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, partial
from typing import Any, Generic, TypeVar

from strawberry.dataloader import DataLoader
from tortoise.queryset import QuerySet

from core import statements
from models import (
    Attachment,
    CarePlanActivity,
    CareTeamMember,
    Contact,
    ContractItem,
    ContractSignature,
    Department,
    FollowUpRule,
    Partner,
    PartnerClient,
    PartnerConsent,
    ResponseAnswer,
    Staff,
    VisitStaff,
)
from models.base import TenantModel

M = TypeVar("M", bound=TenantModel)


class Loaders:
    """Each loader is made on first use: a request uses one or two of them. The named loaders' batch functions hold
    the institution's id, not this object, so they make no reference cycle; those ``made`` for a caller's reach
    hold the context, which ``Context.release`` breaks once the request has answered."""

    def __init__(self, institution_id: uuid.UUID) -> None:
        self.institution_id = institution_id
        self._made: dict[str, DataLoader[Any, Any]] = {}

    @cached_property
    def department(self) -> DataLoader[uuid.UUID, Department | None]:
        return DataLoader(self._by_id(Department))

    @cached_property
    def staff(self) -> DataLoader[uuid.UUID, Staff | None]:
        return DataLoader(self._by_id(Staff))

    @cached_property
    def partner(self) -> DataLoader[uuid.UUID, Partner | None]:
        return DataLoader(self._by_id(Partner))

    @cached_property
    def clients_by_partner(self) -> DataLoader[uuid.UUID, list[PartnerClient]]:
        return DataLoader(self._grouped(PartnerClient, "partner_id"))

    @cached_property
    def contacts_by_patient(self) -> DataLoader[uuid.UUID, list[Contact]]:
        return DataLoader(self._grouped(Contact, "patient_id"))

    async def contacts_once(self, patient_ids: Sequence[uuid.UUID], columns: tuple[str, ...] | None
                            ) -> list[list[Contact]]:
        """``contacts_by_patient``'s answer for ``patient_ids`` in one statement, with only ``columns`` of each row
        (None: whole rows), through no loader: nothing of it is kept for a later load."""
        return await self._grouped(Contact, "patient_id", columns)(patient_ids)

    @cached_property
    def attachments_by_ticket(self) -> DataLoader[uuid.UUID, list[Attachment]]:
        return DataLoader(self._grouped(Attachment, "ticket_id"))

    @cached_property
    def care_team_by_patient(self) -> DataLoader[uuid.UUID, list[Staff]]:
        return DataLoader(partial(_care_team_by_patient, self.institution_id))

    @cached_property
    def consents_by_patient(self) -> DataLoader[uuid.UUID, list[PartnerConsent]]:
        return DataLoader(self._grouped(PartnerConsent, "patient_id"))

    @cached_property
    def staff_by_visit(self) -> DataLoader[uuid.UUID, list[VisitStaff]]:
        return DataLoader(self._grouped(VisitStaff, "visit_id"))

    @cached_property
    def follow_up_rule(self) -> DataLoader[uuid.UUID, FollowUpRule | None]:
        return DataLoader(self._by_id(FollowUpRule))

    @cached_property
    def activities_by_plan(self) -> DataLoader[uuid.UUID, list[CarePlanActivity]]:
        return DataLoader(self._grouped(CarePlanActivity, "plan_id"))

    @cached_property
    def items_by_version(self) -> DataLoader[uuid.UUID, list[ContractItem]]:
        return DataLoader(self._grouped(ContractItem, "contract_version_id", order=("position",)))

    @cached_property
    def signatures_by_version(self) -> DataLoader[uuid.UUID, list[ContractSignature]]:
        return DataLoader(self._grouped(ContractSignature, "contract_version_id", order=("signed_at", "id")))

    @cached_property
    def answers_by_response(self) -> DataLoader[uuid.UUID, list[ResponseAnswer]]:
        return DataLoader(self._grouped(ResponseAnswer, "response_id"))

    def made(self, name: str, load: Callable[[Sequence[Any]], Awaitable[list[Any]]]) -> DataLoader[Any, Any]:
        """A loader made on first use in this request, for batches that depend on the caller's reach (the
        sections of a patient's page): the first caller's batch function serves the whole request."""
        if name not in self._made:
            self._made[name] = DataLoader(load)
        return self._made[name]

    def _by_id(self, model: type[M]) -> Callable[[Sequence[uuid.UUID]], Awaitable[list[M | None]]]:
        """Rows by id, one statement for a batch."""
        def build(institution_id: uuid.UUID, ids: list[uuid.UUID]) -> QuerySet[M]:
            return model.filter(institution_id=institution_id, id__in=ids)

        institution_id = self.institution_id

        async def load(ids: Sequence[uuid.UUID]) -> list[M | None]:
            rows = await statements.select(model, ("by_id", model), build, institution_id=institution_id,
                                           ids=statements.id_list(ids))
            found = {row.id: row for row in rows}
            return [found.get(i) for i in ids]

        return load

    def _grouped(self, model: type[M], key: str, columns: tuple[str, ...] | None = None, *,
                 order: tuple[str, ...] = ("id",)) -> Callable[[Sequence[uuid.UUID]], Awaitable[list[list[M]]]]:
        """The rows of each parent (by ``key``) in ``order`` (by default, creation order), one statement for a batch;
        ``columns``: only those of each row (they must include ``key``)."""
        def build(institution_id: uuid.UUID, parents: list[uuid.UUID]) -> QuerySet[M]:
            query = model.filter(institution_id=institution_id, **{f"{key}__in": parents}).order_by(*order)
            return query if columns is None else query.only(*columns)

        institution_id = self.institution_id

        async def load(parent_ids: Sequence[uuid.UUID]) -> list[list[M]]:
            found: dict[Any, list[M]] = defaultdict(list)
            rows = await statements.select(model, ("grouped", model, key, columns, order), build,
                                           institution_id=institution_id, parents=statements.id_list(parent_ids))
            for row in rows:
                found[getattr(row, key)].append(row)
            return [found[parent] for parent in parent_ids]

        return load



async def _care_team_by_patient(institution_id: uuid.UUID, patient_ids: Sequence[uuid.UUID]) -> list[list[Staff]]:
    found: dict[uuid.UUID, list[Staff]] = defaultdict(list)
    members = CareTeamMember.filter(institution_id=institution_id, patient_id__in=list(patient_ids))
    for member in await members.select_related("staff").order_by("created_at"):
        found[member.patient_id].append(member.staff)
    return [found[pid] for pid in patient_ids]


async def newest_per_parent(query: QuerySet[M], key: str, parent_ids: Sequence[uuid.UUID], order: tuple[str, ...],
                            count: int) -> dict[uuid.UUID, list[M]]:
    """The first ``count`` rows of each parent in ``order``, in two statements whatever the number of parents
    and rows: the keys of every candidate (two narrow columns), then the chosen rows."""
    return (await newest_per_parent_noting(query, key, parent_ids, order, count, None)).rows


@dataclass(frozen=True)
class Newest(Generic[M]):
    """``newest_per_parent_noting``'s answer: the rows chosen, and the values ``noted`` of every candidate (the
    bound aside), each by parent; a parent with no candidate is in neither."""

    rows: dict[uuid.UUID, list[M]]
    noted: dict[uuid.UUID, set[Any]]


async def newest_per_parent_noting(query: QuerySet[M], key: str, parent_ids: Sequence[uuid.UUID],
                                   order: tuple[str, ...], count: int, noted: str | None) -> Newest[M]:
    """``newest_per_parent``, which also gathers the values of column ``noted`` (None: none) of every candidate,
    beyond the bound too (what a file's alerts are, of all of them), at no statement more: the column rides along
    with the candidates' keys."""
    columns = ("id", key) if noted is None else ("id", key, noted)
    candidates = await query.filter(**{f"{key}__in": list(parent_ids)}).order_by(*order).values_list(*columns)
    chosen: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    values: dict[uuid.UUID, set[Any]] = defaultdict(set)
    for row_id, parent, *value in candidates:
        if value:
            values[parent].add(value[0])
        if len(chosen[parent]) < count:
            chosen[parent].append(row_id)
    wanted = [row_id for ids in chosen.values() for row_id in ids]
    rows = {row.id: row for row in await query.filter(id__in=wanted)} if wanted else {}
    return Newest({parent: [rows[i] for i in ids] for parent, ids in chosen.items()}, dict(values))
