from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import BadUserInput
from core.validation import (
    NATIONAL_ID_TYPES,
    birth_date_from_resident_id,
    clean_text,
    normalize_email,
    normalize_national_id,
    normalize_phone,
    normalize_tag,
    resident_id_check_digit,
    validate_birth_date,
)

TODAY = date(2024, 6, 15)


def resident_id(first17: str) -> str:
    return first17 + resident_id_check_digit(first17)


def rid(value: str, field: str = "nationalId") -> str:
    return normalize_national_id("resident_id", value, today=TODAY, field=field)


def error_of(call: Callable[[], object]) -> BadUserInput:
    with pytest.raises(BadUserInput) as info:
        call()
    return info.value


# --- resident ID ------------------------------------------------------------------------


def test_check_digit_of_gb11643_example() -> None:
    assert resident_id_check_digit("11010519491231002") == "X"
    assert resident_id_check_digit("44052419800101001") == "3"


def test_national_id_types() -> None:
    assert NATIONAL_ID_TYPES == (
        "resident_id",
        "passport",
        "hk_macao_permit",
        "taiwan_permit",
        "foreign_permanent_resident",
    )


def test_resident_id_valid() -> None:
    assert rid("11010519491231002X") == "11010519491231002X"
    assert rid("440524198001010013") == "440524198001010013"
    value = resident_id("32010220000229123")  # leap day
    assert rid(value) == value


def test_resident_id_lowercase_x_and_spaces() -> None:
    assert rid("11010519491231002x") == "11010519491231002X"
    assert rid(" 110105 19491231 002x ") == "11010519491231002X"


def test_resident_id_wrong_check_digit() -> None:
    err = error_of(lambda: rid("110105194912310021"))
    assert err.message == "nationalId: check digit does not match."
    assert err.extensions == {"code": "BAD_USER_INPUT", "field": "nationalId", "reason": "invalid"}


def test_resident_id_invalid_date() -> None:
    err = error_of(lambda: rid(resident_id("11010520230230001")))
    assert err.message == "nationalId: birth date is not a real date."
    err = error_of(lambda: rid(resident_id("11010520230229001")))  # 2023 is not a leap year
    assert err.message == "nationalId: birth date is not a real date."


def test_resident_id_future_birth_date() -> None:
    err = error_of(lambda: rid(resident_id("11010520240616001")))
    assert err.message == "nationalId: birth date must not be in the future."
    assert rid(resident_id("11010520240615001")) == resident_id("11010520240615001")


def test_resident_id_before_1900() -> None:
    err = error_of(lambda: rid(resident_id("11010518991231001")))
    assert err.message == "nationalId: birth date must not be before 1900-01-01."


def test_resident_id_old_15_digit_form() -> None:
    err = error_of(lambda: rid("110105491231002"))
    assert err.message == (
        "nationalId: the old 15-digit form is not accepted; enter the 18-character ID."
    )


@pytest.mark.parametrize(
    "value",
    ["", "   ", "11010519491231002", "1101051949123100211", "11010519491231002Y", "X1010519491231002X",
     "１１０１０５１９４９１２３１００２X"],
)
def test_resident_id_bad_format(value: str) -> None:
    err = error_of(lambda: rid(value))
    assert err.field == "nationalId"


@pytest.mark.parametrize("first_digit", ["0", "9"])
def test_resident_id_bad_area_code(first_digit: str) -> None:
    err = error_of(lambda: rid(resident_id(first_digit + "1010519491231002")))
    assert err.message == "nationalId: area code is not valid."


def test_resident_id_custom_field() -> None:
    err = error_of(lambda: rid("110105194912310021", field="guardianNationalId"))
    assert err.message == "guardianNationalId: check digit does not match."
    assert err.field == "guardianNationalId"


def test_birth_date_from_resident_id() -> None:
    assert birth_date_from_resident_id("11010519491231002X") == date(1949, 12, 31)


# --- other documents ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("id_type", "value", "expected"),
    [
        ("passport", "E12345678", "E12345678"),
        ("passport", " e1234 5678 ", "E12345678"),
        ("passport", "ab123", "AB123"),
        ("passport", "A" * 20, "A" * 20),
        ("hk_macao_permit", "h12345678", "H12345678"),
        ("hk_macao_permit", "M 1234 5678 90", "M1234567890"),
        ("taiwan_permit", "12345678", "12345678"),
        ("taiwan_permit", "1234567890", "1234567890"),
        ("foreign_permanent_resident", "usa123456789012", "USA123456789012"),
        ("foreign_permanent_resident", resident_id("93401119800101001"),
         resident_id("93401119800101001")),
    ],
)
def test_document_valid(id_type: str, value: str, expected: str) -> None:
    assert normalize_national_id(id_type, value) == expected


@pytest.mark.parametrize(
    ("id_type", "value"),
    [
        ("passport", "AB12"),
        ("passport", "A" * 21),
        ("passport", "E1234-5678"),
        ("passport", "É12345678"),
        ("passport", "E１２３４５６７８"),
        ("hk_macao_permit", "H1234567"),
        ("hk_macao_permit", "H123456789"),
        ("hk_macao_permit", "X12345678"),
        ("hk_macao_permit", "12345678"),
        ("taiwan_permit", "1234567"),
        ("taiwan_permit", "123456789"),
        ("taiwan_permit", "T1234567"),
        ("foreign_permanent_resident", "US123456789012"),
        ("foreign_permanent_resident", "934011198001010010"),  # wrong check digit
        ("foreign_permanent_resident", resident_id("11010519491231002")),
    ],
)
def test_document_invalid(id_type: str, value: str) -> None:
    err = error_of(lambda: normalize_national_id(id_type, value))
    assert err.field == "nationalId"


def test_unknown_id_type() -> None:
    err = error_of(lambda: normalize_national_id("driving_licence", "E12345678"))
    assert err.field == "nationalIdType"
    assert err.message == (
        "nationalIdType: must be one of resident_id, passport, hk_macao_permit, "
        "taiwan_permit, foreign_permanent_resident."
    )


# --- phone -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("13800138000", "+8613800138000"),
        ("138 0013 8000", "+8613800138000"),
        ("138-0013-8000", "+8613800138000"),
        ("(138) 0013-8000", "+8613800138000"),
        ("19912345678", "+8619912345678"),
        ("+8613800138000", "+8613800138000"),
        ("+86 138 0013 8000", "+8613800138000"),
        ("(+86) 138-0013-8000", "+8613800138000"),
        ("8613800138000", "+8613800138000"),
        ("86 138 0013 8000", "+8613800138000"),
        ("008613800138000", "+8613800138000"),
        ("0086 138 0013 8000", "+8613800138000"),
        ("+86 10 1234 5678", "+861012345678"),
        ("+86 (010) 1234-5678", "+861012345678"),
        ("+86 21 1234 567", "+86211234567"),
        ("+86 755 1234 5678", "+8675512345678"),
        ("+86 0755 1234 567", "+867551234567"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+1 (415) 555-0100", "+14155550100"),
        ("+85291234567", "+85291234567"),
        ("+12345678", "+12345678"),
        ("+123456789012345", "+123456789012345"),
    ],
)
def test_phone_valid(value: str, expected: str) -> None:
    assert normalize_phone(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "  ",
        "1380013800O",  # letter O
        "tel:13800138000",
        "138.0013.8000",
        "1380013800",  # 10 digits
        "138001380001",  # 12 digits
        "12800138000",  # 12x is not a mobile prefix
        "02012345678",  # domestic landline needs a country code
        "+86 10 123456",  # landline too short
        "+86 138 0013 800",  # mobile too short
        "+86 123 4567 8901",
        "+86 10 1234 56789",  # landline too long
        "+0123456789",
        "+1234567",  # 7 digits
        "+1234567890123456",  # 16 digits
        "+86+13800138000",
        "0044 20 7946 0958",
        "＋8613800138000",
    ],
)
def test_phone_invalid(value: str) -> None:
    err = error_of(lambda: normalize_phone(value))
    assert err.field == "phone"


def test_phone_custom_field() -> None:
    err = error_of(lambda: normalize_phone("+0123456789", field="emergencyPhone"))
    assert err.field == "emergencyPhone"
    assert err.message == "emergencyPhone: must be + followed by 8 to 15 digits, the first not 0."


# --- email -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (" Alice.Smith@Example.COM ", "Alice.Smith@example.com"),
        ("a+tag@sub.example.cn", "a+tag@sub.example.cn"),
        ("o'brien@xn--fiqs8s.cn", "o'brien@xn--fiqs8s.cn"),
        ("x@a-b.co", "x@a-b.co"),
        ("a" * 64 + "@example.com", "a" * 64 + "@example.com"),
    ],
)
def test_email_valid(value: str, expected: str) -> None:
    assert normalize_email(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "no-at.example.com",
        "a@@example.com",
        "a@b@example.com",
        "@example.com",
        "a@localhost",
        "a@-example.com",
        "a@example-.com",
        "a@exa_mple.com",
        "a@example..com",
        "a@example.com.",
        "a b@example.com",
        ".a@example.com",
        "a..b@example.com",
        "a" * 65 + "@example.com",
        "a@" + ("b" * 63 + ".") * 4 + "cn",  # over 254 characters
        "a@" + "b" * 64 + ".cn",  # label over 63 characters
    ],
)
def test_email_invalid(value: str) -> None:
    err = error_of(lambda: normalize_email(value))
    assert err.field == "email"


# --- birth date --------------------------------------------------------------------------


def test_birth_date_valid() -> None:
    assert validate_birth_date(date(1949, 12, 31), today=TODAY) == date(1949, 12, 31)
    assert validate_birth_date(date(1900, 1, 1), today=TODAY) == date(1900, 1, 1)
    assert validate_birth_date(TODAY, today=TODAY) == TODAY


def test_birth_date_future() -> None:
    err = error_of(lambda: validate_birth_date(date(2024, 6, 16), today=TODAY))
    assert err.message == "birthDate: must not be in the future."
    assert err.field == "birthDate"


def test_birth_date_before_1900() -> None:
    err = error_of(lambda: validate_birth_date(date(1899, 12, 31), field="guardianBirthDate"))
    assert err.message == "guardianBirthDate: must not be before 1900-01-01."


# --- free text ---------------------------------------------------------------------------


def test_clean_text_trims() -> None:
    assert clean_text("  hello world \n", field="note", max_length=100) == "hello world"
    assert clean_text("a\tb\nc", field="note", max_length=100) == "a\tb\nc"
    assert clean_text("line1\r\nline2", field="note", max_length=100) == "line1\nline2"
    assert clean_text("   ", field="note", max_length=100) == ""


@pytest.mark.parametrize("value", ["a\x00b", "a\x1bb", "a\x7fb", "a\rb", "a\x85b", "a\ud800b"])
def test_clean_text_rejects_control_characters(value: str) -> None:
    err = error_of(lambda: clean_text(value, field="note", max_length=100))
    assert err.message == "note: must not contain control characters."


def test_clean_text_length() -> None:
    assert clean_text("护理记录", field="note", max_length=4) == "护理记录"
    err = error_of(lambda: clean_text("abcdef", field="note", max_length=5))
    assert err.message == "note: must be at most 5 characters."
    err = error_of(lambda: clean_text("  ", field="name", max_length=5, min_length=1))
    assert err.message == "name: must be at least 1 characters."


# Bidirectional controls (issue 11): embeddings, overrides, isolates, and the LRM, RLM and ALM marks.
BIDI_CONTROLS = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
                 "\u200e", "\u200f", "\u061c"]
# Other characters that draw nothing: zero-width space, word joiner, byte-order mark, soft hyphen, Mongolian
# vowel separator, a tag character, Hangul fillers.
OTHER_INVISIBLE = ["\u200b", "\u2060", "\ufeff", "\u00ad", "\u180e", "\U000e0041", "\u3164", "\u115f", "\uffa0"]
INVISIBLE_MESSAGE = "name: must not contain invisible formatting characters (such as text-direction controls)."


@pytest.mark.parametrize("char", BIDI_CONTROLS + OTHER_INVISIBLE,
                         ids=[f"U+{ord(c):04X}" for c in BIDI_CONTROLS + OTHER_INVISIBLE])
@pytest.mark.parametrize("place", ["start", "middle", "end"])
def test_clean_text_refuses_bidi_controls_and_invisible_characters(char: str, place: str) -> None:
    value = {"start": f"{char}Gao Yan", "middle": f"Gao{char}Yan", "end": f"Gao Yan{char}"}[place]

    err = error_of(lambda: clean_text(value, field="name", max_length=100))

    assert (err.message, err.field, err.extensions) == (INVISIBLE_MESSAGE, "name",
                                                        {"code": "BAD_USER_INPUT", "field": "name",
                                                         "reason": "invalid"})


@pytest.mark.parametrize("char", ["\u2028", "\u2029"], ids=["line-separator", "paragraph-separator"])
def test_clean_text_refuses_other_line_breaks_inside(char: str) -> None:
    """Trimmed at either end like other white space; inside, a break a portal may draw differently."""
    assert clean_text(f"{char}Gao Yan{char}", field="name", max_length=100) == "Gao Yan"
    err = error_of(lambda: clean_text(f"Gao{char}Yan", field="name", max_length=100))
    assert err.message == INVISIBLE_MESSAGE


@pytest.mark.parametrize("value", [
    "ad\u200dmin", "ad\u200cmin", "\u200d\u0645\u06cc", "\u0645\u06cc\u200c", "\u0645\u200c\u200c\u06cc",
    "\u0645\u200c \u06cc",
], ids=["zwj-latin", "zwnj-latin", "leading", "trailing", "doubled", "before-space"])
def test_joiners_are_refused_where_they_only_hide_something(value: str) -> None:
    err = error_of(lambda: clean_text(value, field="name", max_length=100))
    assert err.message == INVISIBLE_MESSAGE


@pytest.mark.parametrize(("kept", "refused"), [
    ("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", "mi\u200ckhaham"),  # Persian: the non-joiner spells
    ("\u0915\u094d\u200d\u0937", "k\u200dsh"),  # Devanagari: the joiner picks a half form
    ("\U0001f468\u200d\U0001f469\u200d\U0001f467", "\U0001f468\u200d\u200d\U0001f469"),  # an emoji family
    ("\U0001f3f3\ufe0f\u200d\U0001f308", "\u200d\U0001f308"),  # a flag with its variation selector
    ("张伟", "张\u202e伟"),
    ("Zoë Ångström", "Zoë\u2066 Ångström"),
    ("O'Brien-Smith", "O'Brien\u200b-Smith"),
    ("a\tb\nc", "a\tb\u2028c"),
], ids=["persian", "devanagari", "emoji-family", "emoji-flag", "chinese", "accents", "punctuation", "line-breaks"])
def test_clean_text_keeps_what_spells_and_refuses_what_hides(kept: str, refused: str) -> None:
    assert clean_text(kept, field="name", max_length=100) == kept
    err = error_of(lambda: clean_text(refused, field="name", max_length=100))
    assert err.message == INVISIBLE_MESSAGE


@pytest.mark.parametrize("char", ["\u202e", "\u2067", "\u200f", "\u3164", "\u200b"],
                         ids=["RLO", "RLI", "RLM", "hangul-filler", "zwsp"])
def test_tags_refuse_invisible_characters(char: str) -> None:
    err = error_of(lambda: normalize_tag(f"vip{char}", field="filter.tag"))
    assert err.message == "filter.tag: must not contain invisible formatting characters (such as text-direction " \
                          "controls)."
    assert err.field == "filter.tag"


def test_a_tag_of_a_hangul_filler_alone_is_refused() -> None:
    """A letter that draws nothing passes str.isalnum(): a blank-looking tag."""
    err = error_of(lambda: normalize_tag("\u3164"))
    assert err.field == "tags"


# --- tags --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (" VIP ", "vip"),
        ("Diabetes  Type 2", "diabetes-type-2"),
        ("高血压", "高血压"),
        ("糖尿病 二型", "糖尿病-二型"),
        ("follow-up", "follow-up"),
        ("a" * 32, "a" * 32),
    ],
)
def test_tag_valid(value: str, expected: str) -> None:
    assert normalize_tag(value) == expected


@pytest.mark.parametrize(
    "value", ["", "   ", "50%", "a_b", "a.b", "a'b", "a\\b", "--", "a" * 33, "a\x00b"]
)
def test_tag_invalid(value: str) -> None:
    err = error_of(lambda: normalize_tag(value))
    assert err.field == "tags"


# --- no personal data in errors ----------------------------------------------------------

BAD_INPUTS: list[tuple[Callable[[str], object], str]] = [
    (rid, "110105194912310021"),
    (rid, "110105202302300011"),
    (rid, "110105491231002"),
    (lambda v: normalize_national_id("passport", v), "E1234-5678!"),
    (lambda v: normalize_national_id("hk_macao_permit", v), "H123456789"),
    (lambda v: normalize_national_id("taiwan_permit", v), "T1234567"),
    (lambda v: normalize_national_id("foreign_permanent_resident", v), "934011198001010010"),
    (lambda v: normalize_national_id("no_such_type", "E12345678"), "no_such_type"),
    (normalize_phone, "138 0013 800"),
    (normalize_phone, "+86 10 123456"),
    (normalize_phone, "13800138000x"),
    (normalize_email, "alice@@example.com"),
    (normalize_email, "alice@example"),
    (lambda v: clean_text(v, field="note", max_length=100), "secret\x00text"),
    (lambda v: clean_text(v, field="note", max_length=5), "secret text"),
    (lambda v: clean_text(v, field="note", max_length=100), "secret\u202etext"),
    (normalize_tag, "tag%wild"),
]


@pytest.mark.parametrize(("call", "value"), BAD_INPUTS)
def test_errors_never_contain_the_value(call: Callable[[str], object], value: str) -> None:
    err = error_of(lambda: call(value))
    for form in (value, "".join(value.split()), value.upper()):
        assert form not in str(err)
        assert form not in repr(err)


# --- properties --------------------------------------------------------------------------


@st.composite
def resident_id_bodies(draw: st.DrawFn) -> str:
    area = draw(st.sampled_from("12345678")) + draw(st.from_regex(r"[0-9]{5}", fullmatch=True))
    birth = draw(st.dates(min_value=date(1900, 1, 1), max_value=TODAY))
    sequence = draw(st.from_regex(r"[0-9]{3}", fullmatch=True))
    return f"{area}{birth:%Y%m%d}{sequence}"


@given(resident_id_bodies())
def test_resident_id_accepts_only_the_right_check_char(body: str) -> None:
    check = resident_id_check_digit(body)
    assert rid(body + check) == body + check
    for wrong in "0123456789X".replace(check, ""):
        with pytest.raises(BadUserInput, match=r"^nationalId: check digit does not match\.$"):
            rid(body + wrong)


@st.composite
def mainland_mobiles(draw: st.DrawFn) -> tuple[str, str]:
    digits = draw(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
    prefix = draw(st.sampled_from(["", "86", "0086", "+86", "+86 ", "(+86) "]))
    sep = draw(st.sampled_from(["", " ", "-"]))
    return prefix + sep.join([digits[:3], digits[3:7], digits[7:]]), "+86" + digits


@given(mainland_mobiles())
def test_mainland_mobile_forms(case: tuple[str, str]) -> None:
    value, expected = case
    assert normalize_phone(value) == expected


@given(
    st.one_of(
        st.from_regex(r"\+?[0-9 ()-]{1,20}", fullmatch=True),
        st.from_regex(r"\+86 ?0?[0-9]{9,11}", fullmatch=True),
        st.text(max_size=20),
    )
)
def test_phone_idempotent(value: str) -> None:
    try:
        out = normalize_phone(value)
    except BadUserInput:
        return
    assert normalize_phone(out) == out
    assert out.startswith("+") and out[1:].isdigit() and 9 <= len(out) <= 16


@given(st.text())
def test_clean_text_output_is_trimmed(value: str) -> None:
    try:
        out = clean_text(value, field="note", max_length=10_000)
    except BadUserInput:
        return
    assert out == out.strip()
    assert all(c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cs") for c in out)


@given(st.text(alphabet=st.sampled_from(["a", "\u0645", " ", "\u200c", "\u200d", *BIDI_CONTROLS, *OTHER_INVISIBLE]),
               min_size=1) | st.text())
def test_clean_text_output_has_no_bidi_control(value: str) -> None:
    try:
        out = clean_text(value, field="note", max_length=10_000)
    except BadUserInput:
        return
    assert not set(out) & set(BIDI_CONTROLS)
    assert all(c in "\u200c\u200d" or unicodedata.category(c) not in ("Cf", "Zl", "Zp") for c in out)
