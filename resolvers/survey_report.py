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
- the small-cell rule: a figure computed from fewer responses than ``SurveySettings.min_cell`` is not
  shown (its status says TOO_FEW_RESPONSES, its values are null): counts of responses are shown, never
  what fewer than min_cell respondents answered. The control chart's centre line uses shown months only,
  so a hidden month cannot be worked back from it;
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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from tortoise.expressions import Case, F, Q, When
from tortoise.functions import Count, Sum

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
YEARS = (2000, 2199)
NOT_SENT = ("cancelled", "refused")  # invitations that never reached the patient
ITEM_KINDS = ("likert", "nps", "csat", "yes_no", "choice", "multi_choice")  # reported items (no text)
ORDINAL_KINDS = ("likert", "nps", "csat", "yes_no")  # comparable by Mann-Whitney U
SCALES = {**definitions.RANGES, "yes_no": (0, 1)}
ALPHAS = (0.0001, 0.5)

Cell = tuple[uuid.UUID, uuid.UUID | None, str, uuid.UUID | None]  # version, department, month, clinician


# -- what the API answers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    responses: int  # behind the figure
    shown: bool  # False: fewer than min_cell responses, the values are None
    value: float | None = None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class ItemFigures:
    link_id: str
    kind: str
    responses: int  # responses that answered it
    shown: bool
    mean: Estimate | None  # numeric items
    distribution: list[tuple[str, int]] | None  # (value or option code, responses), None when not shown


@dataclass(frozen=True)
class ReportRow:
    questionnaire_id: uuid.UUID
    version: int
    department_id: uuid.UUID | None
    clinician_id: uuid.UUID | None
    month: str
    invited: int
    answered: int
    responses: int
    shown: bool
    score: Estimate
    satisfied: Estimate
    nps: Estimate
    csat: Estimate
    meets_target: bool | None
    items: list[ItemFigures]

    @property
    def response_rate(self) -> float | None:
        return 100 * self.answered / self.invited if self.invited else None


@dataclass(frozen=True)
class Version:
    questionnaire_id: uuid.UUID
    version: int
    method: str
    satisfied_at: float
    items: list[dict[str, Any]]


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
    responses: int
    shown: bool
    mean: float | None
    sd: float | None


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
    responses: int  # with a satisfied / not satisfied verdict
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
    scope = _Scope(ctx.institution_id, [v.questionnaire_id for v in versions], _departments(reach, department_id),
                   clinician_id)
    invited = await _invitations(scope, await _month_edges(ctx, months), per_clinician)
    responses = await _responses(scope, months, per_clinician)
    several = sorted({item["link_id"] for v in versions for item in definitions.questions(v.items)
                      if item.get("kind") == "multi_choice"})
    values, answering = await _answers(scope, months, per_clinician, several)
    by_id = {v.questionnaire_id: v for v in versions}
    cells = sorted(set(invited) | set(responses), key=lambda c: (c[2], by_id[c[0]].version, str(c[1] or ""),
                                                                  str(c[3] or "")))
    rows = [_row(cell, by_id[cell[0]], invited.get(cell, (0, 0)), responses.get(cell), values, answering, settings)
            for cell in cells]
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
    settings = await _settings(ctx)
    ids = [v.questionnaire_id for v in versions]
    scopes = [_Scope(ctx.institution_id, ids, _departments(reach, g.department_id), g.clinician_id) for g in (a, b)]
    if item_link_id is None:
        samples = [await _score_sums(scope, m) for scope, m in zip(scopes, months, strict=True)]
        found = _welch(samples, alpha, settings.min_cell)
    else:
        counts = [await _item_counts(scope, m, item_link_id) for scope, m in zip(scopes, months, strict=True)]
        found = _mann_whitney(item_link_id, counts, alpha, settings.min_cell)
    _note(ctx, a.department_id, b.department_id)
    return found


async def control_chart(ctx: Context, key: uuid.UUID, department_id: uuid.UUID | None, first: str,
                        last: str) -> ControlChart:
    reach = await _authorize(ctx, [(department_id, "departmentId")])
    months = _months(first, last)
    versions = await _versions(ctx, key)
    await _check_subjects(ctx, department_id, None)
    settings = await _settings(ctx)
    scope = _Scope(ctx.institution_id, [v.questionnaire_id for v in versions], _departments(reach, department_id),
                   None)
    verdicts = await _verdicts(scope, months)
    shown = [m for m in months if verdicts.get(m, (0, 0))[0] >= settings.min_cell]
    chart = statistics.p_chart([verdicts[m] for m in shown]) if shown else None
    limits = dict(zip(shown, chart.points, strict=True)) if chart else {}
    points = []
    for month in months:
        judged = verdicts.get(month, (0, 0))[0]
        point = limits.get(month)
        points.append(ChartPoint(month, judged, False) if point is None else ChartPoint(
            month, judged, True, 100 * point.proportion, 100 * point.low, 100 * point.high, point.out_of_control))
    _note(ctx, department_id)
    return ControlChart(key, department_id, months[0], months[-1], settings.min_cell,
                        100 * chart.centre if chart else None, points)


# -- access ------------------------------------------------------------------------------------------


async def _authorize(ctx: Context, asked: list[tuple[uuid.UUID | None, str]]) -> frozenset[uuid.UUID] | None:
    """``survey_report: read``; the departments the caller reaches: None for an admin (the institution),
    a department head's own otherwise. A department asked for (with its field) outside them is refused
    and recorded."""
    named = [(d, field) for d, field in asked if d is not None]
    await access.authorize(ctx, "survey_report", "read", action=Action.READ, resource_type="survey_report",
                           resource_id=named[0][0] if named else None)
    principal = ctx.require_principal()
    reach = None if "admin" in principal.roles else principal.department_ids
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


# -- input -------------------------------------------------------------------------------------------


def _month(value: str, field: str) -> date:
    try:
        day = month_start(value)
    except BadUserInput:
        raise BadUserInput(f"{field}: give it as YYYY-MM.", field=field) from None
    if not YEARS[0] <= day.year <= YEARS[1]:
        raise BadUserInput(f"{field}: a month of the years {YEARS[0]} to {YEARS[1]}.", field=field)
    return day


def _next(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _months(first: str, last: str, prefix: str = "") -> list[str]:
    """Every month from ``first`` to ``last`` (YYYY-MM), at most MAX_MONTHS."""
    start, end = _month(first, f"{prefix}from"), _month(last, f"{prefix}to")
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
    zone: tzinfo = await institutions.zone(ctx.institution_id)

    def midnight(day: date) -> datetime:
        return datetime.combine(day, time(0), zone).astimezone(UTC)

    return [(m, midnight(month_start(m)), midnight(_next(month_start(m)))) for m in months]


async def _versions(ctx: Context, key: uuid.UUID) -> list[Version]:
    rows = await Questionnaire.filter(institution_id=ctx.institution_id, key=key).order_by("version").values(
        "id", "version", "scoring", "items")
    if not rows:
        raise await access.not_found(ctx, Action.READ, "survey_report", key, "questionnaireKey")
    return [Version(r["id"], r["version"], r["scoring"].get("method", "mean"),
                    float(r["scoring"].get("satisfied_at", 0)), r["items"]) for r in rows]


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

    def where(self, clinician: str = "clinician_id") -> dict[str, Any]:
        found: dict[str, Any] = {"institution_id": self.institution_id, "questionnaire_id__in": self.versions}
        if self.departments is not None:
            found["department_id__in"] = self.departments
        if self.clinician_id is not None:
            found[clinician] = self.clinician_id
        return found


def _uuid(value: Any) -> uuid.UUID | None:
    return value if value is None or isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _cell(row: Mapping[str, Any], clinician: str | None) -> Cell:
    version = _uuid(row["questionnaire_id"])
    assert version is not None  # a non-null column
    return version, _uuid(row["department_id"]), row["month"], _uuid(row[clinician]) if clinician else None


async def _invitations(scope: _Scope, edges: list[tuple[str, datetime, datetime]],
                       per_clinician: bool) -> dict[Cell, tuple[int, int]]:
    """(invited, answered) per cell: invitations due in the month, not cancelled or refused."""
    if scope.departments == []:
        return {}
    month = Case(*(When(Q(send_at__gte=start, send_at__lt=end), then=label) for label, start, end in edges),
                 default=None)
    keys = ["questionnaire_id", "department_id", "month", *(["clinician_id"] if per_clinician else [])]
    rows = await SurveyInvitation.filter(
        **scope.where(), send_at__gte=edges[0][1], send_at__lt=min(edges[-1][2], datetime.now(UTC))).exclude(
        status__in=NOT_SENT).annotate(month=month, invited=Count("id"), answered_n=Count("id", _filter=Q(
            answered=True))).group_by(*keys).values(*keys, "invited", "answered_n")
    # (an annotation named like the column its filter reads would resolve to itself: "answered_n")
    return {_cell(r, "clinician_id" if per_clinician else None): (int(r["invited"]), int(r["answered_n"] or 0))
            for r in rows}


async def _responses(scope: _Scope, months: list[str], per_clinician: bool) -> dict[Cell, dict[str, Any]]:
    """Per cell: responses; scored, sum and sum of squares of the scores; judged and satisfied; NPS
    answers, promoters and detractors; CSAT answers and 4-5s."""
    if scope.departments == []:
        return {}
    keys = ["questionnaire_id", "department_id", "month", *(["clinician_id"] if per_clinician else [])]
    rows = await QuestionnaireResponse.filter(**scope.where(), month__gte=months[0], month__lte=months[-1]).annotate(
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
    answers = ResponseAnswer.filter(**scope.where(clinician), month__gte=months[0], month__lte=months[-1]).filter(
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


async def _score_sums(scope: _Scope, months: list[str]) -> tuple[int, float, float]:
    """(n, sum, sum of squares) of the scores of one comparison group."""
    if scope.departments == []:
        return 0, 0.0, 0.0
    rows = await QuestionnaireResponse.filter(**scope.where(), month__gte=months[0], month__lte=months[-1],
                                              score__isnull=False).annotate(
        n=Count("id"), total=Sum("score"), squares=Sum(F("score") * F("score"))).values("n", "total", "squares")
    row = rows[0] if rows else {}
    return int(row.get("n") or 0), float(row.get("total") or 0), float(row.get("squares") or 0)


async def _item_counts(scope: _Scope, months: list[str], link_id: str) -> dict[float, int]:
    """Answers per value of one numeric item in one comparison group."""
    if scope.departments == []:
        return {}
    rows = await ResponseAnswer.filter(**scope.where("response__clinician_id"), month__gte=months[0],
                                       month__lte=months[-1], link_id=link_id, number__isnull=False).annotate(
        n=Count("link_id")).group_by("number").values("number", "n")
    return {float(r["number"]): int(r["n"]) for r in rows}


async def _verdicts(scope: _Scope, months: list[str]) -> dict[str, tuple[int, int]]:
    """(judged, satisfied) per month, every version together."""
    if scope.departments == []:
        return {}
    rows = await QuestionnaireResponse.filter(**scope.where(), month__gte=months[0], month__lte=months[-1]).annotate(
        judged=Count("satisfied"), satisfied_n=Count("id", _filter=Q(satisfied=True))).group_by("month").values(
        "month", "judged", "satisfied_n")
    return {r["month"]: (int(r["judged"]), int(r["satisfied_n"])) for r in rows}


def _label(number: float) -> str:
    return str(int(number)) if number.is_integer() else str(number)


# -- figures -----------------------------------------------------------------------------------------


def _row(cell: Cell, version: Version, invited: tuple[int, int], sums: Mapping[str, Any] | None,
         values: Mapping[tuple[Cell, str], dict[str, int]], answering: Mapping[tuple[Cell, str], int],
         settings: _Settings) -> ReportRow:
    s: Mapping[str, Any] = sums or {}

    def n(name: str) -> int:
        return int(s.get(name) or 0)

    least = settings.min_cell
    score = _estimate(n("scored"), least, lambda: statistics.mean_interval(
        statistics.Sample.from_sums(n("scored"), float(s["score_sum"]), float(s["score_squares"])), bounds=(0, 100)))
    satisfied = _share(n("satisfied_n"), n("judged"), least)
    csat = _share(n("csat_top"), n("csat_n"), least)
    nps = _estimate(n("nps_n"), least, lambda: statistics.nps(n("promoters"), n("detractors"), n("nps_n")))
    meets = None if satisfied.value is None else satisfied.value >= settings.satisfaction_target
    items = [_item(item, values.get((cell, item["link_id"]), {}), answering.get((cell, item["link_id"]), 0), least)
             for item in definitions.questions(version.items) if item.get("kind") in ITEM_KINDS]
    return ReportRow(cell[0], version.version, cell[1], cell[3], cell[2], invited[0], invited[1], n("responses"),
                     n("responses") >= least, score, satisfied, nps, csat, meets, items)


def _estimate(responses: int, least: int, compute: Any) -> Estimate:
    if responses < least or responses == 0:
        return Estimate(responses, False)
    interval: statistics.Interval = compute()
    return Estimate(responses, True, interval.value, interval.low, interval.high)


def _share(successes: int, responses: int, least: int) -> Estimate:
    """A share in percent with its Wilson interval."""
    def percent() -> statistics.Interval:
        found = statistics.wilson(successes, responses)
        return statistics.Interval(100 * found.value, 100 * (found.low or 0), 100 * (found.high or 0))
    return _estimate(responses, least, percent)


def _item(item: Mapping[str, Any], counts: dict[str, int], responses: int, least: int) -> ItemFigures:
    kind = item["kind"]
    shown = responses >= least and responses > 0
    if kind in SCALES:
        low, high = SCALES[kind]
        labels = [str(v) for v in range(low, high + 1)]
        mean = _estimate(responses, least, lambda: statistics.mean_interval(
            statistics.Sample.from_counts({float(v): c for v, c in counts.items()}), bounds=(low, high)))
    else:
        labels, mean = [str(o["code"]) for o in item.get("options") or ()], None
    labels += sorted(set(counts) - set(labels))  # values no longer offered (none expected)
    distribution = [(label, counts.get(label, 0)) for label in labels] if shown else None
    return ItemFigures(item["link_id"], kind, responses, shown, mean, distribution)


def _group(n: int, least: int, sample: statistics.Sample | None) -> GroupFigures:
    if n < least or sample is None:
        return GroupFigures(n, False, None, None)
    return GroupFigures(n, True, sample.mean, sample.sd)


def _welch(sums: list[tuple[int, float, float]], alpha: float, least: int) -> Comparison:
    samples = [statistics.Sample.from_sums(*s) if s[0] else None for s in sums]
    a, b = (_group(s[0], least, sample) for s, sample in zip(sums, samples, strict=True))
    sa, sb = samples
    if not (a.shown and b.shown) or sa is None or sb is None or sa.variance is None or sb.variance is None:
        return Comparison("welch_t", None, alpha, a, b)
    t = statistics.welch(sa, sb, alpha)
    return Comparison("welch_t", None, alpha, a, b, statistic=t.statistic, df=t.df, p_value=t.p_value,
                      difference=t.difference, difference_low=t.low, difference_high=t.high, cohens_d=t.cohens_d,
                      hedges_g=t.hedges_g)


def _mann_whitney(link_id: str, counts: list[dict[float, int]], alpha: float, least: int) -> Comparison:
    samples = [statistics.Sample.from_counts(c) if sum(c.values()) else None for c in counts]
    a, b = (_group(sum(c.values()), least, s) for c, s in zip(counts, samples, strict=True))
    if not (a.shown and b.shown):
        return Comparison("mann_whitney_u", link_id, alpha, a, b)
    u = statistics.mann_whitney(counts[0], counts[1])
    return Comparison("mann_whitney_u", link_id, alpha, a, b, statistic=u.u_a, p_value=u.p_value,
                      difference=b.mean - a.mean if a.mean is not None and b.mean is not None else None,
                      rank_biserial=u.rank_biserial)
