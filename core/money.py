"""Exact money: integer minor units (cents, fen), never floats.

Amounts arrive and leave as exact decimal strings ("1234.50"); in the database and in Python they are
integers of the currency's minor unit (123450). Parsing refuses anything a float would have smudged or a
client could mean two ways: exponents ("1e3"), more decimals than the currency has ("1.005" CNY), signs,
blanks or padding, non-numbers ("NaN", "Infinity"), non-ASCII digits, and amounts beyond ``MAX_MINOR_UNITS``.
Arithmetic helpers stay in ints and refuse results beyond the same bound, so a total can always be stored in
a BIGINT and shown exactly in JavaScript (``minorUnits`` is sent as a string anyway).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from core.errors import BadUserInput

# ISO 4217 code -> digits of the minor unit. A curated list of the currencies an institution may price in,
# not the whole standard: an unknown code is refused rather than guessed.
CURRENCIES: dict[str, int] = {
    "CNY": 2, "HKD": 2, "MOP": 2, "TWD": 2, "USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "CAD": 2, "AUD": 2,
    "NZD": 2, "SGD": 2, "SEK": 2, "NOK": 2, "DKK": 2, "THB": 2, "MYR": 2, "PHP": 2, "INR": 2, "MXN": 2,
    "BRL": 2, "ZAR": 2, "JPY": 0, "KRW": 0, "VND": 0, "ISK": 0, "CLP": 0, "BHD": 3, "KWD": 3, "OMR": 3,
    "JOD": 3, "TND": 3,
}

# The largest amount accepted anywhere, in minor units: 10^12 (ten billion yuan, a trillion yen). Far above any
# fee, far below the BIGINT and the 2^53 limits, so sums of many such amounts are still exact everywhere.
MAX_MINOR_UNITS = 10**12

_AMOUNT = re.compile(r"(0|[1-9][0-9]*)(?:\.([0-9]+))?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_MAX_INTEGER_DIGITS = 15  # refuse absurdly long strings before any arithmetic


def _fail(field: str, problem: str) -> BadUserInput:
    return BadUserInput(f"{field}: {problem}", field=field)


def minor_digits(currency: str) -> int:
    """The digits of a known currency's minor unit (KeyError for an unknown code)."""
    return CURRENCIES[currency]


def parse_currency(value: str, *, field: str = "currency") -> str:
    """An ISO 4217 code of the table, upper case as sent: "CNY". Lower case or padded is refused."""
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value) or value not in CURRENCIES:
        raise _fail(field, "an ISO 4217 currency code this service prices in (e.g. CNY).")
    return value


def parse_amount(value: str, currency: str, *, field: str = "amount", currency_field: str = "currency",
                 allow_zero: bool = True) -> int:
    """An exact decimal string as integer minor units of ``currency``: "1234.5" CNY -> 123450.

    Plain ASCII digits, an optional point and at most the currency's minor digits; no sign, exponent,
    whitespace, thousands separator or leading zeros ("007"). Zero is allowed unless ``allow_zero`` is false.
    An unknown currency names ``currency_field``; everything else names ``field``.
    """
    digits = CURRENCIES[parse_currency(currency, field=currency_field)]
    if not isinstance(value, str) or not value:
        raise _fail(field, "an amount is required, e.g. \"1234.50\".")
    match = _AMOUNT.fullmatch(value)
    if match is None:
        raise _fail(field, "a plain non-negative decimal such as \"1234.50\" (no sign, exponent, spaces or "
                           "separators).")
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction) > digits:
        raise _fail(field, f"{currency} has {digits} decimal place{'' if digits == 1 else 's'} at most.")
    if len(whole) > _MAX_INTEGER_DIGITS:
        raise _fail(field, "the amount is too large.")
    minor = int(whole) * 10**digits + (int(fraction.ljust(digits, "0")) if digits else 0)
    if minor > MAX_MINOR_UNITS:
        raise _fail(field, "the amount is too large.")
    if minor == 0 and not allow_zero:
        raise _fail(field, "the amount must be more than zero.")
    return minor


def parse_money(amount: str, currency: str, *, field: str, allow_zero: bool = True) -> tuple[int, str]:
    """A MoneyInput's two strings as (minor units, currency); errors name "<field>.amount" or "<field>.currency"."""
    code = parse_currency(currency, field=f"{field}.currency")
    return parse_amount(amount, code, field=f"{field}.amount", currency_field=f"{field}.currency",
                        allow_zero=allow_zero), code


def format_amount(minor: int, currency: str) -> str:
    """Integer minor units as an exact decimal string with all of the currency's digits: 123450 CNY -> "1234.50"."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise TypeError("minor units must be an int")
    digits = CURRENCIES[currency]
    sign = "-" if minor < 0 else ""
    whole, fraction = divmod(abs(minor), 10**digits)
    return f"{sign}{whole}.{fraction:0{digits}d}" if digits else f"{sign}{whole}"


def _bounded(value: int) -> int:
    if abs(value) > MAX_MINOR_UNITS:
        raise OverflowError("amount beyond MAX_MINOR_UNITS")
    return value


def multiply(unit_minor: int, quantity: int) -> int:
    """unit price x a whole quantity, in minor units (OverflowError beyond the bound)."""
    if isinstance(unit_minor, bool) or isinstance(quantity, bool) or not isinstance(unit_minor, int) \
            or not isinstance(quantity, int):
        raise TypeError("multiply takes ints")
    return _bounded(unit_minor * quantity)


def total(amounts: Iterable[int]) -> int:
    """The exact sum of minor-unit amounts (OverflowError beyond the bound)."""
    result = 0
    for amount in amounts:
        if isinstance(amount, bool) or not isinstance(amount, int):
            raise TypeError("total takes ints")
        result += amount
    return _bounded(result)
