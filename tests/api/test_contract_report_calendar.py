"""The billing calendar of delivered-against-contracted and the report, checked on its own: periods counted from
the start of the term (the month's last day when it is shorter), the version in force on a period's first day
deciding its length, the term's end closing the last one. (The API tests use terms starting on the 1st.)"""

from __future__ import annotations

from datetime import date

from models import Contract, ContractVersion
from resolvers.contract import ContractView, VersionView
from resolvers.contract_report import add_months, billing_periods


def versions(*terms: tuple[int, str, date, str]) -> list[VersionView]:
    contract = ContractView(Contract(number="C-1", title="t", currency="CNY", start_on=terms[0][2],
                                     end_on=date(2030, 1, 1)))
    return [VersionView(ContractVersion(number=number, status=status, effective_on=effective, end_on=date(2030, 1, 1),
                                        billing_period=billing, rights_duties="r"), contract)
            for number, status, effective, billing in terms]


def spans(start: date, end: date, found: list[VersionView], through: date) -> list[tuple[str, str, int]]:
    return [(p.start.isoformat(), p.end.isoformat(), p.version.row.number)
            for p in billing_periods(start, end, found, through=through)]


def test_add_months_keeps_the_day_or_takes_the_months_last() -> None:
    assert add_months(date(2027, 1, 31), 1) == date(2027, 2, 28)
    assert add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert add_months(date(2027, 1, 31), 2) == date(2027, 3, 31)
    assert add_months(date(2027, 11, 15), 3) == date(2028, 2, 15)
    assert add_months(date(2027, 3, 31), -1) == date(2027, 2, 28)
    assert add_months(date(2027, 1, 10), -13) == date(2025, 12, 10)


def test_monthly_periods_from_the_31st_and_the_term_closing_the_last() -> None:
    found = versions((1, "signed", date(2027, 1, 31), "monthly"))
    assert spans(date(2027, 1, 31), date(2027, 5, 15), found, date(2030, 1, 1)) == [
        ("2027-01-31", "2027-02-27", 1), ("2027-02-28", "2027-03-30", 1), ("2027-03-31", "2027-04-29", 1),
        ("2027-04-30", "2027-05-15", 1)]
    # up to a day: the periods begun by then
    assert len(spans(date(2027, 1, 31), date(2027, 5, 15), found, date(2027, 2, 28))) == 2


def test_an_amendment_rules_from_the_next_period_and_may_change_its_length() -> None:
    found = versions((1, "signed", date(2027, 1, 1), "monthly"), (2, "signed", date(2027, 2, 10), "quarterly"),
                     (3, "withdrawn", date(2027, 3, 1), "yearly"), (4, "draft", date(2027, 3, 1), "yearly"))
    assert spans(date(2027, 1, 1), date(2027, 12, 31), found, date(2027, 12, 31)) == [
        ("2027-01-01", "2027-01-31", 1), ("2027-02-01", "2027-02-28", 1), ("2027-03-01", "2027-05-31", 2),
        ("2027-06-01", "2027-08-31", 2), ("2027-09-01", "2027-11-30", 2), ("2027-12-01", "2027-12-31", 2)]


def test_nothing_signed_nothing_contracted() -> None:
    found = versions((1, "sent", date(2027, 1, 1), "monthly"))
    assert spans(date(2027, 1, 1), date(2027, 12, 31), found, date(2027, 12, 31)) == []
