"""Survey scores, reports and statistics: aggregates computed in SQL, never a response loaded.

Every figure is per questionnaire VERSION (a version's scoring defines its score), department and
month (and clinician when asked). SQL returns counts, sums and sums of squares grouped by those keys
(and counts per answer value for the items); ``core.statistics`` turns them into estimates, intervals
and tests. A report costs a fixed number of statements whatever the number of responses.

Definitions:
- month: a response's local month (``QuestionnaireResponse.month``); an invitation's: the local month of
  its ``send_at``. Invited: the invitations of the month already due (send_at before now) that were not
  cancelled or refused by the consent gate (they never went out); answered: those of them answered.
  The response rate is answered / invited, so it never exceeds 100 %;
- score: the mean of the responses' 0-100 scores, with a 95 % t interval; satisfied: the share (percent)
  of scored responses that were satisfied, with a 95 % Wilson interval; NPS: promoters (9-10) minus
  detractors (0-6) in percent of the NPS answers, with the trinomial's normal interval; CSAT: the share
  (percent) of CSAT answers of 4 or 5, Wilson interval; an item: its mean (numeric items, t interval)
  and how many responses gave each value or option;
- the small-cell rule (primary suppression): a figure computed from fewer responses (or answers) than
  ``SurveySettings.min_cell`` is not shown (status TOO_FEW_RESPONSES, values null);
- complementary suppression, so that no hidden figure can be worked back by subtraction. The cells of the
  report, per version, department and month (and clinician), are the only figures released: everything
  else is a sum of them.
  * a department's month is the sum of its clinicians' cells (and of the cell of responses about no
    clinician). When the hidden clinicians of a shown department hold some but fewer than min_cell
    responses between them (what the department minus the shown clinicians would give away), the next
    smallest clinician is hidden too (status PROTECTS_SMALL_CELL), until the hidden ones hold at least
    min_cell. The same for every figure on its own, with its own count (the score's scored responses, an
    item's answers): the hidden parts of a shown figure hold none or at least min_cell. For an anonymous
    version, whose hidden rows' counts are told nowhere, no hidden clinician stands alone either, and the
    hidden ones hold at least min_cell even where they might hold none (found in review: the department
    minus the shown clinicians was the one hidden clinician's 0, none of their invited patients answered);
    a clinician of more than min_cell protects first (PROTECTS says "at least min_cell": beside cells of
    none, one of exactly min_cell would tell they hold none). Which cells are
    hidden depends on the data only, never on who asks or how (a clinician asked for alone is hidden
    exactly as in the breakdown: their colleagues are read to decide, and for an anonymous version those
    with invitations only);
  * the control chart (every version, one or all departments) and the comparisons' groups (every
    version, months added up, a department or all, a clinician or all) count only the cells the report
    shows for that figure: a hidden cell's responses are left out (``withheld`` says how many), so a sum
    minus the shown cells, or one period minus an overlapping one, gives nothing that is hidden;
  * counts: a row's responses are shown always (that someone answered, not what), and so are its invited
    and answered, but for an anonymous questionnaire (below: its hidden row's responses are not told either, nor
    how many a chart's month or a comparison's group left out); a figure's own count (responses scored,
    answering an item) only where the row is shown, since the count of answers to a conditional item tells
    what was answered to the item it depends on (which is why a conditional item is hidden with the item it
    depends on);
- an anonymous questionnaire (found in review: read twice, a report told when an answer came): a version whose
  responses name nobody (``names_nobody``: flagged anonymous, or answered by staff), the one rule the response
  list, a response read by id and a version's responseCount follow too. Its current
  month is left out of every figure, counts and ``withheld`` included, until it closes: read twice, a live
  month gave its newest response away by subtraction, and its counts the moment it came. A month's invited
  and answered are shown only where its invitations are a figure of their own (at least min_cell, and
  suppressed among clinicians like the others, in a shown row) and none of its links can still be answered
  (an answer to last month's invitation moves last month's answered count): otherwise they would tell, with
  the invitation list, which patient answered, and when. For the same reason a hidden row's responses are not
  told (found in review: a department's one response, from its one invited patient), nor ``withheld`` by a chart
  or a comparison of a key with an anonymous version (it is a hidden cell's count where one cell is hidden).
  A too-small row of one answered on invitations is listed only where its cell had invitations that month
  (``_listed``: in a month without, the row said an earlier invitation was answered then);
- comparisons: the two groups must not share a response (months, departments and clinicians all
  overlapping): the tests assume independent samples;
- target: ``SurveySettings.satisfaction_target`` (percent satisfied); a row meets it when its satisfied
  share is at least the target.

Access: ``survey_report: read``; department heads see their departments (another department is
FORBIDDEN, recorded as other_department), admins the whole institution. One audited read per department
asked about (or one for all of them).
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Mapping, Set
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, NamedTuple, TypeVar

from tortoise.expressions import Case, F, Q, Subquery, When
from tortoise.functions import Count, Sum
from tortoise.models import Model
from tortoise.queryset import QuerySet

from audit.events import Action
from core import questionnaire as definitions
from core import statistics
from core.errors import BadUserInput, Forbidden
from models import Department, Questionnaire, QuestionnaireResponse, ResponseAnswer, Staff, SurveyInvitation
from models import SurveySettings as SurveySettingsRow
from resolvers import access
from resolvers import institution as institutions
from resolvers.context import Context
from resolvers.report import month_start

MAX_MONTHS = 36
NOT_SENT = ("cancelled", "refused")  # invitations that never reached the patient
ITEM_KINDS = ("likert", "nps", "csat", "yes_no", "choice", "multi_choice")  # reported items (no text)
ORDINAL_KINDS = ("likert", "nps", "csat", "yes_no")  # comparable by Mann-Whitney U
SCALES = {**definitions.RANGES, "yes_no": (0, 1)}
ALPHAS = (0.0001, 0.5)

Cell = tuple[uuid.UUID, uuid.UUID | None, str, uuid.UUID | None]  # version, department, month, clinician
_M = TypeVar("_M", bound=Model)
SHOWN, TOO_FEW, PROTECTS = statistics.SHOWN, statistics.TOO_FEW, statistics.PROTECTS
ROW = "row"  # the measure of a row itself: its responses
INVITED = "invited"  # the measure of a row's invitation counts: its invitations


# -- what the API answers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    responses: int | None  # behind the figure; None where the row is hidden
    status: str  # SHOWN, TOO_FEW or PROTECTS: the values are None unless SHOWN
    value: float | None = None
    low: float | None = None
    high: float | None = None

    @property
    def shown(self) -> bool:
        return self.status == SHOWN


@dataclass(frozen=True)
class ItemFigures:
    link_id: str
    kind: str
    responses: int | None  # responses that answered it; None where the row is hidden
    status: str
    mean: Estimate | None  # numeric items
    distribution: list[tuple[str, int]] | None  # (value or option code, responses), None when not shown

    @property
    def shown(self) -> bool:
        return self.status == SHOWN


@dataclass(frozen=True)
class ReportRow:
    questionnaire_id: uuid.UUID
    version: int
    department_id: uuid.UUID | None
    clinician_id: uuid.UUID | None
    month: str
    invited: int | None  # None where withheld (an anonymous questionnaire's)
    answered: int | None
    responses: int | None  # None in an anonymous questionnaire's hidden row
    status: str
    score: Estimate
    satisfied: Estimate
    nps: Estimate
    csat: Estimate
    meets_target: bool | None
    items: list[ItemFigures]

    @property
    def response_rate(self) -> float | None:
        return 100 * self.answered / self.invited if self.invited and self.answered is not None else None

    @property
    def shown(self) -> bool:
        return self.status == SHOWN


@dataclass(frozen=True)
class Version:
    questionnaire_id: uuid.UUID
    version: int
    method: str
    satisfied_at: float
    items: list[dict[str, Any]]
    anonymous: bool  # its responses name nobody (``names_nobody``)
    invited: bool  # answered on invitations (by patients or their family), not by staff


@dataclass(frozen=True)
class Report:
    questionnaire_key: uuid.UUID
    first: str
    last: str
    min_cell: int
    satisfaction_target: int
    versions: list[Version]
    rows: list[ReportRow]


@dataclass(frozen=True)
class Group:
    """One side of a comparison: a department (or the caller's reach), a clinician, months first to last."""

    department_id: uuid.UUID | None
    clinician_id: uuid.UUID | None
    first: str
    last: str


@dataclass(frozen=True)
class GroupFigures:
    responses: int  # behind the figures: those of the cells the report shows
    withheld: int | None  # of the group, left out: in cells the report hides; None for an anonymous questionnaire
    mean: float | None
    sd: float | None

    @property
    def shown(self) -> bool:
        return self.responses > 0


@dataclass(frozen=True)
class Comparison:
    test: str  # welch_t | mann_whitney_u
    item_link_id: str | None
    alpha: float
    a: GroupFigures
    b: GroupFigures
    statistic: float | None = None
    df: float | None = None
    p_value: float | None = None
    difference: float | None = None
    difference_low: float | None = None
    difference_high: float | None = None
    cohens_d: float | None = None
    hedges_g: float | None = None
    rank_biserial: float | None = None

    @property
    def shown(self) -> bool:
        return self.a.shown and self.b.shown

    @property
    def different(self) -> bool | None:
        return None if self.p_value is None else self.p_value < self.alpha


@dataclass(frozen=True)
class ChartPoint:
    month: str
    responses: int  # with a satisfied / not satisfied verdict, in the cells the report shows
    withheld: int | None  # left out: in cells the report hides; None for an anonymous questionnaire
    shown: bool
    percent: float | None = None
    low: float | None = None
    high: float | None = None
    out_of_control: bool | None = None


@dataclass(frozen=True)
class ControlChart:
    questionnaire_key: uuid.UUID
    department_id: uuid.UUID | None
    first: str
    last: str
    min_cell: int
    centre: float | None
    points: list[ChartPoint]


# -- the three reads ---------------------------------------------------------------------------------


async def report(ctx: Context, key: uuid.UUID, department_id: uuid.UUID | None, clinician_id: uuid.UUID | None,
                 first: str, last: str, by_clinician: bool = False) -> Report:
    reach = await _authorize(ctx, [(department_id, "departmentId")])
    months = _months(first, last)
    versions = await _versions(ctx, key)
    await _check_subjects(ctx, department_id, clinician_id)
    settings = await _settings(ctx)
    per_clinician = by_clinician or clinician_id is not None
    # a clinician's cells are hidden or not by their colleagues' too: read them all, show the one asked for
    everyone = await _scope(ctx, versions, _departments(reach, department_id))
    invited = await _invitations(everyone, await _month_edges(ctx, months), per_clinician)
    responses = await _responses(everyone, months, per_clinician)
    several = sorted({item["link_id"] for v in versions for item in definitions.questions(v.items)
                      if item.get("kind") == "multi_choice"})
    values, answering = await _answers(everyone, months, per_clinician, several)
    by_id = {v.questionnaire_id: v for v in versions}
    measures = {cell: _measures(responses.get(cell, {}), by_id[cell[0]], cell, answering,
                                invited.get(cell, NOT_INVITED)) for cell in set(responses) | set(invited)}
    statuses = _statuses(measures, per_clinician, settings.min_cell, set(everyone.anonymous))
    asked = {cell for cell in measures if clinician_id is None or cell[3] == clinician_id}
    cells = sorted((c for c in asked if _listed(c, by_id[c[0]], invited, statuses[c])),
                   key=lambda c: (c[2], by_id[c[0]].version, str(c[1] or ""), str(c[3] or "")))
    rows = [_row(cell, by_id[cell[0]], invited.get(cell, NOT_INVITED), responses.get(cell), values, answering,
                 statuses[cell], settings) for cell in cells]
    _note(ctx, department_id)
    return Report(key, months[0], months[-1], settings.min_cell, settings.satisfaction_target, versions, rows)


async def compare(ctx: Context, key: uuid.UUID, item_link_id: str | None, a: Group, b: Group,
                  alpha: float) -> Comparison:
    reach = await _authorize(ctx, [(a.department_id, "groupA.departmentId"),
                                     (b.department_id, "groupB.departmentId")])
    months = [_months(g.first, g.last, prefix) for g, prefix in ((a, "groupA."), (b, "groupB."))]
    if not (math.isfinite(alpha) and ALPHAS[0] <= alpha <= ALPHAS[1]):
        raise BadUserInput(f"alpha: from {ALPHAS[0]} to {ALPHAS[1]}.", field="alpha")
    versions = await _versions(ctx, key)
    if item_link_id is not None:
        _ordinal_item(versions, item_link_id)
    for group, prefix in ((a, "groupA."), (b, "groupB.")):
        await _check_subjects(ctx, group.department_id, group.clinician_id, prefix)
    _apart(reach, a, b, months)
    settings = await _settings(ctx)
    scopes = [await _scope(ctx, versions, _departments(reach, g.department_id), g.clinician_id) for g in (a, b)]
    # a clinician's cells are decided among their colleagues' as the report decides them, invited ones included
    edges = [await _month_edges(ctx, m) if g.clinician_id is not None and _any_anonymous(versions) else []
             for g, m in zip((a, b), months, strict=True)]
    if item_link_id is None:
        samples = [await _score_sums(scope, m, e, settings.min_cell)
                   for scope, m, e in zip(scopes, months, edges, strict=True)]
        found = _welch(samples, alpha)
    else:
        counts = [await _item_counts(scope, m, e, item_link_id, settings.min_cell)
                  for scope, m, e in zip(scopes, months, edges, strict=True)]
        found = _mann_whitney(item_link_id, counts, alpha)
    _note(ctx, a.department_id, b.department_id)
    if _any_anonymous(versions):
        found = replace(found, a=replace(found.a, withheld=None), b=replace(found.b, withheld=None))
    return found


async def control_chart(ctx: Context, key: uuid.UUID, department_id: uuid.UUID | None, first: str,
                        last: str) -> ControlChart:
    reach = await _authorize(ctx, [(department_id, "departmentId")])
    months = _months(first, last)
    versions = await _versions(ctx, key)
    await _check_subjects(ctx, department_id, None)
    settings = await _settings(ctx)
    scope = await _scope(ctx, versions, _departments(reach, department_id))
    verdicts = await _verdicts(scope, months, settings.min_cell)
    shown = [m for m in months if verdicts.get(m, (0, 0, 0))[0] > 0]
    chart = statistics.p_chart([verdicts[m][:2] for m in shown]) if shown else None
    limits = dict(zip(shown, chart.points, strict=True)) if chart else {}
    points = []
    for month in months:
        judged, _, left_out = verdicts.get(month, (0, 0, 0))
        withheld = None if _any_anonymous(versions) else left_out
        point = limits.get(month)
        points.append(ChartPoint(month, judged, withheld, False) if point is None else ChartPoint(
            month, judged, withheld, True, 100 * point.proportion, 100 * point.low, 100 * point.high,
            point.out_of_control))
    _note(ctx, department_id)
    return ControlChart(key, department_id, months[0], months[-1], settings.min_cell,
                        100 * chart.centre if chart else None, points)


def _listed(cell: Cell, version: Version, invited: Mapping[Cell, _Invited], statuses: Mapping[str, str]) -> bool:
    """Whether the report lists a cell's row: any cell with invitations or responses, but an anonymous version's
    too small one, where it is answered on invitations, only where it had invitations that month. Found in review:
    listed without, the row said that responses came that month (a late answer to an earlier invitation), and the
    invitation list whose. Its responses are still among the hidden ones its colleagues are suppressed with. (Staff
    rate without invitations: a row of their ratings names nobody's invitation.)"""
    return not (version.anonymous and version.invited and statuses[ROW] == TOO_FEW and cell not in invited)


def _any_anonymous(versions: list[Version]) -> bool:
    """Whether a sum over the key's versions may hold an anonymous questionnaire's hidden cells: then how many it left
    out (``withheld``) is not told, whatever the data, since it would give a hidden cell's count (found in review:
    department B's chart, or a clinician's group, withheld its one small cell's responses, and with the invitation
    list told whether that cell's few invited patients answered)."""
    return any(v.anonymous for v in versions)


# -- access ------------------------------------------------------------------------------------------


async def _authorize(ctx: Context, asked: list[tuple[uuid.UUID | None, str]]) -> frozenset[uuid.UUID] | None:
    """``survey_report: read``; the departments the caller reaches: None for an admin (the institution),
    a department head's own otherwise. A department asked for (with its field) outside them is refused
    and recorded."""
    named = [(d, field) for d, field in asked if d is not None]
    await access.authorize(ctx, "survey_report", "read", action=Action.READ, resource_type="survey_report",
                           resource_id=named[0][0] if named else None)
    reach = access.departments_kept(ctx)
    for department, field in named:
        if reach is not None and department not in reach:
            await access.deny(ctx, Action.READ, "survey_report", department, reason="other_department")
            raise Forbidden(f"{field}: reports of other departments are not yours to see.", field=field)
    return reach


def _note(ctx: Context, *departments: uuid.UUID | None) -> None:
    """The read on the audit trail once it is answered: one per department asked for (or one for all)."""
    rule = ctx.decide("survey_report", "read").rule
    named: list[uuid.UUID | None] = [d for d in departments if d is not None] or [None]
    for department in dict.fromkeys(named):
        ctx.reads.note("survey_report", department, None, field_class="aggregate", rule=rule)


def _departments(reach: frozenset[uuid.UUID] | None, department_id: uuid.UUID | None) -> list[uuid.UUID] | None:
    """The departments whose responses count: the one asked for, else all the caller reaches (None: all)."""
    if department_id is not None:
        return [department_id]
    return None if reach is None else sorted(reach)


async def _check_subjects(ctx: Context, department_id: uuid.UUID | None, clinician_id: uuid.UUID | None,
                          prefix: str = "") -> None:
    """A department or clinician of another institution, or none at all, is NOT_FOUND (and recorded)."""
    if department_id is not None and not await Department.exists(id=department_id, institution_id=ctx.institution_id):
        raise await access.not_found(ctx, Action.READ, "survey_report", department_id, f"{prefix}departmentId")
    if clinician_id is not None and not await Staff.exists(id=clinician_id, institution_id=ctx.institution_id):
        raise await access.not_found(ctx, Action.READ, "survey_report", clinician_id, f"{prefix}clinicianId")


def _apart(reach: frozenset[uuid.UUID] | None, a: Group, b: Group, months: list[list[str]]) -> None:
    """The two groups of a comparison share no response: their months, or their departments, or their
    clinicians are apart (Welch's t and Mann-Whitney U assume independent samples)."""
    if not set(months[0]) & set(months[1]):
        return
    if a.clinician_id is not None and b.clinician_id is not None and a.clinician_id != b.clinician_id:
        return
    departments = [_departments(reach, g.department_id) for g in (a, b)]
    if departments[0] is not None and departments[1] is not None and not set(departments[0]) & set(departments[1]):
        return
    raise BadUserInput("groupB: overlaps group A (the same responses on both sides); compare periods, departments "
                       "or clinicians that are apart.", field="groupB")


# -- input -------------------------------------------------------------------------------------------


def _next(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _months(first: str, last: str, prefix: str = "") -> list[str]:
    """Every month from ``first`` to ``last`` (YYYY-MM), at most MAX_MONTHS."""
    start, end = month_start(first, f"{prefix}from"), month_start(last, f"{prefix}to")
    if end < start:
        raise BadUserInput(f"{prefix}to: the period ends before it starts.", field=f"{prefix}to")
    months: list[str] = []
    day = start
    while day <= end:
        if len(months) == MAX_MONTHS:
            raise BadUserInput(f"{prefix}to: at most {MAX_MONTHS} months.", field=f"{prefix}to")
        months.append(f"{day:%Y-%m}")
        day = _next(day)
    return months


async def _month_edges(ctx: Context, months: list[str]) -> list[tuple[str, datetime, datetime]]:
    """Each month with its local start and end as UTC instants."""
    zone: tzinfo = await institutions.zone_of(ctx)

    def midnight(day: date) -> datetime:
        return datetime.combine(day, time(0), zone).astimezone(UTC)

    return [(m, midnight(month_start(m)), midnight(_next(month_start(m)))) for m in months]


async def _versions(ctx: Context, key: uuid.UUID) -> list[Version]:
    rows = await Questionnaire.filter(institution_id=ctx.institution_id, key=key).order_by("version").values(
        "id", "version", "scoring", "items", "anonymous", "respondent")
    if not rows:
        raise await access.not_found(ctx, Action.READ, "survey_report", key, "questionnaireKey")
    return [Version(r["id"], r["version"], r["scoring"].get("method", "mean"),
                    float(r["scoring"].get("satisfied_at", 0)), r["items"],
                    names_nobody(r["anonymous"], r["respondent"]), r["respondent"] != STAFF_RESPONDENT) for r in rows]


def _ordinal_item(versions: list[Version], link_id: str) -> None:
    kinds = {item["kind"] for v in versions for item in definitions.questions(v.items)
             if item.get("link_id") == link_id}
    if not kinds:
        raise BadUserInput("itemLinkId: no such item in any version of the questionnaire.", field="itemLinkId")
    if not kinds <= set(ORDINAL_KINDS):
        raise BadUserInput("itemLinkId: only Likert, 0-10, CSAT and yes/no items are compared.", field="itemLinkId")


@dataclass(frozen=True)
class _Settings:
    min_cell: int
    satisfaction_target: int


async def _settings(ctx: Context) -> _Settings:
    row = await SurveySettingsRow.filter(institution_id=ctx.institution_id).first()
    row = row or SurveySettingsRow()  # the model's defaults until an institution saves its own
    return _Settings(max(1, row.min_cell), row.satisfaction_target)


# -- SQL: grouped aggregates ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scope:
    institution_id: uuid.UUID
    versions: list[uuid.UUID]
    departments: list[uuid.UUID] | None  # None: every department, and responses of none
    clinician_id: uuid.UUID | None
    anonymous: list[uuid.UUID]  # the anonymous versions, whose current month is left out until it closes
    current: str  # the institution's current month, YYYY-MM
    opened: datetime  # its first instant

    def closed(self, query: QuerySet[_M], sent: bool = False) -> QuerySet[_M]:
        """``query`` without the anonymous versions' current month: responses (and answers) by their month,
        invitations (``sent``) by their send time."""
        if not self.anonymous:
            return query
        current: dict[str, Any] = {"send_at__gte": self.opened} if sent else {"month__gte": self.current}
        # NOT (a AND b): exclude(a=..., b=...) would be NOT a AND NOT b
        return query.filter(~Q(questionnaire_id__in=self.anonymous, **current))

    def where(self, clinician: str = "clinician_id") -> dict[str, Any]:
        found: dict[str, Any] = {"institution_id": self.institution_id, "questionnaire_id__in": self.versions}
        if self.departments is not None:
            found["department_id__in"] = self.departments
        if self.clinician_id is not None:
            found[clinician] = self.clinician_id
        return found


STAFF_RESPONDENT = "staff"


def names_nobody(anonymous: bool, respondent: str) -> bool:
    """THE rule for which questionnaire versions' responses are anonymous, for every view of them: the report, the
    chart and the comparisons here, the response list, a response read by its id and a version's responseCount
    (``resolvers.questionnaire_response``, ``resolvers.questionnaire``). A version flagged anonymous, or one answered
    by staff (a staff rating names no rater, whatever the flag). Their responses name no patient and no invitation
    (answering an invitation of a version answered by staff is refused), so what a live month or a small cell would
    tell is when, and by whom, they came. Found in review: the report held back the live month of flagged versions
    only, the list of every response without patient and invitation, so a staff rating on a version not flagged
    was reported live and listed a month later. ``nameless_versions`` is the same rule in SQL."""
    return anonymous or respondent == STAFF_RESPONDENT


def nameless_versions(institution_id: uuid.UUID) -> Subquery:
    """The institution's versions whose responses name nobody (``names_nobody``), as a subquery of their ids."""
    return Subquery(Questionnaire.filter(Q(anonymous=True) | Q(respondent=STAFF_RESPONDENT),
                                         institution_id=institution_id).values("id"))


async def min_cell(ctx: Context) -> int:
    """The fewest responses a figure, or an anonymous response listed, comes from (``SurveySettings.min_cell``)."""
    return (await _settings(ctx)).min_cell


def released_cell(month: str, responses: int, live: str, least: int) -> bool:
    """Whether the responses of an anonymous cell (version, department, month) are shown one by one (listed, read by
    id, counted in a version's responseCount): its month has closed and it holds at least ``least``, as the report
    shows the cell (the department's row)."""
    return month < live and responses >= least


async def live_month(ctx: Context) -> str:
    """The institution's current local month (YYYY-MM), the month an answer given now is filed under: an anonymous
    questionnaire's responses of it are neither reported here nor listed (``resolvers.questionnaire_response``)
    until it closes, since read twice it would tell when an answer came."""
    zone: tzinfo = await institutions.zone_of(ctx)
    return f"{datetime.now(zone):%Y-%m}"


async def _scope(ctx: Context, versions: list[Version], departments: list[uuid.UUID] | None,
                 clinician_id: uuid.UUID | None = None) -> _Scope:
    zone: tzinfo = await institutions.zone_of(ctx)
    current = await live_month(ctx)
    opened = datetime.combine(month_start(current), time(0), zone).astimezone(UTC)
    return _Scope(ctx.institution_id, [v.questionnaire_id for v in versions], departments, clinician_id,
                  [v.questionnaire_id for v in versions if v.anonymous], current, opened)


def _uuid(value: Any) -> uuid.UUID | None:
    return value if value is None or isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _cell(row: Mapping[str, Any], clinician: str | None) -> Cell:
    version = _uuid(row["questionnaire_id"])
    assert version is not None  # a non-null column
    return version, _uuid(row["department_id"]), row["month"], _uuid(row[clinician]) if clinician else None


class _Invited(NamedTuple):
    invited: int
    answered: int
    open: int  # whose link can still be answered


NOT_INVITED = _Invited(0, 0, 0)


async def _invitations(scope: _Scope, edges: list[tuple[str, datetime, datetime]],
                       per_clinician: bool) -> dict[Cell, _Invited]:
    """Per cell: invitations due in the month, not cancelled or refused; answered; not expired yet."""
    if scope.departments == []:
        return {}
    now = datetime.now(UTC)
    month = Case(*(When(Q(send_at__gte=start, send_at__lt=end), then=label) for label, start, end in edges),
                 default=None)
    keys = ["questionnaire_id", "department_id", "month", *(["clinician_id"] if per_clinician else [])]
    rows = await scope.closed(SurveyInvitation.filter(
        **scope.where(), send_at__gte=edges[0][1], send_at__lt=min(edges[-1][2], now)), sent=True).exclude(
        status__in=NOT_SENT).annotate(month=month, invited=Count("id"), answered_n=Count("id", _filter=Q(
            answered=True)), open_n=Count("id", _filter=Q(expires_at__gt=now))).group_by(*keys).values(
        *keys, "invited", "answered_n", "open_n")
    # (an annotation named like the column its filter reads would resolve to itself: "answered_n")
    return {_cell(r, "clinician_id" if per_clinician else None): _Invited(
        int(r["invited"]), int(r["answered_n"] or 0), int(r["open_n"] or 0)) for r in rows}


async def _responses(scope: _Scope, months: list[str], per_clinician: bool) -> dict[Cell, dict[str, Any]]:
    """Per cell: responses; scored, sum and sum of squares of the scores; judged and satisfied; NPS
    answers, promoters and detractors; CSAT answers and 4-5s."""
    if scope.departments == []:
        return {}
    keys = ["questionnaire_id", "department_id", "month", *(["clinician_id"] if per_clinician else [])]
    rows = await scope.closed(QuestionnaireResponse.filter(**scope.where(), month__gte=months[0],
                                                           month__lte=months[-1])).annotate(
        responses=Count("id"), scored=Count("score"), score_sum=Sum("score"),
        score_squares=Sum(F("score") * F("score")), judged=Count("satisfied"),
        satisfied_n=Count("id", _filter=Q(satisfied=True)), nps_n=Count("nps"),
        promoters=Count("id", _filter=Q(nps__gte=9)), detractors=Count("id", _filter=Q(nps__lte=6)),
        csat_n=Count("csat"), csat_top=Count("id", _filter=Q(csat__gte=4)),
    ).group_by(*keys).values(*keys, "responses", "scored", "score_sum", "score_squares", "judged", "satisfied_n",
                             "nps_n", "promoters", "detractors", "csat_n", "csat_top")
    return {_cell(r, "clinician_id" if per_clinician else None): r for r in rows}


async def _answers(scope: _Scope, months: list[str], per_clinician: bool, several: list[str]) -> tuple[
        dict[tuple[Cell, str], dict[str, int]], dict[tuple[Cell, str], int]]:
    """Per cell and item: responses per value (a number or an option code), and responses answering. An item
    takes one answer row per response, but for the multiple-choice items (``several``), whose responses are
    counted apart (COUNT DISTINCT)."""
    if scope.departments == []:
        return {}, {}
    clinician = "response__clinician_id"
    keys = ["questionnaire_id", "department_id", "month", *([clinician] if per_clinician else []), "link_id"]
    answers = scope.closed(ResponseAnswer.filter(**scope.where(clinician), month__gte=months[0],
                                                 month__lte=months[-1])).filter(
        Q(number__isnull=False) | Q(choice__isnull=False))
    # COUNT(link_id), not COUNT(id): a column of the covering index, so the rows themselves are never read
    counted = await answers.annotate(n=Count("link_id")).group_by(*keys, "number", "choice").values(
        *keys, "number", "choice", "n")
    who = clinician if per_clinician else None
    values: dict[tuple[Cell, str], dict[str, int]] = defaultdict(dict)
    answering: dict[tuple[Cell, str], int] = defaultdict(int)
    for r in counted:
        label = r["choice"] if r["number"] is None else _label(float(r["number"]))
        place = (_cell(r, who), r["link_id"])
        values[place][label] = int(r["n"])
        answering[place] += int(r["n"])
    if several:
        distinct = await answers.filter(link_id__in=several).annotate(n=Count("response_id", distinct=True)).group_by(
            *keys).values(*keys, "n")
        answering.update({(_cell(r, who), r["link_id"]): int(r["n"]) for r in distinct})
    return values, answering


def _keys(per_clinician: bool, clinician: str = "clinician_id") -> list[str]:
    return ["questionnaire_id", "department_id", "month", *([clinician] if per_clinician else [])]


async def _score_sums(scope: _Scope, months: list[str], edges: list[tuple[str, datetime, datetime]],
                      least: int) -> tuple[int, float, float, int]:
    """(n, sum, sum of squares) of the scores of one comparison group over the cells the report shows for the
    score, and the responses left out (in cells it hides). A clinician's cells are decided with their
    colleagues', read here too (and, for an anonymous version, their cells with invitations only: ``_invited``)."""
    if scope.departments == []:
        return 0, 0.0, 0.0, 0
    per_clinician = scope.clinician_id is not None
    keys = _keys(per_clinician)
    rows = await scope.closed(QuestionnaireResponse.filter(**replace(scope, clinician_id=None).where(),
                                                           month__gte=months[0], month__lte=months[-1])).annotate(
        responses=Count("id"), scored=Count("score"), total=Sum("score"),
        squares=Sum(F("score") * F("score"))).group_by(*keys).values(*keys, "responses", "scored", "total",
                                                                        "squares")
    cells = {_cell(r, "clinician_id" if per_clinician else None): r for r in rows}
    parts = {c: {ROW: int(r["responses"]), "score": int(r["scored"])} for c, r in cells.items()}
    for cell in await _invited(scope, edges):
        parts.setdefault(cell, {ROW: 0, "score": 0})
    statuses = _statuses(parts, per_clinician, least, set(scope.anonymous))
    n, total, squares, withheld = 0, 0.0, 0.0, 0
    for cell, r in cells.items():
        if per_clinician and cell[3] != scope.clinician_id:
            continue
        status = statuses[cell]
        if status["score"] == SHOWN:
            n, total, squares = n + int(r["scored"]), total + float(r["total"]), squares + float(r["squares"])
        else:
            withheld += int(r["scored"]) if status[ROW] == SHOWN else int(r["responses"])
    return n, total, squares, withheld


async def _item_counts(scope: _Scope, months: list[str], edges: list[tuple[str, datetime, datetime]], link_id: str,
                       least: int) -> tuple[dict[float, int], int]:
    """Answers per value of one numeric item in one comparison group over the cells the report shows for the
    item, and the responses left out (in cells it hides)."""
    if scope.departments == []:
        return {}, 0
    per_clinician = scope.clinician_id is not None
    everyone = replace(scope, clinician_id=None)
    keys = _keys(per_clinician)
    rows = await scope.closed(QuestionnaireResponse.filter(**everyone.where(), month__gte=months[0],
                                                           month__lte=months[-1])).annotate(
        responses=Count("id")).group_by(*keys).values(*keys, "responses")
    who = "response__clinician_id" if per_clinician else None
    answer_keys = _keys(per_clinician, "response__clinician_id")
    answers = await scope.closed(ResponseAnswer.filter(
        **everyone.where("response__clinician_id"), month__gte=months[0], month__lte=months[-1], link_id=link_id,
        number__isnull=False)).annotate(
        n=Count("link_id")).group_by(*answer_keys, "number").values(*answer_keys, "number", "n")
    values: dict[Cell, dict[float, int]] = defaultdict(dict)
    for r in answers:
        values[_cell(r, who)][float(r["number"])] = int(r["n"])
    responses = {_cell(r, "clinician_id" if per_clinician else None): int(r["responses"]) for r in rows}
    parts = {c: {ROW: n, "item": sum(values.get(c, {}).values())} for c, n in responses.items()}
    for cell in await _invited(scope, edges):
        parts.setdefault(cell, {ROW: 0, "item": 0})
    statuses = _statuses(parts, per_clinician, least, set(scope.anonymous))
    counts: dict[float, int] = defaultdict(int)
    withheld = 0
    for cell, n in responses.items():
        if per_clinician and cell[3] != scope.clinician_id:
            continue
        answered = values.get(cell, {})
        if statuses[cell]["item"] == SHOWN:
            for value, k in answered.items():
                counts[value] += k
        else:
            withheld += sum(answered.values()) if statuses[cell][ROW] == SHOWN else n
    return dict(counts), withheld


async def _invited(scope: _Scope, edges: list[tuple[str, datetime, datetime]]) -> set[Cell]:
    """The clinician cells of a comparison group's department-months that had invitations (``edges``: the group's
    months, given only for a clinician's group of a key with an anonymous version): parts the report decides
    among too, a hidden one of no response included."""
    if not edges or scope.clinician_id is None or not scope.anonymous:
        return set()
    return set(await _invitations(replace(scope, clinician_id=None), edges, True))


async def _verdicts(scope: _Scope, months: list[str], least: int) -> dict[str, tuple[int, int, int]]:
    """(judged, satisfied, withheld) per month, every version together, over the cells (version and department)
    the report shows the share satisfied of; withheld: the responses of the cells it hides."""
    if scope.departments == []:
        return {}
    keys = _keys(False)
    rows = await scope.closed(QuestionnaireResponse.filter(**scope.where(), month__gte=months[0],
                                                           month__lte=months[-1])).annotate(
        responses=Count("id"), judged=Count("satisfied"), satisfied_n=Count("id", _filter=Q(satisfied=True))
    ).group_by(*keys).values(*keys, "responses", "judged", "satisfied_n")
    cells = {_cell(r, None): r for r in rows}
    statuses = _statuses({c: {ROW: int(r["responses"]), "satisfied": int(r["judged"])} for c, r in cells.items()},
                         False, least, set(scope.anonymous))  # cells alone: nothing to decide among
    found: dict[str, tuple[int, int, int]] = {}
    for cell, r in cells.items():
        judged, satisfied, withheld = found.get(cell[2], (0, 0, 0))
        status = statuses[cell]
        if status["satisfied"] == SHOWN:
            judged, satisfied = judged + int(r["judged"]), satisfied + int(r["satisfied_n"] or 0)
        else:
            withheld += int(r["judged"]) if status[ROW] == SHOWN else int(r["responses"])
        found[cell[2]] = (judged, satisfied, withheld)
    return found


def _label(number: float) -> str:
    return str(int(number)) if number.is_integer() else str(number)


# -- what is hidden ----------------------------------------------------------------------------------


def _measures(sums: Mapping[str, Any], version: Version, cell: Cell,
              answering: Mapping[tuple[Cell, str], int], invited: _Invited) -> dict[str, int]:
    """The responses behind each figure of a cell: the row's, the score's, ..., each reported item's; and its
    invitations (the invitation counts of an anonymous questionnaire are suppressed as a figure)."""
    found = {ROW: int(sums.get("responses") or 0), INVITED: invited.invited, "score": int(sums.get("scored") or 0),
             "satisfied": int(sums.get("judged") or 0), "nps": int(sums.get("nps_n") or 0),
             "csat": int(sums.get("csat_n") or 0)}
    for item in definitions.questions(version.items):
        if item.get("kind") in ITEM_KINDS:
            found[f"item:{item['link_id']}"] = answering.get((cell, item["link_id"]), 0)
    return found


def _statuses(counts: Mapping[Cell, Mapping[str, int]], per_clinician: bool, least: int,
              anonymous: Set[uuid.UUID] = frozenset()) -> dict[Cell, dict[str, str]]:
    """What each figure of each cell is (SHOWN, TOO_FEW, PROTECTS), from the responses behind it alone.

    Without clinicians a cell stands alone: its figures are shown from ``least`` responses (and the row's).
    With clinicians the cells of one version, department and month are the parts of the department's cell,
    which the report also shows: first the rows (by their responses), then each figure (by its own count,
    a hidden row hiding its figures) are suppressed among them (``statistics.suppress``), so that the
    department's figure minus the shown clinicians' never gives fewer than ``least`` hidden answers. For an
    ``anonymous`` version, whose hidden rows' counts are told nowhere, no hidden clinician stands alone either
    (found in review: the department's count minus the shown clinicians' was the one hidden clinician's, 0: none
    of their invited patients answered): the untold counts are a hidden row's responses and its figures' counts;
    invitation counts are not secret (staff read the invitations), only what was answered."""
    parents: dict[tuple[Any, ...], list[Cell]] = defaultdict(list)
    for cell in counts:
        parents[cell[:3] if per_clinician else cell].append(cell)
    found: dict[Cell, dict[str, str]] = {cell: {} for cell in counts}
    for parts in parents.values():
        strict = parts[0][0] in anonymous
        rows = statistics.suppress({c: counts[c][ROW] for c in parts}, least, untold=set(parts) if strict else None)
        hidden = {c for c in parts if rows[c] != SHOWN}
        for c in parts:
            found[c][ROW] = rows[c]
        for measure in dict.fromkeys(m for c in parts for m in counts[c] if m != ROW):
            untold = (set() if measure == INVITED else hidden) if strict else None
            figures = statistics.suppress({c: counts[c].get(measure, 0) for c in parts}, least, hidden, untold=untold)
            for c in parts:
                found[c][measure] = figures[c]
    return found


# -- figures -----------------------------------------------------------------------------------------


def _row(cell: Cell, version: Version, invited: _Invited, sums: Mapping[str, Any] | None,
         values: Mapping[tuple[Cell, str], dict[str, int]], answering: Mapping[tuple[Cell, str], int],
         statuses: Mapping[str, str], settings: _Settings) -> ReportRow:
    s: Mapping[str, Any] = sums or {}

    def n(name: str) -> int:
        return int(s.get(name) or 0)

    row = statuses.get(ROW, TOO_FEW)
    seen = row == SHOWN  # a hidden row hides its figures' counts too, and their own statuses (the row's)

    def status(measure: str) -> str:
        return statuses.get(measure, TOO_FEW) if seen else row

    score = _estimate(n("scored"), status("score"), seen, lambda: statistics.mean_interval(
        statistics.Sample.from_sums(n("scored"), float(s["score_sum"]), float(s["score_squares"])), bounds=(0, 100)))
    satisfied = _share(n("satisfied_n"), n("judged"), status("satisfied"), seen)
    csat = _share(n("csat_top"), n("csat_n"), status("csat"), seen)
    nps = _estimate(n("nps_n"), status("nps"), seen, lambda: statistics.nps(n("promoters"), n("detractors"),
                                                                            n("nps_n")))
    meets = None if satisfied.value is None else satisfied.value >= settings.satisfaction_target
    questions = {item["link_id"]: item for item in definitions.questions(version.items)}
    sources = _condition_sources(version.items)

    def item_status(link_id: str) -> tuple[str, bool]:
        """An item's status, and whether its count may show. A conditional item is hidden with the (earlier) item
        it depends on: its count tells what was answered there (found in review: one respondent's pain <= 2), and
        so is an item of a conditional section (found in review: only an item's own condition was followed)."""
        for source in sources.get(link_id, ()):
            if source in questions:
                source_status, source_seen = item_status(source)
                if source_status != SHOWN or not source_seen:
                    return source_status, False
        return status(f"item:{link_id}"), seen

    items = [_item(item, values.get((cell, link), {}), answering.get((cell, link), 0), *item_status(link))
             for link, item in questions.items() if item.get("kind") in ITEM_KINDS]
    # an anonymous questionnaire's invitation counts would tell who answered (a small cell), or when (an open link)
    withheld = version.anonymous and (status(INVITED) != SHOWN or invited.open > 0)
    # and so would a hidden row's responses: with the invitation list, which of its few invited patients answered
    responses = None if version.anonymous and not seen else n("responses")
    return ReportRow(cell[0], version.version, cell[1], cell[3], cell[2], None if withheld else invited.invited,
                     None if withheld else invited.answered, responses, row, score, satisfied, nps, csat, meets, items)


def _condition_sources(items: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The (earlier) items whose answers show each question: its own condition's, and its section's."""
    found: dict[str, list[str]] = {}

    def source(item: Mapping[str, Any]) -> list[str]:
        link_id = (item.get("enable_when") or {}).get("link_id")
        return [link_id] if isinstance(link_id, str) else []

    for item in items:
        if item.get("kind") == "section":
            for child in item.get("items") or ():
                found[child["link_id"]] = source(item) + source(child)
        else:
            found[item["link_id"]] = source(item)
    return found


def _estimate(responses: int, status: str, seen: bool, compute: Any) -> Estimate:
    if status != SHOWN:
        return Estimate(responses if seen else None, status)
    interval: statistics.Interval = compute()
    return Estimate(responses, status, interval.value, interval.low, interval.high)


def _share(successes: int, responses: int, status: str, seen: bool) -> Estimate:
    """A share in percent with its Wilson interval."""
    def percent() -> statistics.Interval:
        found = statistics.wilson(successes, responses)
        return statistics.Interval(100 * found.value, 100 * (found.low or 0), 100 * (found.high or 0))
    return _estimate(responses, status, seen, percent)


def _item(item: Mapping[str, Any], counts: dict[str, int], responses: int, status: str, seen: bool) -> ItemFigures:
    kind = item["kind"]
    if kind in SCALES:
        low, high = SCALES[kind]
        labels = [str(v) for v in range(low, high + 1)]
        mean = _estimate(responses, status, seen, lambda: statistics.mean_interval(
            statistics.Sample.from_counts({float(v): c for v, c in counts.items()}), bounds=(low, high)))
    else:
        labels, mean = [str(o["code"]) for o in item.get("options") or ()], None
    labels += sorted(set(counts) - set(labels))  # values no longer offered (none expected)
    distribution = [(label, counts.get(label, 0)) for label in labels] if status == SHOWN else None
    return ItemFigures(item["link_id"], kind, responses if seen else None, status, mean, distribution)


def _group(n: int, withheld: int | None, sample: statistics.Sample | None) -> GroupFigures:
    if n == 0 or sample is None:
        return GroupFigures(n, withheld, None, None)
    return GroupFigures(n, withheld, sample.mean, sample.sd)


def _welch(sums: list[tuple[int, float, float, int]], alpha: float) -> Comparison:
    samples = [statistics.Sample.from_sums(*s[:3]) if s[0] else None for s in sums]
    a, b = (_group(s[0], s[3], sample) for s, sample in zip(sums, samples, strict=True))
    sa, sb = samples
    if not (a.shown and b.shown) or sa is None or sb is None or sa.variance is None or sb.variance is None:
        return Comparison("welch_t", None, alpha, a, b)
    t = statistics.welch(sa, sb, alpha)
    return Comparison("welch_t", None, alpha, a, b, statistic=t.statistic, df=t.df, p_value=t.p_value,
                      difference=t.difference, difference_low=t.low, difference_high=t.high, cohens_d=t.cohens_d,
                      hedges_g=t.hedges_g)


def _mann_whitney(link_id: str, counts: list[tuple[dict[float, int], int]], alpha: float) -> Comparison:
    samples = [statistics.Sample.from_counts(c) if sum(c.values()) else None for c, _ in counts]
    a, b = (_group(sum(c.values()), withheld, s) for (c, withheld), s in zip(counts, samples, strict=True))
    if not (a.shown and b.shown):
        return Comparison("mann_whitney_u", link_id, alpha, a, b)
    u = statistics.mann_whitney(counts[0][0], counts[1][0])
    return Comparison("mann_whitney_u", link_id, alpha, a, b, statistic=u.u_a, p_value=u.p_value,
                      difference=b.mean - a.mean if a.mean is not None and b.mean is not None else None,
                      rank_biserial=u.rank_biserial)
