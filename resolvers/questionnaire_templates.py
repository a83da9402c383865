"""The questionnaires careloop ships, which an institution adopts in one call (``questionnaireAdopt``).

The dental clinic's two forms come from the seed (a 7-item outpatient satisfaction form: front-desk
reception, nurses' attitude, nursing skill, health guidance, ...; a 5-item form in which doctors rate the
nursing service: the head nurse's management, nurses' competence, attitude, ...); the NPS and CSAT forms
are the usual one-question instruments with a comment. Each is a definition ``core.questionnaire``
accepts as it stands, in its canonical form (tests/core/test_questionnaire.py checks them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def _t(zh: str, en: str) -> dict[str, str]:
    return {"zh-CN": zh, "en": en}


SATISFACTION_ANCHORS = {"1": _t("很不满意", "Very dissatisfied"), "2": _t("不满意", "Dissatisfied"),
                        "3": _t("一般", "Neutral"), "4": _t("满意", "Satisfied"), "5": _t("很满意", "Very satisfied")}


def _rated(link_id: str, zh: str, en: str, kind: str = "likert") -> dict[str, Any]:
    return {"link_id": link_id, "kind": kind, "text": _t(zh, en), "required": True, "counts": True,
            "anchors": SATISFACTION_ANCHORS}


@dataclass(frozen=True)
class Template:
    """A shipped questionnaire: what ``questionnaireAdopt`` copies into the institution."""

    code: str
    title: dict[str, str]
    purpose: dict[str, str]
    respondent: str
    subject: str
    anonymous: bool
    items: list[dict[str, Any]]
    scoring: dict[str, Any]


OUTPATIENT_SATISFACTION = Template(
    code="outpatient_satisfaction",
    title=_t("门诊患者满意度调查", "Outpatient satisfaction survey"),
    purpose=_t("了解门诊患者对前台接诊、护理服务、健康指导、就诊环境和候诊时间的满意度，每月按科室通报并整改。",
               "How satisfied outpatients are with reception, nursing, health guidance, the clinic and waiting "
               "times; reported monthly per department and acted upon."),
    respondent="patient", subject="visit", anonymous=False,
    items=[
        _rated("reception", "前台接诊（迎送、登记、分诊、引导）",
               "Reception at the front desk (welcome, registration, triage, guidance)"),
        _rated("nurse_attitude", "护士服务态度", "The nurses' attitude"),
        _rated("nursing_skill", "护理操作技术水平", "The nurses' technical skill"),
        _rated("health_guidance", "健康指导（治疗前后注意事项的讲解）",
               "Health guidance (what to watch before and after treatment)"),
        _rated("environment", "就诊环境（整洁、舒适、保护隐私）", "The clinic (clean, comfortable, private)"),
        _rated("waiting_time", "候诊时间", "Waiting time"),
        _rated("overall", "总体满意度", "Overall satisfaction", kind="csat"),
        {"link_id": "comment", "kind": "text", "required": False, "counts": False,
         "text": _t("请告诉我们哪里做得不好，我们会改进。", "Please tell us what went wrong: we will put it right."),
         "enable_when": {"link_id": "overall", "operator": "<=", "answer": 3}},
    ],
    # satisfied: a mean of 4 ("satisfied") or better on the seven items
    scoring={"method": "mean", "satisfied_at": 75, "nps_item": None, "csat_item": "overall",
             "low": {"any_item_at_most": 2, "nps_at_most": None}},
)

NURSING_BY_DOCTORS = Template(
    code="nursing_by_doctors",
    title=_t("医生对护理工作满意度调查", "Doctors' satisfaction with the nursing service"),
    purpose=_t("医生评价科室护理工作：护士长的管理、护士的业务能力、服务态度和医护配合。",
               "Doctors rate their department's nursing: the head nurse's management, the nurses' competence, "
               "attitude and cooperation."),
    respondent="staff", subject="department", anonymous=True,
    items=[
        _rated("head_nurse_management", "护士长的管理能力", "The head nurse's management"),
        _rated("nurse_competence", "护士业务能力", "The nurses' professional competence"),
        _rated("nurse_attitude", "护士服务态度", "The nurses' attitude"),
        _rated("cooperation", "医护配合", "Cooperation between nurses and doctors"),
        _rated("overall", "总体满意度", "Overall satisfaction", kind="csat"),
        {"link_id": "comment", "kind": "text", "required": False, "counts": False,
         "text": _t("其他意见或建议", "Other comments or suggestions")},
    ],
    scoring={"method": "mean", "satisfied_at": 75, "nps_item": None, "csat_item": "overall", "low": None},
)

NPS = Template(
    code="nps",
    title=_t("推荐意愿调查（NPS）", "Net Promoter Score"),
    purpose=_t("患者向亲友推荐本机构的意愿及原因。", "Whether patients would recommend us to friends and family, "
                                                   "and why."),
    respondent="patient", subject="visit", anonymous=False,
    items=[
        {"link_id": "recommend", "kind": "nps", "required": True, "counts": True,
         "text": _t("您向亲友推荐我们的可能性有多大？（0 = 完全不可能，10 = 非常可能）",
                    "How likely are you to recommend us to a friend or relative? (0 = not at all, "
                    "10 = extremely likely)")},
        {"link_id": "why", "kind": "text", "required": False, "counts": False,
         "text": _t("您给出这个分数的主要原因是什么？", "What is the main reason for your score?")},
    ],
    # the score is the answer times ten; satisfied: 7 or more (passives and promoters)
    scoring={"method": "mean", "satisfied_at": 70, "nps_item": "recommend", "csat_item": None,
             "low": {"any_item_at_most": None, "nps_at_most": 6}},
)

CSAT = Template(
    code="csat",
    title=_t("服务满意度（CSAT）", "Customer satisfaction (CSAT)"),
    purpose=_t("患者对本次服务的总体满意度。", "How satisfied the patient is with the service they received."),
    respondent="patient", subject="service", anonymous=False,
    items=[
        _rated("satisfaction", "您对本次服务的满意程度如何？", "How satisfied are you with the service you received?",
               kind="csat"),
        {"link_id": "comment", "kind": "text", "required": False, "counts": False,
         "text": _t("还有什么想告诉我们的吗？", "Anything else you would like to tell us?")},
    ],
    # satisfied: a 4 or a 5 (the top two boxes)
    scoring={"method": "top2box", "satisfied_at": 100, "nps_item": None, "csat_item": "satisfaction",
             "low": {"any_item_at_most": 2, "nps_at_most": None}},
)

TEMPLATES: dict[str, Template] = {t.code: t for t in (OUTPATIENT_SATISFACTION, NURSING_BY_DOCTORS, NPS, CSAT)}
