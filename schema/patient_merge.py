"""Merging two files of one person: the mutation and what it answers."""

from __future__ import annotations

from typing import Annotated

import strawberry

from resolvers import patient_merge as merges
from schema.common import Info, uuid_of
from schema.patient import Patient, node


@strawberry.type(description="How many records of one kind moved, or stayed on the merged file.")
class PatientMergeCount:
    table: str = strawberry.field(description="The kind of record, by its table name (visit, contact, ticket...).")
    count: int = strawberry.field(description="How many.")


@strawberry.type(description="The outcome of a merge: the surviving file, the merged one and what moved.")
class PatientMergePayload:
    survivor: Patient | None = strawberry.field(description="The surviving file, which now holds the records; "
                                                            "never null.")
    merged: Patient | None = strawberry.field(description="The duplicate, kept with status MERGED and mergedInto "
                                                          "set; read-only; never null.")
    moved: list[PatientMergeCount] = strawberry.field(description="The records moved to the survivor, per kind.")
    kept: list[PatientMergeCount] = strawberry.field(
        description="Records left on the merged file because the survivor had their like already (the same staff "
                    "member on both care teams), per kind.")


def _counts(counts: dict[str, int]) -> list[PatientMergeCount]:
    return [PatientMergeCount(table=table, count=count) for table, count in sorted(counts.items())]


@strawberry.type
class PatientMergeMutation:
    @strawberry.mutation(description="Merge a duplicate file into the surviving one (both in your reach): every "
                                     "record of the duplicate (visits, contacts, appointments, tickets...) moves to "
                                     "the survivor, the duplicate is kept as MERGED pointing at it, in one "
                                     "transaction, on the audit trail of both. CONFLICT when either is merged "
                                     "already, both have a portal account, their consents to a partner disagree, or "
                                     "a version is stale.")
    async def patient_merge(
        self, info: Info,
        survivor_id: Annotated[strawberry.ID, strawberry.argument(
            description="The file that stays (NOT_FOUND when missing or outside your reach).")],
        duplicate_id: Annotated[strawberry.ID, strawberry.argument(
            description="The file merged into it (NOT_FOUND when missing or outside your reach).")],
        survivor_version: Annotated[int | None, strawberry.argument(
            description="The survivor's version you read: changed since answers CONFLICT. Null: the current "
                        "one.")] = None,
        duplicate_version: Annotated[int | None, strawberry.argument(
            description="The duplicate's version you read: changed since answers CONFLICT. Null: the current "
                        "one.")] = None,
    ) -> PatientMergePayload | None:
        ctx = info.context
        result = await merges.merge(ctx, uuid_of(survivor_id, "survivorId"), uuid_of(duplicate_id, "duplicateId"),
                                    survivor_version=survivor_version, duplicate_version=duplicate_version)
        return PatientMergePayload(survivor=node(ctx, result.survivor), merged=node(ctx, result.merged),
                                   moved=_counts(result.moved), kept=_counts(result.kept))
