"""Exact money: decimal strings in, integer minor units inside, the same strings out; nothing a float would
smudge gets in, and the arithmetic stays in ints."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import money
from core.errors import BadUserInput

CURRENCY_CODES = sorted(money.CURRENCIES)


@pytest.mark.parametrize(("amount", "currency", "minor"), [
    ("0", "CNY", 0),
    ("0.00", "CNY", 0),
    ("1", "CNY", 100),
    ("1.5", "CNY", 150),
    ("1.05", "CNY", 105),
    ("1234.50", "CNY", 123450),
    ("0.01", "USD", 1),
    ("1200", "JPY", 1200),
    ("1.234", "KWD", 1234),
    ("10000000000", "CNY", 10**12),  # the bound itself
    ("1000000000000", "JPY", 10**12),
])
def test_exact_decimals_become_minor_units(amount: str, currency: str, minor: int) -> None:
    assert money.parse_amount(amount, currency, field="price.amount") == minor


@pytest.mark.parametrize(("amount", "currency"), [
    ("", "CNY"),
    (" 12", "CNY"),
    ("12 ", "CNY"),
    ("12\n", "CNY"),
    ("-1", "CNY"),
    ("+1", "CNY"),
    ("1e3", "CNY"),
    ("1E3", "CNY"),
    ("1.005", "CNY"),  # three decimals where CNY has two
    ("1.5", "JPY"),  # JPY has none
    ("1.", "CNY"),
    (".5", "CNY"),
    ("01", "CNY"),
    ("1,000", "CNY"),
    ("1_000", "CNY"),
    ("NaN", "CNY"),
    ("nan", "CNY"),
    ("Infinity", "CNY"),
    ("inf", "CNY"),
    ("0x10", "CNY"),
    ("１２", "CNY"),  # full-width digits
    ("١٢", "CNY"),  # Arabic-Indic digits
    ("10000000000.01", "CNY"),  # one fen beyond the bound
    ("1000000000001", "JPY"),
    ("9" * 40, "CNY"),
])
def test_anything_else_is_refused_at_the_field(amount: str, currency: str) -> None:
    with pytest.raises(BadUserInput) as refused:
        money.parse_amount(amount, currency, field="input.items[0].price.amount")
    assert refused.value.extensions == {"code": "BAD_USER_INPUT", "field": "input.items[0].price.amount",
                                       "reason": "invalid"}


@pytest.mark.parametrize("currency", ["", "cny", "CN", "CNYY", " CNY", "XXX", "ABC", "元"])
def test_unknown_currencies_are_refused_at_the_currency_field(currency: str) -> None:
    with pytest.raises(BadUserInput) as refused:
        money.parse_money("1.00", currency, field="price")
    assert refused.value.extensions == {"code": "BAD_USER_INPUT", "field": "price.currency",
                                       "reason": "invalid"}


def test_parse_money_names_the_amount_under_the_field() -> None:
    assert money.parse_money("12.30", "HKD", field="price") == (1230, "HKD")
    with pytest.raises(BadUserInput) as refused:
        money.parse_money("12.345", "HKD", field="price")
    assert refused.value.extensions["field"] == "price.amount"


def test_zero_can_be_refused() -> None:
    with pytest.raises(BadUserInput):
        money.parse_amount("0.00", "CNY", field="amount", allow_zero=False)
    assert money.parse_amount("0.01", "CNY", field="amount", allow_zero=False) == 1


def test_floats_never_get_in() -> None:
    for value in (12.5, 1, None, b"12"):
        with pytest.raises(BadUserInput):
            money.parse_amount(value, "CNY", field="amount")  # type: ignore[arg-type]
    for bad in (1.5, True, "12"):
        with pytest.raises(TypeError):
            money.format_amount(bad, "CNY")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            money.multiply(bad, 2)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            money.total([1, bad])  # type: ignore[list-item]


@pytest.mark.parametrize(("minor", "currency", "text"), [
    (0, "CNY", "0.00"), (5, "CNY", "0.05"), (123450, "CNY", "1234.50"), (1200, "JPY", "1200"),
    (1234, "KWD", "1.234"), (-105, "CNY", "-1.05"), (10**12, "CNY", "10000000000.00"),
])
def test_minor_units_format_with_all_the_currencys_decimals(minor: int, currency: str, text: str) -> None:
    assert money.format_amount(minor, currency) == text


def test_the_table_knows_the_usual_currencies() -> None:
    assert {code: money.minor_digits(code) for code in ("CNY", "USD", "EUR", "HKD", "GBP", "JPY")} == {
        "CNY": 2, "USD": 2, "EUR": 2, "HKD": 2, "GBP": 2, "JPY": 0}
    assert all(len(code) == 3 and code.isupper() and 0 <= digits <= 3 for code, digits in money.CURRENCIES.items())


def test_arithmetic_stays_exact_in_ints() -> None:
    # 0.1 + 0.2 in floats is 0.30000000000000004; in fen it is 30.
    assert money.total([money.parse_amount("0.10", "CNY"), money.parse_amount("0.20", "CNY")]) == 30
    assert money.multiply(money.parse_amount("1.005", "KWD"), 3) == 3015
    assert money.multiply(33333, 3) == 99999
    assert money.total([]) == 0
    assert money.total(iter([money.MAX_MINOR_UNITS, -1, 1])) == money.MAX_MINOR_UNITS
    with pytest.raises(OverflowError):
        money.multiply(money.MAX_MINOR_UNITS, 2)
    with pytest.raises(OverflowError):
        money.total([money.MAX_MINOR_UNITS, 1])


@given(st.sampled_from(CURRENCY_CODES), st.integers(min_value=0, max_value=money.MAX_MINOR_UNITS))
def test_formatting_then_parsing_gives_the_same_minor_units(currency: str, minor: int) -> None:
    text = money.format_amount(minor, currency)
    assert money.parse_amount(text, currency) == minor


@given(st.sampled_from(CURRENCY_CODES), st.integers(min_value=0, max_value=money.MAX_MINOR_UNITS // 10**3),
       st.integers(min_value=0, max_value=3))
def test_any_decimal_within_the_currencys_digits_parses_exactly(currency: str, whole: int, shown: int) -> None:
    digits = money.CURRENCIES[currency]
    shown = min(shown, digits)
    fraction = whole % 10**shown if shown else 0
    text = f"{whole}.{fraction:0{shown}d}" if shown else str(whole)
    expected = whole * 10**digits + fraction * 10 ** (digits - shown)
    if expected > money.MAX_MINOR_UNITS:
        with pytest.raises(BadUserInput):
            money.parse_amount(text, currency)
    else:
        assert money.parse_amount(text, currency) == expected


@given(st.sampled_from(CURRENCY_CODES), st.integers(min_value=0, max_value=10**9),
       st.integers(min_value=1, max_value=9))
def test_one_decimal_too_many_is_always_refused(currency: str, whole: int, last: int) -> None:
    digits = money.CURRENCIES[currency]
    text = f"{whole}." + "0" * digits + str(last)
    with pytest.raises(BadUserInput):
        money.parse_amount(text, currency)


@given(st.text(max_size=20))
def test_arbitrary_text_either_parses_to_a_canonical_amount_or_is_refused(text: str) -> None:
    try:
        minor = money.parse_amount(text, "CNY")
    except BadUserInput:
        return
    assert 0 <= minor <= money.MAX_MINOR_UNITS
    assert money.parse_amount(money.format_amount(minor, "CNY"), "CNY") == minor
    assert text.isascii() and text.strip() == text


@given(st.lists(st.integers(min_value=0, max_value=10**6), max_size=50), st.integers(min_value=0, max_value=1000))
def test_sums_and_products_agree_with_exact_integer_arithmetic(amounts: list[int], quantity: int) -> None:
    assert money.total(money.multiply(a, quantity) for a in amounts) == sum(amounts) * quantity
