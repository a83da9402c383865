"""The compiled read path plans a document once (schema/selection.py, ``DocumentCache``): the same document again,
by anyone, runs the plan already made; another value of a variable @skip/@include reads is planned on its own,
another value of any other variable is not; the cache is bounded. Answers and audit records stay those of the
generic path (tests/api/test_compiled_reads.py's ``assert_same``)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest

from tests.api.test_compiled_reads import W1, assert_same
from tests.factories import Tenant, gql, make_patient
from tests.patients import make_contact

PLANNED = "careloop.compiled.plan"  # one debug record per plan made


def _document(body: str) -> str:
    """A document no other test sends: the parser cache, hence the plan cache, has never seen its text."""
    return f"# {uuid.uuid4()}\n{body}"


def _planned(caplog: pytest.LogCaptureFixture) -> int:
    return sum(1 for record in caplog.records if record.name == PLANNED)


@pytest.fixture
async def patients(tenant: Tenant) -> Tenant:
    first = await make_patient(tenant, "nurse", fullName="Kinsley Moore", phone="13800001111", allergies="Penicillin",
                               address="Garden Road 5", birthDate="1970-03-04")
    await make_patient(tenant, fullName="Liam Kin")
    await make_contact(tenant, first, "Ann Moore", notes="Sister")
    return tenant


async def _same(tenant: Tenant, role: str, query: str, variables: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                caplog: pytest.LogCaptureFixture) -> int:
    """Plans made while the query ran through the compiled path (``assert_same`` runs the generic path first, and
    keeps the log records of the compiled run only)."""
    await assert_same(tenant, tenant.tokens[role], query, variables, True, monkeypatch, caplog)
    return _planned(caplog)


async def test_the_same_document_is_planned_once(patients: Tenant, monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    query = _document(W1)
    assert await _same(patients, "nurse", query, {}, monkeypatch, caplog) == 1
    assert await _same(patients, "nurse", query, {}, monkeypatch, caplog) == 0
    # made under one principal, the plan answers another's request as the generic path does: it holds nothing
    # of the request that made it (refused classes, scope, audit notes are decided per request)
    for role in ("front_desk", "doctor", "compliance_officer", "support_agent"):
        assert await _same(patients, role, query, {}, monkeypatch, caplog) == 0
    # another text is another document, planned on its own
    assert await _same(patients, "nurse", _document(W1), {}, monkeypatch, caplog) == 1


async def test_a_switch_variable_plans_per_value_and_others_do_not(patients: Tenant, monkeypatch: pytest.MonkeyPatch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    query = _document("""query($first: Int!, $clinical: Boolean!, $filter: PatientFilter) {
        patients(first: $first, filter: $filter) { nodes { id fullName allergies @include(if: $clinical)
        phone @skip(if: $clinical) contacts { name notes } } } }""")
    assert await _same(patients, "nurse", query, {"first": 5, "clinical": True}, monkeypatch, caplog) == 1
    # variables @skip/@include do not read do not split the cache
    for variables in ({"first": 1, "clinical": True}, {"first": 5, "clinical": True, "filter": {"name": "kin"}}):
        assert await _same(patients, "nurse", query, variables, monkeypatch, caplog) == 0
    clinical_off = await _same(patients, "nurse", query, {"first": 5, "clinical": False}, monkeypatch, caplog)
    assert clinical_off == 1
    for clinical in (True, False):  # both values are kept
        assert await _same(patients, "front_desk", query, {"first": 2, "clinical": clinical}, monkeypatch,
                           caplog) == 0
    # what each value collects is what it answers
    token = patients.tokens["nurse"]
    on = await gql(patients.client, query, {"first": 5, "clinical": True}, token)
    off = await gql(patients.client, query, {"first": 5, "clinical": False}, token)
    assert {"allergies"} <= set(on.data["patients"]["nodes"][0]) and "phone" not in on.data["patients"]["nodes"][0]
    assert {"phone"} <= set(off.data["patients"]["nodes"][0]) and "allergies" not in off.data["patients"]["nodes"][0]


async def test_a_switch_with_a_default_and_in_a_fragment(patients: Tenant, monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    query = _document("""query($kin: Boolean = true, $id: ID!) { patient(id: $id) { id ...F } }
        fragment F on Patient { fullName contacts @include(if: $kin) { name } ... @skip(if: $kin) { phone } }""")
    listed = await gql(patients.client, "{ patients(first: 1) { nodes { id } } }", None, patients.tokens["nurse"])
    pid = listed.data["patients"]["nodes"][0]["id"]
    assert await _same(patients, "nurse", query, {"id": pid}, monkeypatch, caplog) == 1
    assert await _same(patients, "nurse", query, {"id": pid, "kin": True}, monkeypatch, caplog) == 0  # the default
    assert await _same(patients, "nurse", query, {"id": pid, "kin": False}, monkeypatch, caplog) == 1
    assert await _same(patients, "doctor", query, {"id": str(uuid.uuid4())}, monkeypatch, caplog) == 0


async def test_the_cache_is_bounded(patients: Tenant, monkeypatch: pytest.MonkeyPatch,
                                    caplog: pytest.LogCaptureFixture) -> None:
    """The least recently used document goes once 256 others came after it: planned again."""
    first = _document("{ patients(first: 1) { nodes { id } } }")
    assert await _same(patients, "nurse", first, {}, monkeypatch, caplog) == 1
    token = patients.tokens["nurse"]
    with caplog.at_level(logging.DEBUG, logger=PLANNED):
        before = _planned(caplog)
        for _ in range(256):
            reply = await gql(patients.client, _document("{ patients(first: 1) { nodes { id } } }"), None, token)
            assert reply.data and not reply.errors
        assert _planned(caplog) - before == 256
    assert await _same(patients, "nurse", first, {}, monkeypatch, caplog) == 1
