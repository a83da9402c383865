"""The shared collector of input problems: every invalid field at once, in one coded error."""

from __future__ import annotations

import pytest

from core.errors import BadUserInput, InvalidInput
from core.validation import Problems, normalize_email, normalize_phone


def test_problems_gathers_validators_errors_with_their_reasons_and_raises_them_at_once() -> None:
    problems = Problems()
    with problems.collect("phone"):
        normalize_phone("12", field="phone")
    with problems.collect("email"):
        normalize_email("", field="email")
    with problems.collect("name"):
        pass
    problems.add("birthDate", "in_future", "must not be in the future.")

    with pytest.raises(InvalidInput) as raised:
        problems.check()

    error = raised.value
    assert isinstance(error, BadUserInput)
    assert error.extensions == {
        "code": "BAD_USER_INPUT", "field": "phone", "reason": "invalid",
        "invalid": [
            {"field": "phone", "reason": "invalid",
             "message": "must start with + and a country code, or be a mainland mobile."},
            {"field": "email", "reason": "required", "message": "is required."},
            {"field": "birthDate", "reason": "in_future", "message": "must not be in the future."}]}
    assert error.message == ("phone: must start with + and a country code, or be a mainland mobile. "
                             "(and 2 more: see extensions.invalid)")


def test_no_problem_raises_nothing_and_nested_lists_are_merged() -> None:
    Problems().check()
    inner = Problems()
    inner.add("items[0].quantity", "too_small", "at least 1.")
    outer = Problems()
    with outer.collect("items"):
        inner.check()
    assert outer.found == [("items[0].quantity", "too_small", "at least 1.")]
