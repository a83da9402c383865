"""The audit trail in words a compliance officer reads: roles, actions, field classes, fields and policy
rules said plainly, in English or Chinese. The one place these words live: the access report, its PDF and
its CSV all speak through it, so no column name (``paused_at``) or policy line
(``front_desk, *, patient.contact, read, allow``) reaches a reader.
"""

from __future__ import annotations

import re

from audit.reads import EMERGENCY_ACCESS, PARTNER_GRANT
from policies.fields import PATIENT_FIELD_CLASS

EN = "en"
ZH_CN = "zh-CN"
LANGUAGES = (EN, ZH_CN)

ROLES = {
    "front_desk": ("front desk", "前台"), "nurse": ("nurse", "护士"), "doctor": ("doctor", "医生"),
    "department_head": ("department head", "科室主任"), "support_agent": ("support agent", "客服专员"),
    "compliance_officer": ("compliance officer", "合规专员"), "finance": ("finance", "财务"),
    "admin": ("administrator", "管理员"), "patient": ("patient", "患者"), "partner": ("care partner", "合作方"),
}
KINDS = {"staff": ("staff", "员工"), "patient": ("the patient (portal)", "患者本人（门户）"),
         "partner": ("care partner", "合作方"), "anonymous": ("anonymous", "匿名"), "system": ("the system", "系统")}
CLASSES = {
    "identity": ("identity details", "身份信息"), "contact": ("contact details", "联系方式"),
    "clinical": ("health information", "健康信息"), "needs": ("care needs", "照护需求"),
    "internal": ("internal labels", "内部标签"), "audit": ("the audit trail", "审计记录"),
    "ticket": ("support tickets", "服务工单"), "document": ("documents", "文件"),
}
# Objects of the policy that are not a class of the patient file.
OBJECTS = {"audit": ("the audit trail", "审计记录"), "patient": ("patient files", "患者档案"),
           "emergency_access": ("emergency accesses", "紧急访问"), "partner": ("care partners", "合作方"),
           "ticket": ("support tickets", "服务工单"), "contact": ("family and emergency contacts", "联系人")}
ACTIONS = {
    "read": ("read", "查看"), "create": ("created", "创建"), "update": ("changed", "修改"),
    "delete": ("deleted", "删除"), "archive": ("archived", "归档"), "export": ("exported", "导出"),
    "break_glass": ("opened in an emergency (break-glass)", "紧急访问"), "consent": ("recorded a consent", "记录同意"),
    "grant": ("granted access", "授权"), "disclose": ("disclosed", "披露"), "login": ("signed in", "登录"),
    "logout": ("signed out", "登出"), "lockout": ("locked out", "锁定"), "token": ("issued a token", "签发令牌"),
    "retention": ("changed the retention", "修改保留期"), "archive_trail": ("archived the trail", "归档审计记录"),
    "key_rotation": ("rotated a key", "轮换密钥"),
}
VERBS = {"read": ("read", "查看"), "create": ("create", "创建"), "update": ("change", "修改"),
         "delete": ("delete", "删除"), "export": ("export", "导出")}
OUTCOMES = {"allowed": ("allowed", "允许"), "denied": ("refused", "拒绝"), "error": ("failed", "失败")}
# Columns said in words; any other column is said by its name with its suffix turned into words.
FIELDS = {
    "full_name": ("name", "姓名"), "sex": ("sex", "性别"), "birth_date": ("birth date", "出生日期"),
    "occupation": ("occupation", "职业"), "national_id_type": ("ID document type", "证件类型"),
    "national_id": ("ID number", "证件号码"), "status": ("status", "状态"), "segments": ("segments", "分群"),
    "tags": ("tags", "标签"), "department_id": ("department", "科室"), "created_at": ("time created", "创建时间"),
    "updated_at": ("time changed", "修改时间"), "address": ("address", "地址"), "phone": ("phone", "电话"),
    "alt_phone": ("second phone", "备用电话"), "email": ("e-mail", "电子邮件"),
    "preferred_channel": ("preferred channel", "首选渠道"), "preferred_language": ("preferred language", "首选语言"),
    "contact_consent": ("consent to be contacted", "联系同意"), "contact_channels": ("contact channels", "联系渠道"),
    "contact_purposes": ("contact purposes", "联系目的"), "medical_history": ("medical history", "病史"),
    "diagnoses": ("diagnoses", "诊断"), "allergies": ("allergies", "过敏史"),
    "current_medication": ("current medication", "当前用药"), "diet_preferences": ("diet preferences", "饮食偏好"),
    "activity_preferences": ("activity preferences", "活动偏好"), "special_needs": ("special needs", "特殊需求"),
    "owner_id": ("owner", "负责人"), "paused_at": ("time paused", "暂停时间"), "notes": ("notes", "备注"),
    "summary": ("summary", "摘要"),
}
# The records a ``table.column`` name is read on, beside the patient's own file (``contact.phone``, ``visit.summary``).
TABLES = {"contact": ("contact", "联系人"), "visit": ("visit", "就诊")}
_SUFFIXES = ((re.compile(r"_at$"), (" time", "时间")), (re.compile(r"_on$"), (" date", "日期")),
             (re.compile(r"_id$"), ("", "")))


def _pick(pair: tuple[str, str], language: str) -> str:
    return pair[1] if language == ZH_CN else pair[0]


def role(name: str, language: str = EN) -> str:
    return _pick(ROLES.get(name, (_plain(name), _plain(name))), language)


def kind(name: str, language: str = EN) -> str:
    return _pick(KINDS.get(name, (_plain(name), _plain(name))), language)


def field_class(name: str, language: str = EN) -> str:
    return _pick(CLASSES.get(name, (_plain(name), _plain(name))), language)


def action(name: str, language: str = EN) -> str:
    return _pick(ACTIONS.get(name, (_plain(name), _plain(name))), language)


def outcome(name: str, language: str = EN) -> str:
    return _pick(OUTCOMES.get(name, (_plain(name), _plain(name))), language)


def field(column: str, language: str = EN) -> str:
    """A column in words, with its class: "allergies (health information)"; an export's ``format:csv``
    detail as "format csv"."""
    table, dot, own = column.partition(".")
    if dot and ":" not in column:  # found in review: "contact.phone" reached the report as the column it is
        record, words = _pick(TABLES.get(table, (_plain(table), _plain(table))), language), _words(own, language)
        words = record + ("" if _is_chinese(record[-1:]) and _is_chinese(words[:1]) else " ") + words
    else:
        words = _words(column, language)
    klass = PATIENT_FIELD_CLASS.get(column)
    if klass is None:
        return words
    return f"{words}（{field_class(klass, ZH_CN)}）" if language == ZH_CN else f"{words} ({field_class(klass)})"


def _is_chinese(text: str) -> bool:
    return bool(text) and not text.isascii()


def _words(column: str, language: str) -> str:
    """One column's own words: known ones said, any other by its name with its suffix turned into words."""
    if column in FIELDS:
        return _pick(FIELDS[column], language)
    words = column
    for suffix, replacement in _SUFFIXES:
        words = suffix.sub(_pick(replacement, language), words)
    return _plain(words.replace(".", " "))


# The accesses a record names beside the policy's line (``audit.reads.grant_line``: the grant a file was open under,
# ``access.file_grants``), said as what they are (found in review: a partner's read under the
# patient's grant and a break-glass read were "allowed by a rule of the policy" in the patient's letter).
GRANTS = {PARTNER_GRANT: ("allowed by the patient's grant to the care partner", "依据患者对合作方的授权允许"),
          EMERGENCY_ACCESS: ("allowed by emergency access (break-glass)", "依据紧急访问（破窗）允许")}


def rule(line: str, language: str = EN) -> str:
    """A policy line in words: ``front_desk, *, patient.contact, read, allow`` is "allowed by the front desk's
    rule to read contact details"; a grant's line says which kind of grant."""
    kind = line.strip().partition(" ")[0]
    if kind in GRANTS:
        return _pick(GRANTS[kind], language)
    parts = [part.strip() for part in line.split(",")]
    if len(parts) < 4:
        return _pick(("allowed by a rule of the policy", "由策略规则允许"), language)
    subject, obj, act = parts[0], parts[2], parts[3]
    verb = _pick(VERBS.get(act, (_plain(act), _plain(act))), language)
    if obj.startswith("patient."):
        what = field_class(obj.split(".", 1)[1], language)
    else:
        what = _pick(OBJECTS.get(obj, (_plain(obj), _plain(obj))), language)
    if language == ZH_CN:
        return f"依据{role(subject, ZH_CN)}的规则允许{verb}{what}"
    return f"allowed by the {role(subject)}'s rule to {verb} {what}"


def rules(joined: str, language: str = EN) -> list[str]:
    """The rules an audit record names (``; ``-separated lines), in words."""
    return [rule(line, language) for line in joined.split("; ") if line.strip()]


def _plain(name: str) -> str:
    return name.replace("_", " ").replace(":", " ").strip()
