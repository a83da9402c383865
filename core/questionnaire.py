"""Questionnaire definitions, answers and scores (FHIR Questionnaire), pure: no database.

An item is JSON (``Questionnaire.items``)::

    {"link_id": "q1", "kind": "likert", "text": {"zh-CN": "...", "en": "..."}, "required": true,
     "anchors": {"1": {"zh-CN": "很不满意"}, "5": {...}},          # likert and csat only
     "options": [{"code": "a", "text": {...}}],                      # choice and multi_choice
     "enable_when": {"link_id": "q0", "operator": "<=", "answer": 2},
     "counts": true,                                                 # toward the score
     "items": [...]}                                                 # a section's own items

Sections nest one level and hold no answer. ``enable_when`` names an EARLIER question (numeric,
yes/no or single choice): an item whose condition is false, or whose source is unanswered or itself
hidden, is hidden, and so is every item of a hidden section. Hidden items take no answer and are never
required.

Scoring JSON (``Questionnaire.scoring``)::

    {"method": "mean" | "top2box", "satisfied_at": 0-100, "nps_item": "q8" | null,
     "csat_item": "q9" | null, "low": {"any_item_at_most": 2, "nps_at_most": 6} | null}

A response's score is 0-100. ``mean``: the mean of the counted answers, each scaled to 0-100 (Likert and
CSAT (v-1)/4*100, NPS v*10, yes 100 / no 0). ``top2box``: the share of counted answers in the top two
boxes (Likert and CSAT >= 4, NPS >= 9, yes), as 0-100. No counted answer: no score.

Errors are BAD_USER_INPUT naming the place by its API name (``items[2].options``,
``items[0].items[1].enableWhen.answer``, ``scoring.satisfiedAt``, ``answers.q3``), never an answer's value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import BadUserInput
from core.validation import Problems, clean_text

KINDS = ("likert", "nps", "csat", "yes_no", "choice", "multi_choice", "text", "section")
NUMERIC_KINDS = ("likert", "nps", "csat")
CHOICE_KINDS = ("choice", "multi_choice")
ANCHORED_KINDS = ("likert", "csat")
COUNTABLE_KINDS = ("likert", "nps", "csat", "yes_no")  # may count toward the score
CONDITION_SOURCE_KINDS = ("likert", "nps", "csat", "yes_no", "choice")
RANGES = {"likert": (1, 5), "csat": (1, 5), "nps": (0, 10)}
OPERATORS = ("=", "!=", "<", "<=", ">", ">=")
EQUALITY_OPERATORS = ("=", "!=")
METHODS = ("mean", "top2box")
LANGUAGES = ("zh-CN", "en")
REQUIRED_LANGUAGE = "zh-CN"
LANGUAGE_FIELDS = {"zh-CN": "zhCN", "en": "en"}  # the API's names for the language keys

MAX_ITEMS = 100  # questions and sections, nested ones included
MIN_OPTIONS, MAX_OPTIONS = 2, 20
MAX_ITEM_TEXT = 500
MAX_LABEL_TEXT = 200  # option and anchor labels
MAX_TEXT_ANSWER = 2000
LINK_ID = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,39}")  # fits response_answer.link_id (40)
CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")  # fits response_answer.choice (40)

_ITEM_KEYS = frozenset({"link_id", "kind", "text", "required", "anchors", "options", "enable_when", "counts",
                        "items"})
_SCORING_KEYS = frozenset({"method", "satisfied_at", "nps_item", "csat_item", "low"})
_LOW_KEYS = frozenset({"any_item_at_most", "nps_at_most"})
_API_NAMES = {"link_id": "linkId", "enable_when": "enableWhen", "satisfied_at": "satisfiedAt",
              "nps_item": "npsItem", "csat_item": "csatItem", "any_item_at_most": "anyItemAtMost",
              "nps_at_most": "npsAtMost"}

Items = list[dict[str, Any]]


def _fail(field: str, problem: str) -> BadUserInput:
    return BadUserInput(f"{field}: {problem}", field=field)


def _api(key: str) -> str:
    return _API_NAMES.get(key, key)


@dataclass(frozen=True, slots=True)
class Score:
    """What one response scores: ``score`` 0-100 (None without a counted answer), ``satisfied`` (score at
    or above the scoring's ``satisfied_at``), the NPS and CSAT items' raw answers, and ``low`` (under the
    questionnaire's threshold: the loop is to be closed)."""

    score: float | None
    satisfied: bool | None
    nps: int | None
    csat: int | None
    low: bool


# --- walking a definition -------------------------------------------------------------------------------


def walk(items: Items) -> Iterator[dict[str, Any]]:
    """Every item in order, a section before its own items."""
    for item in items:
        yield item
        if item.get("kind") == "section":
            yield from item.get("items") or ()


def questions(items: Items) -> Iterator[dict[str, Any]]:
    """The items that take an answer, in order."""
    return (item for item in walk(items) if item.get("kind") != "section")


def by_link_id(items: Items) -> dict[str, dict[str, Any]]:
    return {item["link_id"]: item for item in walk(items)}


def number_of(kind: str, value: Any) -> float | None:
    """An answer as the number reports aggregate (yes 1, no 0), None for choices and text."""
    if kind in NUMERIC_KINDS:
        return float(value)
    if kind == "yes_no":
        return 1.0 if value else 0.0
    return None


# --- checking a definition ------------------------------------------------------------------------------


def check_texts(value: Any, field: str, max_length: int) -> dict[str, str]:
    """Language versions: ``zh-CN`` required, ``en`` optional, nothing else; each cleaned."""
    if not isinstance(value, Mapping):
        raise _fail(field, "must give the text per language (zh-CN required, en optional).")
    unknown = set(value) - set(LANGUAGES)
    if unknown:
        raise _fail(field, "only zh-CN and en are supported.")
    texts: dict[str, str] = {}
    for language in LANGUAGES:
        text = value.get(language)
        if text is None:
            continue
        where = f"{field}.{LANGUAGE_FIELDS[language]}"
        if not isinstance(text, str):
            raise _fail(where, "must be text.")
        cleaned = clean_text(text, field=where, max_length=max_length)
        if cleaned:
            texts[language] = cleaned
    if REQUIRED_LANGUAGE not in texts:
        raise _fail(f"{field}.{LANGUAGE_FIELDS[REQUIRED_LANGUAGE]}", "is required.")
    return texts


def clean_definition(items: Any, scoring: Any) -> tuple[Items, dict[str, Any]]:
    """The canonical form of a definition (texts trimmed, defaults spelled out), or BAD_USER_INPUT."""
    if not isinstance(items, list) or not items:
        raise _fail("items", "must list at least one item.")
    seen: dict[str, dict[str, Any]] = {}  # earlier items by link id, for enable_when
    cleaned = [_clean_item(item, f"items[{i}]", seen, nested=False) for i, item in enumerate(items)]
    if len(seen) > MAX_ITEMS:
        raise _fail("items", f"at most {MAX_ITEMS} items, sections and their items included.")
    if not any(item["kind"] != "section" for item in walk(cleaned)):
        raise _fail("items", "must hold at least one question.")
    return cleaned, _clean_scoring(scoring, seen)


def check_definition(items: Any, scoring: Any) -> None:
    """BAD_USER_INPUT naming the first fault of a definition; None when it is sound."""
    clean_definition(items, scoring)


def _clean_item(item: Any, field: str, seen: dict[str, dict[str, Any]], *, nested: bool) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise _fail(field, "must be an item.")
    unknown = sorted(set(item) - _ITEM_KEYS)
    if unknown:
        raise _fail(f"{field}.{_api(unknown[0])}", "is not an item field.")
    link_id = item.get("link_id")
    if not isinstance(link_id, str) or not LINK_ID.fullmatch(link_id):
        raise _fail(f"{field}.linkId", "must be a letter then up to 39 letters, digits, _ . or -.")
    if link_id in seen:
        raise _fail(f"{field}.linkId", "is used by another item.")
    kind = item.get("kind")
    if kind not in KINDS:
        raise _fail(f"{field}.kind", f"must be one of {', '.join(KINDS)}.")
    if kind == "section" and nested:
        raise _fail(f"{field}.kind", "sections nest one level only.")
    out: dict[str, Any] = {"link_id": link_id, "kind": kind,
                           "text": check_texts(item.get("text"), f"{field}.text", MAX_ITEM_TEXT)}
    if item.get("enable_when") is not None:
        out["enable_when"] = _clean_condition(item["enable_when"], f"{field}.enableWhen", seen)
    _check_kind_fields(item, kind, field)
    if kind == "section":
        seen[link_id] = out
        out["items"] = _clean_section_items(item.get("items"), field, seen)
        return out
    out["required"] = _flag(item, "required", field, default=False)
    counts = _flag(item, "counts", field, default=kind in ANCHORED_KINDS)
    if counts and kind not in COUNTABLE_KINDS:
        raise _fail(f"{field}.counts", "only Likert, NPS, CSAT and yes/no items count toward the score.")
    out["counts"] = counts
    if kind in ANCHORED_KINDS and item.get("anchors"):
        out["anchors"] = _clean_anchors(item["anchors"], kind, f"{field}.anchors")
    if kind in CHOICE_KINDS:
        out["options"] = _clean_options(item.get("options"), f"{field}.options")
    seen[link_id] = out
    return out


def _check_kind_fields(item: Mapping[str, Any], kind: str, field: str) -> None:
    """Fields a kind has no use for are refused rather than silently dropped."""
    if item.get("anchors") and kind not in ANCHORED_KINDS:
        raise _fail(f"{field}.anchors", "only Likert and CSAT items have anchors.")
    if item.get("options") and kind not in CHOICE_KINDS:
        raise _fail(f"{field}.options", "only choice items have options.")
    if item.get("items") and kind != "section":
        raise _fail(f"{field}.items", "only sections hold items.")
    if kind == "section" and (item.get("required") or item.get("counts")):
        raise _fail(f"{field}.{'required' if item.get('required') else 'counts'}",
                    "a section takes no answer: mark its items instead.")


def _clean_section_items(items: Any, field: str, seen: dict[str, dict[str, Any]]) -> Items:
    if not isinstance(items, list) or not items:
        raise _fail(f"{field}.items", "a section must hold at least one item.")
    if len(seen) + len(items) > MAX_ITEMS:
        raise _fail("items", f"at most {MAX_ITEMS} items, sections and their items included.")
    return [_clean_item(child, f"{field}.items[{i}]", seen, nested=True) for i, child in enumerate(items)]


def _flag(item: Mapping[str, Any], key: str, field: str, *, default: bool) -> bool:
    value = item.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _fail(f"{field}.{key}", "must be true or false.")
    return value


def _clean_anchors(anchors: Any, kind: str, field: str) -> dict[str, dict[str, str]]:
    if not isinstance(anchors, Mapping):
        raise _fail(field, "must label scale points.")
    low, high = RANGES[kind]
    allowed = {str(v) for v in range(low, high + 1)}
    out: dict[str, dict[str, str]] = {}
    for point in sorted(anchors, key=lambda p: int(p) if str(p).isdigit() else -1):
        if str(point) not in allowed:
            raise _fail(field, f"labels only the scale's points {low} to {high}.")
        out[str(point)] = check_texts(anchors[point], f"{field}.{point}", MAX_LABEL_TEXT)
    return out


def _clean_options(options: Any, field: str) -> list[dict[str, Any]]:
    if not isinstance(options, list) or not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
        raise _fail(field, f"a choice item needs {MIN_OPTIONS} to {MAX_OPTIONS} options.")
    out: list[dict[str, Any]] = []
    codes: set[str] = set()
    for i, option in enumerate(options):
        where = f"{field}[{i}]"
        if not isinstance(option, Mapping) or set(option) - {"code", "text"}:
            raise _fail(where, "an option has a code and a text.")
        code = option.get("code")
        if not isinstance(code, str) or not CODE.fullmatch(code):
            raise _fail(f"{where}.code", "must be up to 40 letters, digits, _ . or -.")
        if code in codes:
            raise _fail(f"{where}.code", "is used by another option.")
        codes.add(code)
        out.append({"code": code, "text": check_texts(option.get("text"), f"{where}.text", MAX_LABEL_TEXT)})
    return out


def _clean_condition(condition: Any, field: str, seen: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if not isinstance(condition, Mapping) or set(condition) != {"link_id", "operator", "answer"}:
        raise _fail(field, "a condition has linkId, operator and answer.")
    source = seen.get(condition["link_id"]) if isinstance(condition["link_id"], str) else None
    if source is None:
        raise _fail(f"{field}.linkId", "must name an earlier item.")
    if source["kind"] not in CONDITION_SOURCE_KINDS:
        raise _fail(f"{field}.linkId", "must name a Likert, NPS, CSAT, yes/no or single choice item.")
    operator = condition["operator"]
    kind = source["kind"]
    allowed = OPERATORS if kind in NUMERIC_KINDS else EQUALITY_OPERATORS
    if operator not in allowed:
        raise _fail(f"{field}.operator", f"must be one of {' '.join(allowed)} for this item.")
    answer = condition["answer"]
    where = f"{field}.answer"
    if kind in NUMERIC_KINDS:
        low, high = RANGES[kind]
        if not _is_int(answer) or not low <= answer <= high:
            raise _fail(where, f"must be a whole number from {low} to {high}.")
    elif kind == "yes_no":
        if not isinstance(answer, bool):
            raise _fail(where, "must be true or false.")
    elif not isinstance(answer, str) or answer not in {option["code"] for option in source["options"]}:
        raise _fail(where, "must be one of the item's option codes.")
    return {"link_id": source["link_id"], "operator": operator, "answer": answer}


def _clean_scoring(scoring: Any, seen: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if not isinstance(scoring, Mapping):
        raise _fail("scoring", "must give the scoring method and threshold.")
    unknown = sorted(set(scoring) - _SCORING_KEYS)
    if unknown:
        raise _fail(f"scoring.{_api(unknown[0])}", "is not a scoring field.")
    method = scoring.get("method")
    if method not in METHODS:
        raise _fail("scoring.method", f"must be one of {', '.join(METHODS)}.")
    satisfied_at = scoring.get("satisfied_at")
    if isinstance(satisfied_at, bool) or not isinstance(satisfied_at, int | float) or not 0 <= satisfied_at <= 100:
        raise _fail("scoring.satisfiedAt", "must be a score from 0 to 100.")
    return {"method": method, "satisfied_at": satisfied_at,
            "nps_item": _scoring_item(scoring, "nps_item", "nps", seen),
            "csat_item": _scoring_item(scoring, "csat_item", "csat", seen),
            "low": _clean_low(scoring.get("low"))}


def _scoring_item(scoring: Mapping[str, Any], key: str, kind: str, seen: dict[str, dict[str, Any]]) -> str | None:
    link_id = scoring.get(key)
    if link_id is None:
        return None
    item = seen.get(link_id) if isinstance(link_id, str) else None
    if item is None or item["kind"] != kind:
        raise _fail(f"scoring.{_api(key)}", f"must name an item of kind {kind}.")
    return str(link_id)


def _clean_low(low: Any) -> dict[str, int | None] | None:
    if low is None:
        return None
    if not isinstance(low, Mapping) or set(low) - _LOW_KEYS:
        raise _fail("scoring.low", "has anyItemAtMost and npsAtMost.")
    any_item, nps = low.get("any_item_at_most"), low.get("nps_at_most")
    if any_item is not None and (not _is_int(any_item) or not 1 <= any_item <= 4):
        raise _fail("scoring.low.anyItemAtMost", "must be a whole number from 1 to 4.")
    if nps is not None and (not _is_int(nps) or not 0 <= nps <= 9):
        raise _fail("scoring.low.npsAtMost", "must be a whole number from 0 to 9.")
    if any_item is None and nps is None:
        return None
    return {"any_item_at_most": any_item, "nps_at_most": nps}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- answers --------------------------------------------------------------------------------------------


def _holds(condition: Mapping[str, Any], answer: Any) -> bool:
    expected, operator = condition["answer"], condition["operator"]
    if operator == "=":
        return bool(answer == expected)
    if operator == "!=":
        return bool(answer != expected)
    if operator == "<":
        return bool(answer < expected)
    if operator == "<=":
        return bool(answer <= expected)
    if operator == ">":
        return bool(answer > expected)
    return bool(answer >= expected)


def visible(items: Items, answers: Mapping[str, Any]) -> set[str]:
    """The link ids shown given these answers (sections included): a hidden or unanswered source hides."""
    shown: set[str] = set()

    def enabled(item: Mapping[str, Any]) -> bool:
        condition = item.get("enable_when")
        if condition is None:
            return True
        source = condition["link_id"]
        return source in shown and answers.get(source) is not None and _holds(condition, answers[source])

    for item in items:
        if not enabled(item):
            continue
        shown.add(item["link_id"])
        for child in (item.get("items") or ()) if item["kind"] == "section" else ():
            if enabled(child):
                shown.add(child["link_id"])
    return shown


def check_answers(items: Items, answers: Mapping[str, Any]) -> dict[str, Any]:
    """The answers checked against the (clean) definition, in item order, blanks dropped: each value of
    its kind, required items answered unless hidden, nothing for hidden, unknown or section items. Every
    faulty answer is reported at once (``InvalidInput``), each at ``answers.<linkId>``."""
    index = by_link_id(items)
    problems = Problems()
    given: dict[str, Any] = {}
    for link_id, value in answers.items():
        item = index.get(link_id)
        field = f"answers.{link_id}" if isinstance(link_id, str) and LINK_ID.fullmatch(link_id) else "answers"
        if item is None or item["kind"] == "section":
            problems.add(field, "unknown", "is not a question of this questionnaire.")
            continue
        with problems.collect(field):
            normal = _answer_value(item, value, field)
            if normal is not None:
                given[link_id] = normal
    shown = visible(items, given)
    for link_id in given:
        if link_id not in shown:
            problems.add(f"answers.{link_id}", "hidden", "is hidden by its condition and takes no answer.")
    for item in questions(items):
        field = f"answers.{item['link_id']}"
        if item.get("required") and item["link_id"] in shown and item["link_id"] not in given \
                and not problems.has(field):
            problems.add(field, "required", "is required.")
    problems.check()
    return {item["link_id"]: given[item["link_id"]] for item in questions(items) if item["link_id"] in given}


def _answer_value(item: Mapping[str, Any], value: Any, field: str) -> Any:
    """One answer in its canonical form, None when blank."""
    kind = item["kind"]
    if value is None:
        return None
    if kind in NUMERIC_KINDS:
        low, high = RANGES[kind]
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not _is_int(value) or not low <= value <= high:
            raise _fail(field, f"must be a whole number from {low} to {high}.")
        return value
    if kind == "yes_no":
        if not isinstance(value, bool):
            raise _fail(field, "must be yes (true) or no (false).")
        return value
    if kind == "text":
        if not isinstance(value, str):
            raise _fail(field, "must be text.")
        return clean_text(value, field=field, max_length=MAX_TEXT_ANSWER) or None
    codes = [option["code"] for option in item["options"]]
    if kind == "choice":
        if not isinstance(value, str) or value not in codes:
            raise _fail(field, "must be one of the item's option codes.")
        return value
    if not isinstance(value, list) or not all(isinstance(code, str) and code in codes for code in value):
        raise _fail(field, "must list option codes of the item.")
    if len(set(value)) != len(value):
        raise _fail(field, "must not repeat an option.")
    return [code for code in codes if code in value] or None  # in the item's order


# --- scoring --------------------------------------------------------------------------------------------


def _scaled(kind: str, value: Any) -> float:
    if kind == "nps":
        return float(value) * 10
    if kind == "yes_no":
        return 100.0 if value else 0.0
    return (float(value) - 1) / 4 * 100


def _top_box(kind: str, value: Any) -> bool:
    if kind == "nps":
        return bool(value >= 9)
    if kind == "yes_no":
        return bool(value)
    return bool(value >= 4)


def score(items: Items, scoring: Mapping[str, Any], answers: Mapping[str, Any]) -> Score:
    """Score checked answers (``check_answers``) under a clean scoring (``clean_definition``)."""
    counted = [(item["kind"], answers[item["link_id"]]) for item in questions(items)
               if item.get("counts") and answers.get(item["link_id"]) is not None]
    value: float | None = None
    if counted and scoring["method"] == "mean":
        value = sum(_scaled(kind, v) for kind, v in counted) / len(counted)
    elif counted:
        value = sum(_top_box(kind, v) for kind, v in counted) / len(counted) * 100
    if value is not None:
        value = round(value, 6)  # 2/3*100 stored and compared alike everywhere
    nps = answers.get(scoring["nps_item"]) if scoring.get("nps_item") else None
    csat = answers.get(scoring["csat_item"]) if scoring.get("csat_item") else None
    return Score(score=value, satisfied=None if value is None else value >= scoring["satisfied_at"],
                 nps=nps, csat=csat, low=_is_low(items, scoring.get("low"), answers))


def _is_low(items: Items, low: Mapping[str, Any] | None, answers: Mapping[str, Any]) -> bool:
    """Any answered Likert or CSAT item (counted or not) at or under the bar, or any NPS answer at or under
    its bar."""
    if not low:
        return False
    for item in questions(items):
        answer = answers.get(item["link_id"])
        if answer is None:
            continue
        if item["kind"] in ANCHORED_KINDS and low.get("any_item_at_most") is not None \
                and answer <= low["any_item_at_most"]:
            return True
        if item["kind"] == "nps" and low.get("nps_at_most") is not None and answer <= low["nps_at_most"]:
            return True
    return False
