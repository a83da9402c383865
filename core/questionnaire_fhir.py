"""Questionnaires as FHIR R4 Questionnaire resources, both ways; pure.

Export: the primary language is zh-CN (``language``), English rides on the standard translation
extension (``_title``, ``_text``, ``_display``). Likert, CSAT and NPS items are ``integer`` items with the
standard minValue / maxValue extensions and our item-kind extension (Likert and CSAT share a range);
yes/no is ``boolean``; single and multiple choice are ``choice`` (``repeats`` for multiple) with coded
``answerOption``; free text is ``text``; a section is a ``group``. A condition is one ``enableWhen``, but ``!=``:
R4's holds when no answer equals the value, so an unanswered (or disabled) question shows the item, where ours hides
it; ours is exported as ``exists true`` and ``!=`` on the question with ``enableBehavior`` ``all``, the pair imported
back as ``!=``.
What FHIR has no element for travels in extensions under ``EXTENSION``: the scoring, the respondent,
the subject, anonymity, whether an item counts, and a scale's anchors.

Responses export as R4 QuestionnaireResponse resources (``response_to_fhir``): ``questionnaire`` is the
version's canonical ``<url>|<version>``, items nest as the questionnaire's sections do, ratings are
``valueInteger``, yes/no ``valueBoolean``, choices ``valueCoding`` (the option's code, system the
questionnaire's url), free text ``valueString``. The month it was given in rides on an extension; ``authored``
(an instant) and ``subject`` are given for identified responses only: an anonymous one holds nothing finer
than its month and no patient. Free text the caller may not read leaves its item without an answer, marked
by the withheld extension.

Import takes what we can represent and refuses the rest with BAD_USER_INPUT naming the place
(``json.item[2].type``): display, open-choice, date and other item types, value sets, several conditions
(but the pair above), the ``exists`` operator alone, a bare ``!=``, initial values, read-only items, modifier
extensions, a flag (``required``, ``repeats``, ``readOnly``) that is no boolean, a range or maxLength other than the
one the item's kind has, a group that is required or counts toward the score (it takes no answer here), a scale
point labelled twice, anchors on an item that is no Likert or CSAT scale.
Translations into languages other than zh-CN and en are left out; without our extensions a questionnaire gets the
default scoring (the mean, satisfied at 75) which the draft's author can change.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from core.errors import BadUserInput
from core.questionnaire import MAX_TEXT_ANSWER

EXTENSION = "https://careloop.dev/fhir/StructureDefinition/"  # a name for our extensions, not a location
TRANSLATION = "http://hl7.org/fhir/StructureDefinition/translation"
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
KIND = EXTENSION + "questionnaire-item-kind"
COUNTS = EXTENSION + "questionnaire-item-counts"
ANCHOR = EXTENSION + "questionnaire-item-anchor"
SCORING = EXTENSION + "questionnaire-scoring"
RESPONDENT = EXTENSION + "questionnaire-respondent"
SUBJECT = EXTENSION + "questionnaire-subject"
ANONYMOUS = EXTENSION + "questionnaire-anonymous"
RESPONSE_MONTH = EXTENSION + "questionnaire-response-month"
RESPONSE_SOURCE = EXTENSION + "questionnaire-response-source"
WITHHELD = EXTENSION + "questionnaire-response-answer-withheld"

PRIMARY = "zh-CN"
_LANGUAGE_TAGS = {"zh-CN": "zh-CN", "zh": "zh-CN", "zh-Hans": "zh-CN", "zh-Hans-CN": "zh-CN",
                  "en": "en", "en-US": "en", "en-GB": "en"}
_TYPES = {"likert": "integer", "csat": "integer", "nps": "integer", "yes_no": "boolean", "choice": "choice",
          "multi_choice": "choice", "text": "text", "section": "group"}
_RANGES = {"likert": (1, 5), "csat": (1, 5), "nps": (0, 10)}
_REFUSED_TYPES = {
    "display": "display items (instructions) are not supported.",
    "open-choice": "a choice with free text is not supported: use a choice item and a text item.",
}
MAX_JSON = 200_000  # characters
DEFAULT_SCORING = {"method": "mean", "satisfied_at": 75}


# --- export ---------------------------------------------------------------------------------------------


def _translations(texts: Mapping[str, str]) -> dict[str, Any] | None:
    others = [(lang, text) for lang, text in texts.items() if lang != PRIMARY]
    if not others:
        return None
    return {"extension": [{"url": TRANSLATION, "extension": [{"url": "lang", "valueCode": lang},
                                                             {"url": "content", "valueString": text}]}
                          for lang, text in others]}


def _put_text(node: dict[str, Any], key: str, texts: Mapping[str, str]) -> None:
    node[key] = texts[PRIMARY]
    translated = _translations(texts)
    if translated:
        node[f"_{key}"] = translated


def _item_to_fhir(item: Mapping[str, Any]) -> dict[str, Any]:
    kind = item["kind"]
    node: dict[str, Any] = {"linkId": item["link_id"]}
    extensions: list[dict[str, Any]] = [{"url": KIND, "valueCode": kind}]
    if kind != "section":
        extensions.append({"url": COUNTS, "valueBoolean": bool(item.get("counts"))})
    if kind in _RANGES:
        low, high = _RANGES[kind]
        extensions += [{"url": MIN_VALUE, "valueInteger": low}, {"url": MAX_VALUE, "valueInteger": high}]
    for point, texts in (item.get("anchors") or {}).items():
        extensions.append({"url": ANCHOR, "extension": [
            {"url": "value", "valueInteger": int(point)},
            *({"url": lang, "valueString": text} for lang, text in texts.items())]})
    node["extension"] = extensions
    _put_text(node, "text", item["text"])
    node["type"] = _TYPES[kind]
    condition = item.get("enable_when")
    if condition is not None:
        node["enableWhen"] = _condition_to_fhir(condition)
        if len(node["enableWhen"]) > 1:
            node["enableBehavior"] = "all"
    if kind != "section":
        node["required"] = bool(item.get("required"))
    if kind == "multi_choice":
        node["repeats"] = True
    if kind == "text":
        node["maxLength"] = MAX_TEXT_ANSWER
    if kind in ("choice", "multi_choice"):
        options = []
        for option in item["options"]:
            coding: dict[str, Any] = {"code": option["code"]}
            _put_text(coding, "display", option["text"])
            options.append({"valueCoding": coding})
        node["answerOption"] = options
    if kind == "section":
        node["item"] = [_item_to_fhir(child) for child in item["items"]]
    return node


def _condition_to_fhir(condition: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Our condition as R4 enableWhen. ``!=`` is two: in R4 a bare ``!=`` holds when no answer equals the value, so
    an unanswered (or disabled) source shows the item; ours hides it, which is ``exists true`` and ``!=``, both."""
    compared = {"question": condition["link_id"], "operator": condition["operator"],
                **_answer_to_fhir(condition["answer"])}
    if condition["operator"] == "!=":
        return [{"question": condition["link_id"], "operator": "exists", "answerBoolean": True}, compared]
    return [compared]


def _answer_to_fhir(answer: Any) -> dict[str, Any]:
    if isinstance(answer, bool):
        return {"answerBoolean": answer}
    if isinstance(answer, int):
        return {"answerInteger": answer}
    return {"answerCoding": {"code": answer}}


def _scoring_to_fhir(scoring: Mapping[str, Any]) -> dict[str, Any]:
    parts: list[dict[str, Any]] = [{"url": "method", "valueCode": scoring["method"]},
                                   {"url": "satisfiedAt", "valueDecimal": scoring["satisfied_at"]}]
    for key, url in (("nps_item", "npsItem"), ("csat_item", "csatItem")):
        if scoring.get(key):
            parts.append({"url": url, "valueString": scoring[key]})
    low = scoring.get("low") or {}
    for key, url in (("any_item_at_most", "lowAnyItemAtMost"), ("nps_at_most", "lowNpsAtMost")):
        if low.get(key) is not None:
            parts.append({"url": url, "valueInteger": low[key]})
    return {"url": SCORING, "extension": parts}


def to_fhir(questionnaire: Mapping[str, Any]) -> dict[str, Any]:
    """A stored questionnaire (its columns as a mapping: id, key, version, status, title, purpose,
    respondent, subject, anonymous, items, scoring) as an R4 Questionnaire resource."""
    resource: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": str(questionnaire["id"]),
        "language": PRIMARY,
        "extension": [{"url": RESPONDENT, "valueCode": questionnaire["respondent"]},
                      {"url": SUBJECT, "valueCode": questionnaire["subject"]},
                      {"url": ANONYMOUS, "valueBoolean": bool(questionnaire["anonymous"])},
                      _scoring_to_fhir(questionnaire["scoring"])],
        "url": f"urn:uuid:{questionnaire['key']}",  # one canonical URL for every version
        "version": str(questionnaire["version"]),
    }
    _put_text(resource, "title", questionnaire["title"])
    resource["status"] = questionnaire["status"]
    if questionnaire.get("purpose"):
        _put_text(resource, "purpose", questionnaire["purpose"])
    resource["item"] = [_item_to_fhir(item) for item in questionnaire["items"]]
    return resource


def _answers_to_fhir(item: Mapping[str, Any], answer: Mapping[str, Any], system: str) -> list[dict[str, Any]]:
    kind = item["kind"]
    if kind == "yes_no":
        return [{"valueBoolean": answer["number"] == 1}]
    if kind in _RANGES:
        return [{"valueInteger": int(answer["number"])}]
    if kind == "text":
        return [{"valueString": answer["text"]}]
    displays = {option["code"]: option["text"].get(PRIMARY) for option in item.get("options") or []}
    return [{"valueCoding": {"system": system, "code": code,
                             **({"display": displays[code]} if displays.get(code) else {})}}
            for code in answer["codes"]]


def _response_items(items: list[Mapping[str, Any]], answers: Mapping[str, Mapping[str, Any]],
                    system: str) -> list[dict[str, Any]]:
    """The answered items in the questionnaire's order, a section holding its answered items (left out when
    it holds none)."""
    out: list[dict[str, Any]] = []
    for item in items:
        node: dict[str, Any] = {"linkId": item["link_id"], "text": item["text"][PRIMARY]}
        if item["kind"] == "section":
            children = _response_items(item["items"], answers, system)
            if children:
                out.append(node | {"item": children})
            continue
        answer = answers.get(item["link_id"])
        if answer is None:
            continue
        if answer.get("withheld"):
            node["extension"] = [{"url": WITHHELD, "valueBoolean": True}]
        else:
            node["answer"] = _answers_to_fhir(item, answer, system)
        out.append(node)
    return out


def response_to_fhir(response: Mapping[str, Any], questionnaire: Mapping[str, Any],
                     answers: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """A stored response as an R4 QuestionnaireResponse resource.

    ``response``: id, month, source, and for an identified response patient_id and authored (an aware
    datetime); both None for an anonymous one. ``questionnaire``: key, version, items. ``answers`` by
    linkId: number, codes, text, or withheld (free text the caller may not read)."""
    url = f"urn:uuid:{questionnaire['key']}"
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": str(response["id"]),
        "extension": [{"url": RESPONSE_MONTH, "valueString": response["month"]},
                      {"url": RESPONSE_SOURCE, "valueCode": response["source"]}],
        "questionnaire": f"{url}|{questionnaire['version']}",
        "status": "completed",
    }
    if response.get("patient_id") is not None:
        resource["subject"] = {"reference": f"Patient/{response['patient_id']}"}
    if response.get("authored") is not None:
        resource["authored"] = response["authored"].isoformat()
    resource["item"] = _response_items(questionnaire["items"], answers, url)
    return resource


# --- import ---------------------------------------------------------------------------------------------


def _fail(path: str, problem: str) -> BadUserInput:
    field = f"json.{path}" if path else "json"
    return BadUserInput(f"{field}: {problem}", field=field)


def parse(text: str) -> dict[str, Any]:
    """A Questionnaire resource from JSON text, or BAD_USER_INPUT on ``json``."""
    if len(text) > MAX_JSON:
        raise _fail("", f"at most {MAX_JSON} characters.")
    try:
        resource = json.loads(text)
    except (ValueError, RecursionError):
        raise _fail("", "is not valid JSON.") from None
    if not isinstance(resource, dict) or resource.get("resourceType") != "Questionnaire":
        raise _fail("resourceType", "must be a FHIR Questionnaire.")
    return resource


def _refuse_modifiers(node: Mapping[str, Any], path: str) -> None:
    if node.get("modifierExtension"):
        raise _fail(f"{path}.modifierExtension" if path else "modifierExtension",
                    "modifier extensions cannot be represented.")


def _dicts(value: Any) -> list[dict[str, Any]]:
    """The objects of a JSON list (anything else in it, or a value that is no list, left out)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _extensions(node: Mapping[str, Any], url: str) -> list[dict[str, Any]]:
    return [e for e in _dicts(node.get("extension")) if e.get("url") == url]


def _extension_value(node: Mapping[str, Any], url: str, value_key: str) -> Any:
    found = _extensions(node, url)
    return found[0].get(value_key) if found else None


def _texts(node: Mapping[str, Any], key: str, base: str) -> dict[str, str]:
    """The text of ``key`` in its language and its translations into zh-CN and en (others left out)."""
    texts: dict[str, str] = {}
    value = node.get(key)
    if isinstance(value, str):
        texts[base] = value
    element = node.get(f"_{key}")
    for translation in _extensions(element, TRANSLATION) if isinstance(element, dict) else []:
        parts = {str(p.get("url")): p for p in _dicts(translation.get("extension"))}
        lang = _LANGUAGE_TAGS.get(str((parts.get("lang") or {}).get("valueCode")))
        content = (parts.get("content") or {}).get("valueString")
        if lang and isinstance(content, str) and lang not in texts:
            texts[lang] = content
    return texts


def from_fhir(resource: Mapping[str, Any]) -> dict[str, Any]:
    """A questionnaire's fields (title, purpose, respondent, subject, anonymous, items, scoring) from an R4
    Questionnaire, for ``core.questionnaire.clean_definition`` to check; what we cannot represent refused."""
    _refuse_modifiers(resource, "")
    language = resource.get("language") or PRIMARY
    base = _LANGUAGE_TAGS.get(str(language))
    if base is None:
        raise _fail("language", "only zh-CN and en questionnaires are supported.")
    items = resource.get("item")
    if not isinstance(items, list) or not items:
        raise _fail("item", "must list at least one item.")
    out: dict[str, Any] = {
        "title": _texts(resource, "title", base),
        "purpose": _texts(resource, "purpose", base),
        "items": [_item_from_fhir(item, f"item[{i}]", base) for i, item in enumerate(items)],
    }
    for key, url, value_key in (("respondent", RESPONDENT, "valueCode"), ("subject", SUBJECT, "valueCode"),
                                ("anonymous", ANONYMOUS, "valueBoolean")):
        value = _extension_value(resource, url, value_key)
        if value is not None:
            out[key] = value
    out["scoring"] = _scoring_from_fhir(resource)
    return out


def _item_from_fhir(node: Any, path: str, base: str, *, nested: bool = False) -> dict[str, Any]:
    if not isinstance(node, dict):
        raise _fail(path, "must be an item.")
    _refuse_modifiers(node, path)
    for key, problem in (("initial", "initial values cannot be represented."),
                         ("answerValueSet", "answers from a value set cannot be represented: list answerOption.")):
        if node.get(key):
            raise _fail(f"{path}.{key}", problem)
    if _flag(node, "readOnly", path):
        raise _fail(f"{path}.readOnly", "read-only items cannot be represented.")
    kind = _kind_of(node, path)
    if kind == "section" and nested:
        raise _fail(f"{path}.type", "groups nest one level only.")
    item: dict[str, Any] = {"link_id": node.get("linkId"), "kind": kind, "text": _texts(node, "text", base)}
    if kind == "section":
        _refuse_group_answer(node, path)
    else:
        item["required"] = _flag(node, "required", path)
        counts = _extension_value(node, COUNTS, "valueBoolean")
        if counts is not None:
            item["counts"] = counts
    if node.get("enableWhen"):
        item["enable_when"] = _condition_from_fhir(node, path)
    max_length = node.get("maxLength")
    if max_length is not None and (kind != "text" or isinstance(max_length, bool) or max_length != MAX_TEXT_ANSWER):
        raise _fail(f"{path}.maxLength", f"free text is at most {MAX_TEXT_ANSWER} characters: maxLength can only be "
                                         f"{MAX_TEXT_ANSWER}, on a text item.")
    anchors = _anchors_from_fhir(node, path)  # on any kind: where there is no scale to label, refused with the others
    if anchors:
        item["anchors"] = anchors
    if kind in ("choice", "multi_choice"):
        item["options"] = _options_from_fhir(node, path, base)
    elif node.get("answerOption"):
        raise _fail(f"{path}.answerOption", "only choice items have answer options.")
    if kind == "section":
        children = node.get("item")
        if not isinstance(children, list) or not children:
            raise _fail(f"{path}.item", "a group must hold at least one item.")
        item["items"] = [_item_from_fhir(child, f"{path}.item[{i}]", base, nested=True)
                         for i, child in enumerate(children)]
    elif node.get("item"):
        raise _fail(f"{path}.item", "only groups hold items.")
    return item


def _refuse_group_answer(node: Mapping[str, Any], path: str) -> None:
    """A group takes no answer here: one required (in R4, one of its items must be answered) or counted toward the
    score is refused, as a section typed in is, rather than imported without it (found in review)."""
    if _flag(node, "required", path):
        raise _fail(f"{path}.required", "a required group cannot be represented: mark its items required instead.")
    if _extension_value(node, COUNTS, "valueBoolean"):
        raise _fail(f"{path}.extension", "a group does not count toward the score: mark its items instead.")


def _flag(node: Mapping[str, Any], key: str, path: str) -> bool:
    """A boolean element (false when absent); anything else is refused, not read by its truthiness (found in
    review: "false" made an item required, a multiple choice)."""
    value = node.get(key)
    if value is not None and not isinstance(value, bool):
        raise _fail(f"{path}.{key}", "must be true or false.")
    return bool(value)


def _kind_of(node: Mapping[str, Any], path: str) -> str:
    fhir_type = node.get("type")
    if not isinstance(fhir_type, str):
        raise _fail(f"{path}.type", "is required.")
    if fhir_type in _REFUSED_TYPES:
        raise _fail(f"{path}.type", _REFUSED_TYPES[fhir_type])
    repeats = _flag(node, "repeats", path)
    declared = _extension_value(node, KIND, "valueCode")
    if declared is not None:
        if not isinstance(declared, str):
            raise _fail(f"{path}.extension", "the item kind extension names a kind.")
        if _TYPES.get(declared) != fhir_type and not (declared == "text" and fhir_type == "string"):
            raise _fail(f"{path}.type", "does not match the item kind extension.")
        if (declared == "multi_choice") != repeats:
            raise _fail(f"{path}.repeats", "only multiple choice items repeat.")
        for url, bound in zip((MIN_VALUE, MAX_VALUE), _RANGES.get(declared, ()), strict=False):
            given = _extension_value(node, url, "valueInteger")
            if given is not None and (isinstance(given, bool) or given != bound):
                raise _fail(f"{path}.extension", "minValue and maxValue must be the range of the item kind "
                                                 "extension's scale (1 to 5, or 0 to 10).")
        return str(declared)
    if repeats and fhir_type != "choice":
        raise _fail(f"{path}.repeats", "only choice items may repeat.")
    if fhir_type == "integer":
        bounds = (_extension_value(node, MIN_VALUE, "valueInteger"), _extension_value(node, MAX_VALUE, "valueInteger"))
        if bounds == (0, 10):
            return "nps"
        if bounds == (1, 5):
            return "likert"
        raise _fail(f"{path}.type", "integer items need the range 1 to 5 (minValue, maxValue) or 0 to 10.")
    simple = {"boolean": "yes_no", "text": "text", "string": "text", "group": "section"}
    if fhir_type in simple:
        return simple[fhir_type]
    if fhir_type == "choice":
        return "multi_choice" if repeats else "choice"
    raise _fail(f"{path}.type", "this item type cannot be represented (integer, boolean, choice, text, string and "
                                "group can).")


def _condition_from_fhir(node: Mapping[str, Any], path: str) -> dict[str, Any]:
    """One enableWhen, or the pair our ``!=`` exports as (``exists true`` and ``!=`` on one question, enableBehavior
    ``all``). A bare ``!=`` is refused: R4 shows its item while the question is unanswered, we hide it."""
    conditions = node["enableWhen"]
    where = f"{path}.enableWhen"
    if not isinstance(conditions, list) or not all(isinstance(c, dict) for c in conditions):
        raise _fail(where, "one condition per item can be represented.")
    if len(conditions) == 2 and _is_answered_check(conditions[0]) and conditions[1].get("operator") == "!=":
        if node.get("enableBehavior") != "all":
            raise _fail(f"{path}.enableBehavior", "must be all: exists and != on one question are both required.")
        if conditions[1].get("question") != conditions[0].get("question"):
            raise _fail(f"{where}[1].question", "exists and != must name the same question.")
        return _compared_from_fhir(conditions[1], f"{where}[1]")
    if len(conditions) != 1:
        raise _fail(where, "one condition per item can be represented (or exists true then != on one question).")
    condition = conditions[0]
    if condition.get("operator") == "exists":
        raise _fail(f"{where}[0].operator", "the exists operator cannot be represented.")
    if condition.get("operator") == "!=":
        raise _fail(f"{where}[0].operator", "a bare != shows the item while the question is unanswered, which "
                                            "cannot be represented: give exists true then != on the question, "
                                            "enableBehavior all.")
    return _compared_from_fhir(condition, f"{where}[0]")


def _is_answered_check(condition: Mapping[str, Any]) -> bool:
    return condition.get("operator") == "exists" and condition.get("answerBoolean") is True and \
        [key for key in condition if key.startswith("answer")] == ["answerBoolean"]


def _compared_from_fhir(condition: Mapping[str, Any], where: str) -> dict[str, Any]:
    answers = [key for key in condition if key.startswith("answer")]
    if answers == ["answerInteger"] or answers == ["answerBoolean"]:
        answer = condition[answers[0]]
    elif answers == ["answerCoding"] and isinstance(condition["answerCoding"], dict):
        answer = condition["answerCoding"].get("code")
    else:
        raise _fail(where, "the answer must be an integer, a boolean or a coding.")
    return {"link_id": condition.get("question"), "operator": condition.get("operator"), "answer": answer}


def _anchors_from_fhir(node: Mapping[str, Any], path: str) -> dict[str, dict[str, str]]:
    anchors: dict[str, dict[str, str]] = {}
    for anchor in _extensions(node, ANCHOR):
        parts = _dicts(anchor.get("extension"))
        values = [p.get("valueInteger") for p in parts if p.get("url") == "value"]
        if len(values) != 1 or not isinstance(values[0], int):
            raise _fail(f"{path}.extension", "an anchor names one scale point.")
        if str(values[0]) in anchors:  # as questionnaireCreate refuses it, rather than keep one of the labels
            raise _fail(f"{path}.extension", "label each scale point once.")
        anchors[str(values[0])] = {lang: p["valueString"] for p in parts
                                   if (lang := p.get("url")) in ("zh-CN", "en") and isinstance(p.get("valueString"),
                                                                                              str)}
    return anchors


def _options_from_fhir(node: Mapping[str, Any], path: str, base: str) -> list[dict[str, Any]]:
    options = node.get("answerOption")
    if not isinstance(options, list):
        raise _fail(f"{path}.answerOption", "a choice item lists its answer options.")
    out = []
    for i, option in enumerate(options):
        coding = option.get("valueCoding") if isinstance(option, dict) else None
        if not isinstance(coding, dict) or set(option) - {"valueCoding", "extension"}:
            raise _fail(f"{path}.answerOption[{i}]", "only coded answer options (valueCoding) can be represented.")
        out.append({"code": coding.get("code"), "text": _texts(coding, "display", base)})
    return out


def _scoring_from_fhir(resource: Mapping[str, Any]) -> dict[str, Any]:
    found = _extensions(resource, SCORING)
    if not found:
        return dict(DEFAULT_SCORING)
    parts = {str(p.get("url")): p for p in _dicts(found[0].get("extension"))}

    def value(url: str, key: str) -> Any:
        return (parts.get(url) or {}).get(key)

    low = {"any_item_at_most": value("lowAnyItemAtMost", "valueInteger"),
           "nps_at_most": value("lowNpsAtMost", "valueInteger")}
    return {"method": value("method", "valueCode"), "satisfied_at": value("satisfiedAt", "valueDecimal"),
            "nps_item": value("npsItem", "valueString"), "csat_item": value("csatItem", "valueString"),
            "low": low if any(v is not None for v in low.values()) else None}
