"""Campaigns: one message to a segment or a cohort, previewed, then queued in batches with progress.

The audience is a filter (a segment, a department, a code recorded on a visit), never a list of names:
the author sees counts only. Department heads address the patients of their own departments; admins
the whole institution. A preview runs the consent gate over the audience as it stands and answers how
many would get the message and how many each gate reason would stop. Someone other than its author
approves a draft (four eyes, the institutions' approval rule for using customer information) before it
is started. Starting a campaign only marks it sending: the worker (``advance``) queues a batch at a time
in its own short transaction, so no lock is held for the whole audience and a restart resumes at the
saved cursor; the outbox then delivers.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tortoise.expressions import F, Subquery
from tortoise.functions import Count
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import SELF_APPROVAL, Action
from core.errors import ILLEGAL_TRANSITION, BadUserInput, Conflict, Forbidden
from core.ids import uuid7
from core.validation import Problems, clean_text, clinical_code, one_of
from models import Campaign, Communication, Department, Patient, VisitCode
from models.patient import SEGMENTS
from models.visit import CODE_SYSTEMS
from resolvers import access, pagination
from resolvers import communication as communications
from resolvers import message_template as templates
from resolvers.context import Context

BATCH = 500  # patients queued per transaction
CAUSE_OF = {"campaign": "campaign", "greeting": "holiday_greeting"}
CURSOR_KIND = "campaign"
NOT_APPROVED = "not_approved"  # refused: a draft started before someone other than its author approved it


def _now() -> datetime:
    return datetime.now(UTC)


# -- the audience -----------------------------------------------------------------------------


def audience_query(institution_id: uuid.UUID, audience: dict[str, Any]) -> QuerySet[Patient]:
    """The campaign's patients: active files of the institution that match every criterion."""
    query = Patient.filter(institution_id=institution_id, status="active")
    if audience.get("segment"):
        query = query.filter(segments__contains=f"|{audience['segment']}|")
    if audience.get("department_ids"):
        query = query.filter(department_id__in=audience["department_ids"])
    if audience.get("code_index"):
        codes = VisitCode.filter(institution_id=institution_id, code_bidx=audience["code_index"])
        query = query.filter(id__in=Subquery(codes.values("patient_id")))
    return query


async def audience_of(ctx: Context, data: dict[str, Any], problems: Problems | None = None) -> dict[str, Any]:
    """The audience as stored: the criteria checked (every problem of their shape at once, with those already
    in ``problems``), then the department looked up and the author's reach folded in."""
    problems = problems or Problems()
    audience = _audience_shape(problems, data)
    problems.check()
    department = data.get("department_id")
    if department is not None and not await Department.exists(id=department, institution_id=ctx.institution_id):
        raise BadUserInput("audience.departmentId: no such department.", field="audience.departmentId")
    kept = access.departments_kept(ctx)
    if kept is None:
        if department is not None:
            audience["department_ids"] = [str(department)]
    else:  # a department head: their own departments only
        own = sorted(str(d) for d in kept)
        if department is not None and str(department) not in own:
            await access.deny(ctx, Action.CREATE, "campaign", reason="other_department")
            raise Forbidden("audience.departmentId: a department head addresses their own departments.",
                            field="audience.departmentId")
        audience["department_ids"] = [str(department)] if department is not None else own
        if not own:
            raise BadUserInput("audience: you head no department.", field="audience")
    if "code" in audience:
        audience["code_index"] = access.blind_index(ctx, "code", f"{audience['code_system']}|{audience['code']}")
    return audience


def _audience_shape(problems: Problems, data: dict[str, Any]) -> dict[str, Any]:
    """The criteria that need no lookup, in the input's order; each invalid one becomes a problem."""
    audience: dict[str, Any] = {}
    if data.get("segment") is not None:
        with problems.collect("audience.segment"):
            audience["segment"] = one_of(data["segment"], SEGMENTS, "audience.segment")
    if data.get("code") is not None:
        system = data.get("code_system") or "icd10"
        with problems.collect("audience.code"):  # as visits record it, else it matches nobody (found in review)
            if system in CODE_SYSTEMS:
                audience["code"] = clinical_code(system, data["code"], "audience.code")
        with problems.collect("audience.codeSystem"):
            audience["code_system"] = one_of(system, CODE_SYSTEMS, "audience.codeSystem")
    return audience


@dataclass(frozen=True)
class Preview:
    audience: int  # active patients the filter matches
    recipients: int  # ... of whom the gate lets the message through now
    refused: dict[str, int]  # why the others would not get it


async def _preview(institution_id: uuid.UUID, purpose: str, audience: dict[str, Any]) -> Preview:
    ids = list(await audience_query(institution_id, audience).values_list("id", flat=True))
    now = _now()
    rows = [Communication(id=uuid7(), institution_id=institution_id, patient_id=pid, purpose=purpose,
                          cause=CAUSE_OF[purpose], due_at=now, status="queued") for pid in ids]
    facts = await communications.load_facts(rows)
    refused: Counter[str] = Counter()
    for row in rows:
        verdict = communications.gate(facts.recipient(row), purpose, now, facts.quiet(institution_id),
                                      non_care_nearby=facts.nearby(row, now, sending=False),
                                      cap=facts.settings[institution_id].non_care_cap)
        if verdict.refusal is not None:
            refused[verdict.refusal] += 1
    return Preview(len(ids), len(ids) - sum(refused.values()), dict(sorted(refused.items())))


async def preview(ctx: Context, purpose: str, data: dict[str, Any]) -> Preview:
    await access.authorize(ctx, "campaign", "read", action=Action.READ, resource_type="campaign")
    purpose = one_of(purpose, tuple(CAUSE_OF), "purpose")
    return await _preview(ctx.institution_id, purpose, await audience_of(ctx, data))


# -- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    sent: int
    delivered: int
    failed: int
    waiting: int  # queued, not yet handed over
    refused_at_sending: dict[str, int]


async def campaigns(ctx: Context, *, first: int, after: str | None, count: bool = False) -> pagination.Page[Campaign]:
    await access.authorize(ctx, "campaign", "read", action=Action.READ, resource_type="campaign")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    query = Campaign.filter(institution_id=ctx.institution_id)
    return await pagination.by_id(query, first=first, after=after, kind=CURSOR_KIND, count=count, newest_first=True)


async def get(ctx: Context, campaign_id: uuid.UUID | None) -> Campaign:
    await access.authorize(ctx, "campaign", "read", action=Action.READ, resource_type="campaign",
                           resource_id=campaign_id)
    return await _find(ctx, campaign_id, Action.READ)


async def progress_of(campaign_ids: list[uuid.UUID]) -> dict[uuid.UUID, Progress]:
    """Delivery figures of campaigns from their messages, in one grouped statement."""
    found = await (Communication.filter(campaign_id__in=campaign_ids).annotate(n=Count("id"))
                   .group_by("campaign_id", "status", "refusal").values_list("campaign_id", "status", "refusal", "n"))
    counts: dict[uuid.UUID, Counter[str]] = {cid: Counter() for cid in campaign_ids}
    refusals: dict[uuid.UUID, Counter[str]] = {cid: Counter() for cid in campaign_ids}
    for cid, status, refusal, n in found:
        counts[cid][str(status)] += int(n)
        if status == "refused" and refusal:
            refusals[cid][str(refusal)] += int(n)
    return {cid: Progress(c["sent"] + c["delivered"], c["delivered"], c["failed"], c["queued"],
                          dict(refusals[cid])) for cid, c in counts.items()}


async def _find(ctx: Context, campaign_id: uuid.UUID | None, action: Action) -> Campaign:
    return await access.find_in_institution(ctx, Campaign, campaign_id, action=action, resource_type="campaign")


# -- writing ----------------------------------------------------------------------------------


async def create(ctx: Context, data: dict[str, Any]) -> Campaign:
    decision = await access.authorize(ctx, "campaign", "create", action=Action.CREATE, resource_type="campaign")
    problems = Problems()  # every problem of the input at once, in its order, before anything is looked up
    name = purpose = ""
    with problems.collect("name"):
        name = clean_text(data.get("name", ""), field="name", max_length=100, min_length=1)
    with problems.collect("purpose"):
        purpose = one_of(data.get("purpose", ""), tuple(CAUSE_OF), "purpose")
    subject, body = templates.checked_text(CAUSE_OF.get(purpose, "campaign"), "any", data.get("subject") or "",
                                           data.get("body", ""), problems)
    audience = await audience_of(ctx, data.get("audience") or {}, problems)
    async with in_transaction():
        row = await Campaign.create(id=uuid7(), institution_id=ctx.institution_id, name=name, purpose=purpose,
                                    cause=CAUSE_OF[purpose], subject=subject, body=body, audience=audience,
                                    author_id=ctx.require_principal().user_id)
        await writer.append([access.write_record(ctx, Action.CREATE, "campaign", row.id,
                                                 fields=frozenset({"name", "purpose", "audience", "subject", "body"}),
                                                 decision=decision)])
    return row


async def approve(ctx: Context, campaign_id: uuid.UUID | None, version: int | None) -> Campaign:
    """Four eyes before patients' contact details are used in bulk (the institutions' approval rule for using customer
    information): someone other than the author approves a draft, and only an approved draft is started. Those who may
    start it approve it, within the same reach (a department head: a campaign addressed within their departments).
    The author is FORBIDDEN, reason ``self_approval``, the refusal recorded; a campaign not a draft, or approved
    already, is CONFLICT ``illegal_transition``. The campaign has no edit: what was approved is what is sent. Like
    ``start``, the write goes through only on the version read (and on a draft not yet approved), so of an approval
    racing another, a start or a cancel, one wins and the other is CONFLICT at ``version``."""
    decision = await access.authorize(ctx, "campaign", "approve", action=Action.UPDATE, resource_type="campaign",
                                      resource_id=campaign_id)
    row = await _find(ctx, campaign_id, Action.UPDATE)
    await _check_author_reach(ctx, row)
    if ctx.actor.id == row.author_id:
        await access.deny(ctx, Action.UPDATE, "campaign", row.id, reason=SELF_APPROVAL)
        raise Forbidden("id: a campaign is approved by someone other than its author.", field="id",
                        reason=SELF_APPROVAL)
    if row.status != "draft" or row.approved_at is not None:
        state = "approved already" if row.status == "draft" else row.status
        raise Conflict(f"id: the campaign is {state}; only a draft not yet approved is approved.", field="id",
                       reason=ILLEGAL_TRANSITION)
    now = _now()
    async with in_transaction():
        won = await Campaign.filter(id=row.id, status="draft", approved_at__isnull=True,
                                    version=_expected(row, version)).update(
            approved_by_id=ctx.actor.id, approved_at=now, version=F("version") + 1, updated_at=now)
        if won != 1:
            raise _stale()
        await writer.append([access.write_record(ctx, Action.UPDATE, "campaign", row.id,
                                                 fields=frozenset({"approved_by", "approved_at"}), decision=decision)])
    return await Campaign.get(id=row.id)


async def start(ctx: Context, campaign_id: uuid.UUID | None, version: int | None) -> Campaign:
    """Send a draft someone other than its author approved (``approve``; else CONFLICT ``not_approved``, nothing
    written): the recipient count is fixed now (and recorded); the worker queues it in batches."""
    decision = await access.authorize(ctx, "campaign", "update", action=Action.UPDATE, resource_type="campaign",
                                      resource_id=campaign_id)
    row = await _find(ctx, campaign_id, Action.UPDATE)
    await _check_author_reach(ctx, row)
    if row.status != "draft":
        raise Conflict(f"id: the campaign is {row.status}; only a draft is started.", field="id",
                       reason=ILLEGAL_TRANSITION)
    if row.approved_at is None:
        raise Conflict("id: the campaign is not approved yet: someone other than its author approves it first "
                       "(campaignApprove).", field="id", reason=NOT_APPROVED)
    recipients = await audience_query(ctx.institution_id, row.audience).count()
    now = _now()
    async with in_transaction():
        won = await Campaign.filter(id=row.id, status="draft", approved_at__isnull=False,
                                    version=_expected(row, version)).update(
            status="sending", recipients=recipients, started_at=now, version=F("version") + 1, updated_at=now)
        if won != 1:
            raise _stale()
        await writer.append([access.write_record(ctx, Action.UPDATE, "campaign", row.id,
                                                 fields=frozenset({"status", "recipients"}), decision=decision)])
    ctx.services.messages.scheduled.set()
    return await Campaign.get(id=row.id)


async def cancel(ctx: Context, campaign_id: uuid.UUID | None, version: int | None) -> Campaign:
    """Stop a campaign, also one completed whose messages are not all sent yet: nothing more is queued, and what is
    queued and not yet sent is cancelled."""
    decision = await access.authorize(ctx, "campaign", "update", action=Action.UPDATE, resource_type="campaign",
                                      resource_id=campaign_id)
    row = await _find(ctx, campaign_id, Action.UPDATE)
    await _check_author_reach(ctx, row)
    # Completed means every message is queued, not sent: while some still wait (quiet hours, a slow gateway) it can
    # be stopped (found in review: a campaign with a typo started at 22:00 could not be stopped before 08:00).
    waiting = row.status == "completed" and await Communication.filter(
        institution_id=ctx.institution_id, key__startswith=_key_prefix(row.id), status="queued").exists()
    if row.status not in ("draft", "sending") and not waiting:
        raise Conflict(f"id: the campaign is {row.status} already.", field="id", reason=ILLEGAL_TRANSITION)
    now = _now()
    async with in_transaction():
        won = await Campaign.filter(id=row.id, status=row.status, version=_expected(row, version)).update(
            status="cancelled", finished_at=now, version=F("version") + 1, updated_at=now)
        if won != 1:
            raise _stale()
        await communications.cancel_queued(ctx.institution_id, _key_prefix(row.id))
        await writer.append([access.write_record(ctx, Action.UPDATE, "campaign", row.id,
                                                 fields=frozenset({"status"}), decision=decision)])
    return await Campaign.get(id=row.id)


async def _check_author_reach(ctx: Context, row: Campaign) -> None:
    """A department head approves, starts or cancels only campaigns addressed within their departments."""
    kept = access.departments_kept(ctx)
    if kept is None:
        return
    own = {str(d) for d in kept}
    if not row.audience.get("department_ids") or not set(row.audience["department_ids"]) <= own:
        await access.deny(ctx, Action.UPDATE, "campaign", row.id, reason="other_department")
        raise Forbidden("id: the campaign addresses patients outside your departments.", field="id")


def _expected(row: Campaign, version: int | None) -> int:
    return row.version if version is None else version


def _stale() -> Conflict:
    return Conflict("version: the campaign changed since you read it; read it again.", field="version")


def _key_prefix(campaign_id: uuid.UUID) -> str:
    return f"campaign:{campaign_id}:"


# -- the worker -------------------------------------------------------------------------------


async def sending() -> bool:
    """Whether a campaign is being queued (the worker comes back at once while one is)."""
    return await Campaign.exists(status="sending")


async def advance(now: datetime | None = None, *, batch: int = BATCH) -> int:
    """Queue the next batch of every sending campaign (each batch its own transaction); answers how many
    messages were scheduled. A campaign whose audience is exhausted is completed."""
    scheduled = 0
    for row in await Campaign.filter(status="sending").order_by("started_at"):
        scheduled += await _queue_batch(row, now or _now(), batch)
    return scheduled


async def _queue_batch(row: Campaign, now: datetime, batch: int) -> int:
    query = audience_query(row.institution_id, row.audience)
    if row.cursor:
        query = query.filter(id__gt=uuid.UUID(row.cursor))
    patients = list(await query.order_by("id").limit(batch).values_list("id", "full_name"))
    requests = [communications.Request(f"{_key_prefix(row.id)}{pid}", row.cause, pid, now,
                                       {"patient_name": str(name)}, campaign_id=row.id)
                for pid, name in patients]
    async with in_transaction():
        current = await Campaign.filter(id=row.id, status="sending").select_for_update().first()
        if current is None or current.cursor != row.cursor:
            return 0  # cancelled meanwhile, or another worker took this batch
        done = await communications.schedule_many(row.institution_id, requests) if requests else []
        refused = Counter(current.refused) + Counter(r.refusal for r in done if r.status == "refused" and r.refusal)
        columns: dict[str, Any] = {"queued": current.queued + sum(r.status == "queued" for r in done),
                                   "refused": dict(refused), "updated_at": now}
        if patients:
            columns["cursor"] = str(patients[-1][0])
        if len(patients) < batch:
            columns.update(status="completed", finished_at=now)
        await Campaign.filter(id=row.id).update(**columns)
    return len(done)

