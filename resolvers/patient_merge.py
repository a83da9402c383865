"""Two files of one person merged into one (issue 16).

Everything that points at the duplicate file moves to the surviving one: every table with a foreign key to
``patient`` (found in Tortoise's model metadata, so a table added later is not forgotten), files merged into the
duplicate before, the duplicate's care team... The duplicate is kept, unchanged but for its status (merged), a
pointer to the survivor and the time, and stays readable so the merge can be reviewed. One transaction; the
trail records the merge on both files with the number of rows moved per table, never their content.

Unique constraints decide what cannot move: a row whose unique partner already exists on the survivor (the
same staff member on both care teams) stays on the merged file and is counted as kept; a one-to-one link
(the portal account) on both files, or the two files disagreeing on a consent to share with one partner,
refuses the merge (CONFLICT) until someone settles it.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise import Tortoise
from tortoise.models import Model
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action
from core.errors import BadUserInput, Conflict, Forbidden
from core.principal import PARTNER
from models import Communication, PartnerConsent, Patient
from models.fields import tags_from_db, tags_to_db
from resolvers import access, versioning
from resolvers import communication as communications
from resolvers import survey as surveys
from resolvers.access import PatientView
from resolvers.context import Context

REASON = "merge"  # the reason code of both records of a merge
MERGE_RESOURCE = "patient_merge"  # the survivor's record: resource_id is the merged file's id


@dataclass(frozen=True)
class Link:
    """A column that points at a patient file."""

    model: type[Model]
    column: str  # the database column, e.g. patient_id
    one_to_one: bool
    unique_with: tuple[tuple[str, ...], ...]  # the other columns of each unique constraint it is part of

    @property
    def table(self) -> str:
        return str(self.model._meta.db_table)


@dataclass(frozen=True)
class MergeResult:
    survivor: PatientView
    merged: PatientView
    moved: dict[str, int]  # table -> rows moved to the survivor
    kept: dict[str, int]  # table -> rows left on the merged file (their unique partner was on the survivor)


def patient_links() -> list[Link]:
    """Every foreign key to ``patient`` in the models, from Tortoise's metadata."""
    links = []
    for model in Tortoise.apps["careloop"].values():
        meta = model._meta
        for name in sorted(meta.fk_fields | meta.o2o_fields):
            field = meta.fields_map[name]
            if field.related_model is not Patient:
                continue
            unique = tuple(tuple(_column(model, other) for other in group if other != name)
                           for group in meta.unique_together if name in group)
            links.append(Link(model, f"{name}_id", name in meta.o2o_fields or bool(field.unique), unique))
    return sorted(links, key=lambda link: (link.table, link.column))


def _column(model: type[Model], name: str) -> str:
    return f"{name}_id" if name in model._meta.fk_fields | model._meta.o2o_fields else name


async def _refused_on_both(ctx: Context, survivor_id: uuid.UUID | None, duplicate_id: uuid.UUID | None) -> None:
    """A merge refused by role: one refusal on the trail of both files it named, as a merge is (found in review: it
    named the duplicate alone, so the survivor's access report did not show the attempt); its ``subjects`` list
    each id asked for, with its file only when that is one of the institution's, as ``access.find_patient``'s
    refusal names it (found in review too: another institution's file id entered this trail's per-patient index),
    and for a partner, which reads its own trail, none. One statement more, on a refusal only."""
    asked = [i for i in dict.fromkeys((duplicate_id, survivor_id)) if i is not None]
    on_file: set[uuid.UUID] = set()
    if ctx.require_principal().kind != PARTNER:  # a partner reads its own trail: it would learn which ids are files
        found = await Patient.filter(institution_id=ctx.institution_id, id__in=asked).values_list("id", flat=True)
        on_file = {uuid.UUID(str(i)) for i in found}
    subjects = frozenset((i, i if i in on_file else None) for i in asked)
    if len(subjects) > 1:
        await access.deny(ctx, Action.UPDATE, "patient", reason="forbidden", subjects=subjects)
    else:
        (resource_id, patient_id) = next(iter(subjects)) if subjects else (None, None)
        await access.deny(ctx, Action.UPDATE, "patient", resource_id, patient_id, reason="forbidden")


async def merge(ctx: Context, survivor_id: uuid.UUID | None, duplicate_id: uuid.UUID | None, *,
                survivor_version: int | None = None, duplicate_version: int | None = None) -> MergeResult:
    decision = ctx.decide("patient", "merge")
    if not decision.allowed:
        await _refused_on_both(ctx, survivor_id, duplicate_id)
        raise Forbidden()
    if survivor_id is not None and survivor_id == duplicate_id:
        raise BadUserInput("duplicateId: give two different files.", field="duplicateId")
    survivor = await access.find_patient(ctx, survivor_id, action=Action.UPDATE, field="survivorId")
    duplicate = await access.find_patient(ctx, duplicate_id, action=Action.UPDATE, field="duplicateId")
    for view, version, name in ((survivor, survivor_version, "survivorVersion"),
                                (duplicate, duplicate_version, "duplicateVersion")):
        if version is not None and version != view.row.version:
            raise Conflict(f"{name}: the file changed since you read it; read it again.", field=name)
    links = patient_links()
    moved: dict[str, int] = {}
    kept: dict[str, int] = {}
    now = datetime.now(UTC)
    async with in_transaction():
        # Both files locked first, in id order: a booking or another merge of either waits for this one (found in
        # review: a booking landed on the merged file; crossed merges deadlocked), and crossed merges cannot.
        for patient_id in sorted((survivor.row.id, duplicate.row.id)):
            await Patient.filter(id=patient_id).select_for_update().only("id").first()
        # What cannot be merged, read under the files' locks, which a consent's change and an account's opening wait
        # for (found in review: read before them, a withdrawal of consent on the duplicate committed in between was
        # kept on the merged file while the survivor's consent stood; an account opened in between broke the move)
        await _check_mergeable(ctx, links, survivor.row.id, duplicate.row.id)
        await communications.hold_messages_of(ctx.institution_id, [survivor.row.id, duplicate.row.id])
        consent = await _stricter_consent(survivor.row.id, duplicate.row.id)
        for link in links:
            count, left = await _move(ctx, link, survivor.row.id, duplicate.row.id)
            if count:
                moved[link.table] = moved.get(link.table, 0) + count
            if left:
                kept[link.table] = kept.get(link.table, 0) + left
        await _one_greeting_or_campaign_message_each(ctx, survivor.row.id)
        asked_once = await surveys.ask_once_after_merge(ctx.institution_id, survivor.row.id)
        await versioning.update_versioned(duplicate.row, duplicate.row.version, "patient", status=access.MERGED,
                                          merged_into_id=survivor.row.id, merged_at=now)
        await versioning.update_versioned(survivor.row, survivor.row.version, "patient", **consent)
        records = _records(ctx, decision, survivor.row.id, duplicate.row.id, moved, kept)
        records += [dataclasses.replace(access.write_record(
            ctx, Action.UPDATE, "survey_invitation", invitation_id, patient_id=survivor.row.id,
            fields=frozenset({"status"}), decision=decision), reason=REASON) for invitation_id in asked_once]
        if consent:
            records.append(dataclasses.replace(access.write_record(
                ctx, Action.UPDATE, "patient", survivor.row.id, patient_id=survivor.row.id,
                fields=frozenset(consent), decision=decision), reason=REASON))
        await writer.append(records)
    views = await access.views(ctx, [survivor.row, duplicate.row])
    return MergeResult(views[0], views[1], moved, kept)


async def _one_greeting_or_campaign_message_each(ctx: Context, survivor_id: uuid.UUID) -> None:
    """Both files queued for one campaign, or greeted for one day: the person gets one of them
    (``communication.refuse_twins``; found in review: the moved message went as well, the frequency cap letting a
    second one through). Care messages all stay: each is about its own appointment, visit, call, contract or
    invitation, which moved with it."""
    queued = await Communication.filter(institution_id=ctx.institution_id, patient_id=survivor_id, status="queued",
                                        purpose__in=sorted(communications.NON_CARE))
    await communications.refuse_twins(ctx.institution_id, queued)


async def _stricter_consent(survivor_id: uuid.UUID, duplicate_id: uuid.UUID) -> dict[str, Any]:
    """What the survivor's contact consent becomes: what both files allow (consent, purposes, channels), read
    under the merge's locks; only the columns that change. A withdrawal made on either file stands (found in
    review: an unsubscribe on the duplicate was lost, and the survivor's wider consent went on)."""
    rows = {row["id"]: row for row in await Patient.filter(id__in=[survivor_id, duplicate_id]).values(
        "id", "contact_consent", "contact_purposes", "contact_channels")}
    kept, other = rows[survivor_id], rows[duplicate_id]
    stricter: dict[str, Any] = {"contact_consent": bool(kept["contact_consent"] and other["contact_consent"])}
    for column in ("contact_purposes", "contact_channels"):
        both = set(tags_from_db(kept[column])) & set(tags_from_db(other[column]))
        stricter[column] = tags_to_db(sorted(both))
    return {column: value for column, value in stricter.items() if value != kept[column]}


async def _check_mergeable(ctx: Context, links: list[Link], survivor_id: uuid.UUID,
                           duplicate_id: uuid.UUID) -> None:
    """Refuse what no rule can settle: a one-to-one link on both files, consents that disagree."""
    for link in links:
        if link.one_to_one:
            both = await link.model.filter(**{f"{link.column}__in": [survivor_id, duplicate_id]}).count()
            if both > 1:
                raise Conflict(f"duplicateId: both files have a {link.table.replace('_', ' ')}; close one first.",
                               field="duplicateId", reason="one_per_file")
    consents = await PartnerConsent.filter(institution_id=ctx.institution_id,
                                           patient_id__in=[survivor_id, duplicate_id]).values_list(
        "patient_id", "partner_id", "granted")
    said: dict[Any, set[bool]] = {}
    for _, partner, granted in consents:
        said.setdefault(partner, set()).add(bool(granted))
    if any(len(answers) > 1 for answers in said.values()):
        raise Conflict("duplicateId: the files disagree on a consent to share with a partner; settle it first.",
                       field="duplicateId", reason="consents_disagree")


async def _move(ctx: Context, link: Link, survivor_id: uuid.UUID, duplicate_id: uuid.UUID) -> tuple[int, int]:
    """Point the duplicate's rows of one link at the survivor; (moved, kept on the merged file)."""
    rows = link.model.filter(**{link.column: duplicate_id})
    if "institution_id" in link.model._meta.fields_map or "institution" in link.model._meta.fk_fields:
        rows = rows.filter(institution_id=ctx.institution_id)
    if link.model is Patient:  # files merged into the duplicate before now point at the survivor
        rows = rows.exclude(id=survivor_id)
    blocked: set[Any] = set()
    for others in link.unique_with:  # rows whose unique partner already exists on the survivor stay behind
        taken = set(await link.model.filter(**{link.column: survivor_id}).values_list(*others))
        for row in await rows.values_list("id", *others):
            if tuple(row[1:]) in taken:
                blocked.add(row[0])
    movable = rows.exclude(id__in=sorted(blocked)) if blocked else rows
    moved = await movable.update(**{link.column: survivor_id})
    return int(moved), len(blocked)


def _records(ctx: Context, decision: Any, survivor_id: uuid.UUID, duplicate_id: uuid.UUID,
             moved: dict[str, int], kept: dict[str, int]) -> list[Any]:
    """One record on each file: the merged file's change of status, and on the survivor what moved (table
    names and counts, never content)."""
    on_merged = access.write_record(ctx, Action.UPDATE, "patient", duplicate_id, patient_id=duplicate_id,
                                    fields=frozenset({"status"}), decision=decision)
    counts = frozenset({*(f"{table}:{n}" for table, n in moved.items()),
                        *(f"kept.{table}:{n}" for table, n in kept.items())})
    on_survivor = access.write_record(ctx, Action.UPDATE, MERGE_RESOURCE, duplicate_id, patient_id=survivor_id,
                                      decision=decision)
    return [dataclasses.replace(on_merged, reason=REASON, fields_read=frozenset({"status", "merged_into"})),
            dataclasses.replace(on_survivor, reason=REASON, fields_read=counts)]
