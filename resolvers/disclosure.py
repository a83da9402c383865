"""The accounting of disclosures: what the institution's partners were given of whose file, when,
and for what purpose, for any period up to six years (compliance officers, ``audit: read``).

Each patient a partner read is one disclosure (an event reading a page covers several, listed in the
trail's per-patient index): its date, the partner (the recipient), the patient, the field classes it
returned (the data categories) and the purpose of the grant it was made under (named in the read's
policy rule).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from audit import writer
from audit.events import Action
from audit.reads import PARTNER_GRANT, granted
from core.errors import BadUserInput
from core.principal import PARTNER
from core.validation import check_year
from models import AuditArchive, AuditEvent, AuditPatientIndex, PartnerClient, PartnerGrant
from resolvers import access, pagination
from resolvers.audit_event import check_period, files_of_person, within
from resolvers.context import Context

CURSOR_KIND = "disclosure_index"  # a position in the per-patient index; cursors of event positions are refused


@dataclass(frozen=True)
class Disclosure:
    occurred_at: datetime
    partner_id: uuid.UUID | None
    partner_name: str
    client_id: uuid.UUID | None
    patient_id: uuid.UUID
    data_categories: list[str]
    purpose: str
    grant_id: uuid.UUID | None


async def page(ctx: Context, *, first: int, after: str | None, since: datetime, until: datetime,
               patient_id: uuid.UUID | None = None, partner_id: uuid.UUID | None = None,
               count: bool = False) -> pagination.Page[Disclosure]:
    """Newest first; a fixed number of statements per page (the page, its clients, its grants; the count when
    asked)."""
    # One patient's disclosures are about that patient (on their record, refused or not), as their access report is.
    decision = await access.authorize(ctx, "audit", "read", action=Action.READ, resource_type="disclosure",
                                      patient_id=patient_id)
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    _check_period(since, until)
    await _refuse_archived(ctx, since)
    # One disclosure per patient a partner read, from the trail's per-patient index (an event may cover several).
    await writer.seal(ctx.institution_id)
    query = within(AuditPatientIndex.filter(institution_id=ctx.institution_id, actor_kind=PARTNER, action="read",
                                            outcome="allowed"), since, until)
    if patient_id is not None:
        query = query.filter(patient_id__in=files_of_person(ctx.institution_id, patient_id))  # merged files too
    if partner_id is not None:
        query = query.filter(actor_id__in=list(await PartnerClient.filter(
            institution_id=ctx.institution_id, partner_id=partner_id).values_list("id", flat=True)))
    total = await pagination.count_of(query, count)
    if after:
        query = query.filter(id__lt=pagination.decode_int(CURSOR_KIND, after))
    rows = await query.order_by("-id").limit(first + 1)
    disclosures = await _describe(ctx, rows[:first])
    ctx.reads.note("disclosure", None, patient_id, field_class="audit", rule=decision.rule)
    return pagination.Page([(pagination.encode(CURSOR_KIND, str(row.id)), d)
                            for row, d in zip(rows[:first], disclosures, strict=True)], len(rows) > first, total)


async def _describe(ctx: Context, rows: list[AuditPatientIndex]) -> list[Disclosure]:
    """Each indexed read with its event's field classes and grant: three statements whatever the page size."""
    events = {int(seq): (str(classes), str(rule)) for seq, classes, rule in await AuditEvent.filter(
        institution_id=ctx.institution_id, seq__in=sorted({row.seq for row in rows})
    ).values_list("seq", "field_classes", "policy_rule")}
    client_ids = {row.actor_id for row in rows if row.actor_id}
    clients = {c: (p, str(n)) for c, p, n in await PartnerClient.filter(
        institution_id=ctx.institution_id, id__in=list(client_ids)).values_list("id", "partner_id", "partner__name")}
    grant_of = {seq: granted(rule, PARTNER_GRANT) for seq, (_, rule) in events.items()}
    purposes = dict(await PartnerGrant.filter(institution_id=ctx.institution_id, id__in=[
        g for g in grant_of.values() if g]).values_list("id", "purpose"))
    disclosures = []
    for row in rows:
        partner_id, partner_name = clients.get(row.actor_id) or (None, "")
        classes, _ = events.get(row.seq, ("", ""))
        grant = grant_of.get(row.seq)
        disclosures.append(Disclosure(row.occurred_at, partner_id, partner_name, row.actor_id, row.patient_id,
                                      [c for c in classes.split(",") if c], str(purposes.get(grant, "")), grant))
    return disclosures


async def _refuse_archived(ctx: Context, since: datetime) -> None:
    """A period reaching back into archived events would come back incomplete without a word: refused,
    naming where the database's trail starts (earlier disclosures are in the archive files)."""
    anchor = await AuditArchive.filter(institution_id=ctx.institution_id).order_by("-up_to_seq").first()
    if anchor is None:
        return
    first = await AuditEvent.filter(institution_id=ctx.institution_id, seq=anchor.up_to_seq + 1).first()
    kept_from = first.occurred_at if first is not None else anchor.archived_at
    if since < kept_from:
        raise BadUserInput(f"from: events before {kept_from.isoformat()} are archived (careloop audit archive); "
                           "start the period then or later.", field="from")


def _check_period(since: datetime, until: datetime) -> None:
    check_year(since, "from")
    check_year(until, "to")
    check_period(since, until)
    if since < _years_before(until, 6):
        raise BadUserInput("from: a period of at most six years.", field="from")


def _years_before(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year - years, day=28)
