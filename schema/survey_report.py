"""Survey scores, reports and statistics: aggregates only (no respondent, no free text), small cells hidden, and
the cells that would give a small one away by subtraction hidden with it."""

from __future__ import annotations

import uuid
from enum import Enum
from typing import Annotated

import strawberry

from resolvers import survey_report as reports
from schema.common import Info, uuid_of
from schema.questionnaire import QuestionnaireItemKind, QuestionnaireScoringMethod


@strawberry.enum(description="Whether a figure is shown: the small-cell rule hides what fewer respondents than the "
                             "institution's minimum (SurveySettings.minCell, default 5) answered, and hides more "
                             "cells where a hidden one could otherwise be worked back by subtraction.")
class FigureStatus(Enum):
    SHOWN = strawberry.enum_value("shown", description="Computed from enough responses: the values are given.")
    TOO_FEW_RESPONSES = strawberry.enum_value(
        "too_few_responses", description="Too few responses: the values are null so that nobody can single out an "
                                         "answer.")
    PROTECTS_SMALL_CELL = strawberry.enum_value(
        "protects_small_cell", description="Enough responses, but hidden with a cell beside it that has too few: "
                                           "otherwise the total (the department's figure) minus the shown cells "
                                           "would give that cell away (for an anonymous questionnaire, also its "
                                           "count of none). The values are null.")


@strawberry.enum(description="The test of a comparison.")
class SurveyTest(Enum):
    WELCH_T = strawberry.enum_value("welch_t", description="Welch's t-test on the responses' scores (unequal "
                                                            "variances).")
    MANN_WHITNEY_U = strawberry.enum_value("mann_whitney_u", description="The Mann-Whitney U test on an ordinal "
                                                                          "item's answers (ties get mid-ranks).")


@strawberry.enum(description="What a comparison concludes at its alpha.")
class SurveyConclusion(Enum):
    DIFFERENT = strawberry.enum_value("different", description="p < alpha: the groups differ at this level.")
    NO_DIFFERENCE_SHOWN = strawberry.enum_value("no_difference_shown",
                                                description="p >= alpha: no difference shown at this level.")


def _status(shown: bool) -> FigureStatus:
    return FigureStatus.SHOWN if shown else FigureStatus.TOO_FEW_RESPONSES


def _of(status: str) -> FigureStatus:
    return FigureStatus(status)


@strawberry.type(description="A figure with its 95 % confidence interval; values null unless status is SHOWN.")
class SurveyEstimate:
    status: FigureStatus = strawberry.field(description="SHOWN, or TOO_FEW_RESPONSES or PROTECTS_SMALL_CELL (values "
                                                        "null).")
    responses: int | None = strawberry.field(
        description="The responses the figure is computed from; null where the row is hidden (how many answered "
                    "an item can tell what they answered to the item it depends on).")
    value: float | None = strawberry.field(description="The figure itself (a score 0-100, a percent, a mean: as the "
                                                     "field holding it says); null when status is not SHOWN.")
    low: float | None = strawberry.field(description="Lower end of the 95 % interval (null from a single response).")
    high: float | None = strawberry.field(description="Upper end of the 95 % interval.")

    @classmethod
    def of(cls, e: reports.Estimate) -> SurveyEstimate:
        return cls(status=_of(e.status), responses=e.responses, value=e.value, low=e.low, high=e.high)


@strawberry.type(description="How many responses gave one value (or chose one option) of an item.")
class SurveyValueCount:
    value: str = strawberry.field(description="The value (\"1\" to \"5\", \"0\" to \"10\", yes \"1\" / no \"0\") "
                                              "or the option's code.")
    responses: int = strawberry.field(description="Responses that gave it (a multiple choice counts every option "
                                                  "chosen).")


@strawberry.type(description="One item of the questionnaire version: its mean and distribution (free text is never "
                             "reported).")
class SurveyItemFigures:
    link_id: str = strawberry.field(description="The item's linkId in the questionnaire.")
    kind: QuestionnaireItemKind = strawberry.field(description="The item's kind (LIKERT, NPS, CSAT, YES_NO, CHOICE or "
                                                                "MULTI_CHOICE: the kinds that are counted).")
    status: FigureStatus = strawberry.field(description="SHOWN, or TOO_FEW_RESPONSES or PROTECTS_SMALL_CELL (mean "
                                                        "and distribution null).")
    responses: int | None = strawberry.field(description="Responses that answered the item; null where the row is "
                                                         "hidden.")
    mean: SurveyEstimate | None = strawberry.field(
        description="The mean answer with its 95 % t interval (numeric and yes/no items; yes counts 1); null for "
                    "choice items.")
    distribution: list[SurveyValueCount] | None = strawberry.field(
        description="Responses per value (every value of the scale, or every option, zeros included); null when "
                    "not shown.")

    @classmethod
    def of(cls, item: reports.ItemFigures) -> SurveyItemFigures:
        return cls(link_id=item.link_id, kind=QuestionnaireItemKind(item.kind), status=_of(item.status),
                   responses=item.responses,
                   mean=SurveyEstimate.of(item.mean) if item.mean is not None else None,
                   distribution=None if item.distribution is None else [
                       SurveyValueCount(value=v, responses=n) for v, n in item.distribution])


@strawberry.type(description="One questionnaire version's figures for one department, month (and clinician when "
                             "asked). Percentages are 0-100; the score is 0-100 as the version's scoring defines it.")
class SurveyReportRow:
    questionnaire_id: strawberry.ID = strawberry.field(description="The questionnaire version the figures come from.")
    version: int = strawberry.field(description="Its version number.")
    department_id: strawberry.ID | None = strawberry.field(description="Null: responses about no department.")
    clinician_id: strawberry.ID | None = strawberry.field(
        description="The clinician (with byClinician or clinicianId); null otherwise or for responses about none.")
    month: str = strawberry.field(description="YYYY-MM, the institution's local month.")
    invited_count: int | None = strawberry.field(
        description="Invitations of the month (by send time) that went out: already due, not cancelled or refused by "
                    "the consent gate. Null where withheld, for an anonymous questionnaire only: in a hidden row, "
                    "with fewer invitations than minCell (or hidden to protect a clinician's few), or while a link "
                    "of the month can still be answered; the counts would tell which patient answered, and when.")
    answered_count: int | None = strawberry.field(
        description="Of those invitations, the ones answered (so far); null where invitedCount is.")
    invited: int = strawberry.field(
        description="invitedCount, but 0 where that is withheld.",
        deprecation_reason="Use invitedCount: this answers 0 where an anonymous questionnaire's count is withheld.")
    answered: int = strawberry.field(
        description="answeredCount, but 0 where that is withheld.",
        deprecation_reason="Use answeredCount: this answers 0 where an anonymous questionnaire's count is withheld.")
    response_rate: float | None = strawberry.field(description="Answered / invited, in percent; null without "
                                                               "invitations, or where the counts are withheld.")
    response_count: int | None = strawberry.field(
        description="Responses of the month (invited or entered by staff). Shown always for an identified "
                    "questionnaire; for an anonymous one only in a shown row (status SHOWN), null in a hidden one: "
                    "with the invitation list, a small cell's count would tell which of its few invited patients "
                    "answered. An anonymous questionnaire's month is reported once it has closed: read twice, a live "
                    "month would give its newest response away.")
    responses: int = strawberry.field(
        description="responseCount, but 0 where that is withheld.",
        deprecation_reason="Use responseCount: this answers 0 in an anonymous questionnaire's hidden row.")
    status: FigureStatus = strawberry.field(
        description="TOO_FEW_RESPONSES when the row has fewer responses than the minimum; PROTECTS_SMALL_CELL for a "
                    "clinician's row hidden with a colleague's small one (the department's row minus the shown "
                    "clinicians' would give it away). Either way every figure below is hidden, with its count.")
    score: SurveyEstimate = strawberry.field(description="Mean satisfaction score, 0-100, with its t interval.")
    satisfied: SurveyEstimate = strawberry.field(
        description="Percent of scored responses that were satisfied (score at or above the version's satisfiedAt), "
                    "with its Wilson interval.")
    nps: SurveyEstimate = strawberry.field(
        description="Net Promoter Score, -100 to 100: percent promoters (9-10) minus percent detractors (0-6) of the "
                    "NPS answers, with a normal interval from the trinomial variance.")
    csat: SurveyEstimate = strawberry.field(description="CSAT: percent of CSAT answers of 4 or 5, with its Wilson "
                                                        "interval.")
    meets_target: bool | None = strawberry.field(
        description="Whether the satisfied percentage reaches the institution's target; null when it is hidden.")
    items: list[SurveyItemFigures] = strawberry.field(description="Every reported item, in the questionnaire's "
                                                                  "order.")

    @classmethod
    def of(cls, row: reports.ReportRow) -> SurveyReportRow:
        return cls(
            questionnaire_id=strawberry.ID(str(row.questionnaire_id)), version=row.version,
            department_id=strawberry.ID(str(row.department_id)) if row.department_id else None,
            clinician_id=strawberry.ID(str(row.clinician_id)) if row.clinician_id else None,
            month=row.month, invited_count=row.invited, answered_count=row.answered, invited=row.invited or 0,
            answered=row.answered or 0, response_rate=row.response_rate, response_count=row.responses,
            responses=row.responses or 0, status=_of(row.status), score=SurveyEstimate.of(row.score),
            satisfied=SurveyEstimate.of(row.satisfied), nps=SurveyEstimate.of(row.nps),
            csat=SurveyEstimate.of(row.csat), meets_target=row.meets_target,
            items=[SurveyItemFigures.of(i) for i in row.items])


@strawberry.type(description="A version of the questionnaire and how it scores.")
class SurveyReportVersion:
    questionnaire_id: strawberry.ID = strawberry.field(description="The version's id.")
    version: int = strawberry.field(description="Its number (1, 2, ...).")
    method: QuestionnaireScoringMethod = strawberry.field(description="How a response's score is computed.")
    satisfied_at: float = strawberry.field(description="A response with at least this score (0-100) is satisfied.")


@strawberry.type(description="Survey figures per questionnaire version, department and month (aggregates only).")
class SurveyReport:
    questionnaire_key: strawberry.ID = strawberry.field(description="The questionnaire (all its versions).")
    from_: str = strawberry.field(name="from", description="First month, YYYY-MM.")
    to: str = strawberry.field(description="Last month, YYYY-MM.")
    min_cell: int = strawberry.field(description="No figure is shown from fewer responses than this.")
    satisfaction_target: int = strawberry.field(description="The institution's target, percent satisfied.")
    versions: list[SurveyReportVersion] = strawberry.field(description="Every version of the questionnaire.")
    rows: list[SurveyReportRow] = strawberry.field(
        description="Cells with invitations or responses, by month, version, department and clinician. An "
                    "anonymous questionnaire's current month is left out until it closes, and its TOO_FEW_RESPONSES "
                    "rows where the cell had no invitation that month (answered on invitations: the row would say "
                    "an earlier invitation was answered then).")

    @classmethod
    def of(cls, r: reports.Report) -> SurveyReport:
        return cls(questionnaire_key=strawberry.ID(str(r.questionnaire_key)), from_=r.first, to=r.last,
                   min_cell=r.min_cell, satisfaction_target=r.satisfaction_target,
                   versions=[SurveyReportVersion(questionnaire_id=strawberry.ID(str(v.questionnaire_id)),
                                                 version=v.version, method=QuestionnaireScoringMethod(v.method),
                                                 satisfied_at=v.satisfied_at)
                             for v in r.versions],
                   rows=[SurveyReportRow.of(row) for row in r.rows])


@strawberry.input(description="One side of a comparison: responses of a department (or all you may see), a "
                              "clinician, and a period of months.")
class SurveyGroupInput:
    from_: str = strawberry.field(name="from", description="First month, YYYY-MM.")
    to: str = strawberry.field(description="Last month, YYYY-MM (at most 36 months).")
    department_id: strawberry.ID | None = strawberry.field(
        default=None, description="The department; none: every department you may see (an admin: the institution).")
    clinician_id: strawberry.ID | None = strawberry.field(default=None, description="Only responses about this "
                                                                                     "clinician.")

    def group(self, prefix: str) -> reports.Group:
        return reports.Group(uuid_of(self.department_id, f"{prefix}departmentId"),
                             uuid_of(self.clinician_id, f"{prefix}clinicianId"), self.from_, self.to)


@strawberry.type(description="One group of a comparison.")
class SurveyGroupFigures:
    status: FigureStatus = strawberry.field(description="TOO_FEW_RESPONSES: no response of the group is in a cell "
                                                        "the report shows; mean and SD hidden, and no test.")
    responses: int = strawberry.field(
        description="Responses with a score (or answers to the item) the figures are computed from: those of the "
                    "cells (version, department, month, and clinician when one is asked) whose figure the report "
                    "shows.")
    withheld_count: int | None = strawberry.field(
        description="Responses of the group left out: in cells whose figure the report hides (too few there, or "
                    "protecting a small cell), so that no difference of groups can give a hidden cell away. A "
                    "hidden row counts all its responses; an anonymous questionnaire's current month counts nowhere "
                    "until it closes. Null for a questionnaire with an anonymous version, whatever the data: it "
                    "would give a hidden cell's count (see SurveyReportRow.responseCount).")
    withheld: int = strawberry.field(
        description="withheldCount, but 0 where that is null.",
        deprecation_reason="Use withheldCount: this answers 0 for a questionnaire with an anonymous version.")
    mean: float | None = strawberry.field(description="Mean score (or mean answer); null when status is "
                                                       "TOO_FEW_RESPONSES (no response in a shown cell).")
    standard_deviation: float | None = strawberry.field(description="Sample standard deviation (n - 1); null "
                                                                     "with fewer than 2 responses (and when "
                                                                     "mean is).")

    @classmethod
    def of(cls, g: reports.GroupFigures) -> SurveyGroupFigures:
        return cls(status=_status(g.shown), responses=g.responses, withheld_count=g.withheld,
                   withheld=g.withheld or 0, mean=g.mean,
                   standard_deviation=g.sd)


@strawberry.type(description="Two groups compared: Welch's t-test on scores, or Mann-Whitney U on an ordinal item. "
                             "Differences and effects are B minus A (positive: B is higher). Each group counts the "
                             "cells the report shows (see SurveyGroupFigures.withheld). Test figures are null "
                             "when a group has too few responses, or when no answer varies.")
class SurveyComparison:
    test: SurveyTest = strawberry.field(description="The test used.")
    item_link_id: str | None = strawberry.field(description="The item compared; null: the score.")
    alpha: float = strawberry.field(description="The significance level.")
    status: FigureStatus = strawberry.field(description="SHOWN when both groups have enough responses.")
    group_a: SurveyGroupFigures = strawberry.field(description="Group A (e.g. before).")
    group_b: SurveyGroupFigures = strawberry.field(description="Group B (e.g. after).")
    statistic: float | None = strawberry.field(description="t (B - A), or U of group A.")
    degrees_of_freedom: float | None = strawberry.field(description="Welch-Satterthwaite degrees of freedom (t only).")
    p_value: float | None = strawberry.field(description="Two-sided p-value.")
    difference: float | None = strawberry.field(description="Mean of B minus mean of A.")
    difference_low: float | None = strawberry.field(description="Lower end of the difference's 1 - alpha interval "
                                                                "(t only).")
    difference_high: float | None = strawberry.field(description="Upper end of that interval (t only).")
    cohens_d: float | None = strawberry.field(description="Cohen's d: the difference over the pooled SD (t only).")
    hedges_g: float | None = strawberry.field(description="Hedges' g: d corrected for small samples (t only).")
    rank_biserial: float | None = strawberry.field(description="Rank-biserial correlation, -1 to 1 (U only): "
                                                               "(U of B - U of A) / (nA nB).")
    conclusion: SurveyConclusion | None = strawberry.field(description="At alpha; null without a p-value.")

    @classmethod
    def of(cls, c: reports.Comparison) -> SurveyComparison:
        different = c.different
        return cls(
            test=SurveyTest(c.test), item_link_id=c.item_link_id, alpha=c.alpha, status=_status(c.shown),
            group_a=SurveyGroupFigures.of(c.a), group_b=SurveyGroupFigures.of(c.b), statistic=c.statistic,
            degrees_of_freedom=c.df, p_value=c.p_value, difference=c.difference, difference_low=c.difference_low,
            difference_high=c.difference_high, cohens_d=c.cohens_d, hedges_g=c.hedges_g,
            rank_biserial=c.rank_biserial,
            conclusion=None if different is None else (
                SurveyConclusion.DIFFERENT if different else SurveyConclusion.NO_DIFFERENCE_SHOWN))


@strawberry.type(description="One month of a p-chart. Values null when the month has too few responses.")
class SurveyControlPoint:
    month: str = strawberry.field(description="YYYY-MM.")
    status: FigureStatus = strawberry.field(description="SHOWN, or TOO_FEW_RESPONSES (left out of the centre line).")
    responses: int = strawberry.field(
        description="Responses with a satisfied / not satisfied verdict the percent is computed from: those of the "
                    "cells (version and department) whose share satisfied the report shows.")
    withheld_count: int | None = strawberry.field(
        description="Responses of the month left out: in cells whose share satisfied the report hides, so that the "
                    "chart minus the report's shown cells gives nothing away. A hidden row counts all its "
                    "responses; an anonymous questionnaire's current month counts nowhere until it closes. Null for "
                    "a questionnaire with an anonymous version, whatever the data: it would give a hidden cell's "
                    "count (see SurveyReportRow.responseCount).")
    withheld: int = strawberry.field(
        description="withheldCount, but 0 where that is null.",
        deprecation_reason="Use withheldCount: this answers 0 for a questionnaire with an anonymous version.")
    percent_satisfied: float | None = strawberry.field(description="Percent satisfied that month, 0 to 100; null "
                                                                    "unless status is SHOWN.")
    lower_limit: float | None = strawberry.field(description="Lower control limit (3 sigma for this month's n).")
    upper_limit: float | None = strawberry.field(description="Upper control limit (3 sigma for this month's n, at "
                                                           "most 100).")
    out_of_control: bool | None = strawberry.field(description="Outside the limits: a real change, not noise.")


@strawberry.type(description="Monthly percent satisfied as a p-chart (every version of the questionnaire together): "
                             "centre line p = satisfied / responses over the shown months, limits p +- 3 sqrt(p (1 - "
                             "p) / n) for each month's n, clipped to 0-100.")
class SurveyControlChart:
    questionnaire_key: strawberry.ID = strawberry.field(description="The questionnaire's key (Questionnaire.key), "
                                                                   "shared by all its versions.")
    department_id: strawberry.ID | None = strawberry.field(description="The department; null: all you may see.")
    from_: str = strawberry.field(name="from", description="First month.")
    to: str = strawberry.field(description="Last month.")
    min_cell: int = strawberry.field(description="Months with fewer responses are not shown.")
    centre_line: float | None = strawberry.field(description="Percent satisfied over the shown months (0 to "
                                                              "100); null when no month is shown (each has "
                                                              "fewer than minCell responses).")
    points: list[SurveyControlPoint] = strawberry.field(description="Every month of the period, in order.")

    @classmethod
    def of(cls, c: reports.ControlChart) -> SurveyControlChart:
        return cls(questionnaire_key=strawberry.ID(str(c.questionnaire_key)),
                   department_id=strawberry.ID(str(c.department_id)) if c.department_id else None,
                   from_=c.first, to=c.last, min_cell=c.min_cell, centre_line=c.centre,
                   points=[SurveyControlPoint(month=p.month, status=_status(p.shown), responses=p.responses,
                                              withheld_count=p.withheld, withheld=p.withheld or 0,
                                              percent_satisfied=p.percent, lower_limit=p.low, upper_limit=p.high,
                                              out_of_control=p.out_of_control) for p in c.points])


_KEY = Annotated[strawberry.ID, strawberry.argument(description="The questionnaire's key (all its versions).")]
_FROM = Annotated[str, strawberry.argument(name="from", description="First month, YYYY-MM.")]
_TO = Annotated[str, strawberry.argument(description="Last month, YYYY-MM (at most 36 months).")]
_DEPARTMENT = Annotated[strawberry.ID | None, strawberry.argument(
    description="One department; none: every department you may see (an admin: the institution).")]


def _key(value: strawberry.ID) -> uuid.UUID:
    key = uuid_of(value, "questionnaireKey")
    assert key is not None  # a non-null argument
    return key


@strawberry.type
class SurveyReportQuery:
    @strawberry.field(description="Survey figures per questionnaire version, department and month: responses, response "
                                  "rate, score, satisfied, NPS, CSAT (95 % intervals) and each item. Department heads "
                                  "see their departments, admins the institution.")
    async def survey_report(
        self, info: Info, questionnaire_key: _KEY, from_: _FROM, to: _TO, department_id: _DEPARTMENT = None,
        clinician_id: Annotated[strawberry.ID | None, strawberry.argument(
            description="Only responses about this clinician (rows name them).")] = None,
        by_clinician: Annotated[bool, strawberry.argument(
            description="One row per clinician as well (small cells hidden).")] = False,
    ) -> SurveyReport:
        found = await reports.report(info.context, _key(questionnaire_key), uuid_of(department_id, "departmentId"),
                                     uuid_of(clinician_id, "clinicianId"), from_, to, by_clinician)
        return SurveyReport.of(found)

    @strawberry.field(description="Compare two groups or periods (e.g. before and after a change) that share no "
                                  "response (overlapping groups are refused on groupB): Welch's t-test on scores, or "
                                  "Mann-Whitney U on an ordinal item, with effect size, p-value, both n and the "
                                  "conclusion at alpha. Only the cells the report shows count.")
    async def survey_comparison(
        self, info: Info, questionnaire_key: _KEY,
        group_a: Annotated[SurveyGroupInput, strawberry.argument(description="Group A (e.g. before).")],
        group_b: Annotated[SurveyGroupInput, strawberry.argument(description="Group B (e.g. after).")],
        item_link_id: Annotated[str | None, strawberry.argument(
            description="A Likert, 0-10, CSAT or yes/no item to compare (Mann-Whitney U); none: the score (Welch's "
                        "t).")] = None,
        alpha: Annotated[float, strawberry.argument(description="Significance level, 0.0001 to 0.5.")] = 0.05,
    ) -> SurveyComparison:
        found = await reports.compare(info.context, _key(questionnaire_key), item_link_id, group_a.group("groupA."),
                                      group_b.group("groupB."), alpha)
        return SurveyComparison.of(found)

    @strawberry.field(description="Monthly percent satisfied with its p-chart limits, each month flagged in or out of "
                                  "control.")
    async def survey_control_chart(self, info: Info, questionnaire_key: _KEY, from_: _FROM, to: _TO,
                                   department_id: _DEPARTMENT = None) -> SurveyControlChart:
        chart = await reports.control_chart(info.context, _key(questionnaire_key),
                                            uuid_of(department_id, "departmentId"), from_, to)
        return SurveyControlChart.of(chart)
