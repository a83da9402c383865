"""Gaps in the audit trail and leaks of patient data, identifiers or secrets found by a fresh review: each test
failed before its fix (docs/security.md, Audit; docs/architecture.md, Errors for front-end teams)."""

from __future__ import annotations

import json

import pytest

from tests.factories import Tenant

SECRET_PHONE = "13812345678"
SECRET_NAME = "Zelda Quokkafield"


# -- syntax errors never echo a value of the document ------------------------------------------------------


@pytest.mark.parametrize("document", [
    f'query {{ patients(first: 5, filter: {{phone: "a" "{SECRET_PHONE}"}}) {{ nodes {{ id }} }} }}',
    f'query {{ patients(first: 5, filter: {{phone: "a" {SECRET_PHONE}}}) {{ nodes {{ id }} }} }}',
    f'query {{ patients(first: 5, filter: {{name: "a" """{SECRET_NAME}"""}}) {{ nodes {{ id }} }} }}',
    f'query {{ patients(first: 5 "{SECRET_NAME}") {{ nodes {{ id }} }} }}',
])
async def test_a_syntax_error_does_not_echo_a_value_of_the_document(tenant: Tenant, document: str) -> None:
    """graphql-core's parser names the token it did not expect with its value (`found String '13812345678'`):
    a phone, a name or an ID the client sent came back in the error (and on to whatever records errors), where
    every other input error names the place and the rule only."""
    reply = await tenant.call("front_desk", document)

    assert reply.codes == ["BAD_USER_INPUT"]
    (error,) = reply.errors
    assert error["message"].startswith("Syntax Error: ") and error["locations"]
    text = json.dumps(reply.body, ensure_ascii=False)
    assert SECRET_PHONE not in text and SECRET_NAME not in text
