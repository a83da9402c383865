"""A written contact's answer (contactCreate, contactUpdate), completed from a plan (``schema.compiled``), is the
generic path's: a corpus of selections, run by every role on a patient in reach, one out of it and one that
does not exist, through both paths (CARELOOP_COMPILED_READS off, then on), comparing the whole JSON answer and
the audit records each run appended. Each run writes its own contact (or version), so what differs by design is
set aside: the new contact's id, its version and time."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from core.principal import ROLES
from models import CareTeamMember, Contact
from tests.api.test_compiled_reads import ALL_CONTACT_FIELDS, _run, _without_request_ids
from tests.factories import Tenant, make_patient
from tests.patients import make_contact, open_account

CREATE = "mutation($patientId: ID!, $input: ContactCreateInput!{variables}) {{ contactCreate(patientId: $patientId, " \
         "input: $input) {selection} }}{fragments}"
UPDATE = "mutation($id: ID!, $input: ContactUpdateInput!{variables}) {{ contactUpdate(id: $id, input: $input) " \
         "{selection} }}{fragments}"
# (selection, extra variable definitions, fragments, extra variables, compiled?)
SELECTIONS: list[tuple[str, str, str, dict[str, Any], bool]] = [
    ("{ id name relationship phone }", "", "", {}, True),  # W3's
    (f"{{ {ALL_CONTACT_FIELDS} __typename }}", "", "", {}, True),
    ("{ a: name b: name id ph: phone kind: relationship }", "", "", {}, True),
    ("{ ...Kin ... on Contact { isEmergency } ... { notes } }", "", " fragment Kin on Contact { name phone }", {},
     True),
    ("{ id notes @include(if: $more) phone @skip(if: $more) }", ", $more: Boolean!", "", {"more": True}, True),
    ("{ id notes @include(if: $more) phone @skip(if: $more) }", ", $more: Boolean!", "", {"more": False}, True),
    ("{ __typename }", "", "", {}, True),
    ("{ id }", "", "", {}, True),
]


@dataclass
class World:
    tenant: Tenant
    in_reach: uuid.UUID  # department A, in every clinician's care team
    out_of_reach: uuid.UUID  # department B, in no care team


@pytest.fixture
async def world(tenant: Tenant) -> World:
    in_reach = await make_patient(tenant, "nurse", fullName="Kinsley Moore", allergies="Penicillin")
    out_of_reach = await make_patient(tenant, "nurse", fullName="Zhang Wei",
                                      departmentId=str(tenant.departments["B"].id))
    await CareTeamMember.filter(patient_id=out_of_reach).delete()
    return World(tenant, in_reach, out_of_reach)


TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?\+00:00")


def _differing(key: str, value: Any) -> Any:
    """A version or a time in its expected form, put as a placeholder; anything else as it is, so a different form
    still shows."""
    if key == "version" and type(value) is int:
        return "<version>"
    if key == "updatedAt" and isinstance(value, str) and TIME.fullmatch(value):
        return "<time>"
    return value


def _set_aside(value: Any, new: set[str]) -> Any:
    """``value`` with the ids of the contacts this run wrote, and every version and time, put as placeholders."""
    if isinstance(value, dict):
        return {k: _differing(k, v) if k in ("version", "updatedAt") else _set_aside(v, new) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_set_aside(v, new) for v in value)
    text = str(value) if isinstance(value, uuid.UUID) else value
    if isinstance(text, str):
        for written in new:
            text = text.replace(written, "<new>")
        return text
    return value


async def _written_run(tenant: Tenant, token: str, query: str, variables: dict[str, Any], *, compiled: bool,
                       monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> tuple[Any, Any, bool]:
    before = set(await Contact.filter(institution_id=tenant.id).values_list("id", flat=True))
    reply, audit, ran = await _run(tenant, token, query, variables, compiled=compiled, monkeypatch=monkeypatch,
                                   caplog=caplog)
    new = {str(i) for i in await Contact.filter(institution_id=tenant.id).values_list("id", flat=True)} - {
        str(i) for i in before}
    assert compiled or not ran
    return reply, (_set_aside(_without_request_ids(reply.body), new), _set_aside(audit, new), reply.status), ran


async def assert_same_write(world: World, who: str, query: str, variables: dict[str, Any], supported: bool,
                            monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Any:
    """``who``: a staff role, or a signed-in patient's token."""
    token = world.tenant.tokens.get(who, who)
    _, generic, _ = await _written_run(world.tenant, token, query, variables, compiled=False,
                                       monkeypatch=monkeypatch, caplog=caplog)
    reply, compiled, ran = await _written_run(world.tenant, token, query, variables, compiled=True,
                                              monkeypatch=monkeypatch, caplog=caplog)
    assert compiled == generic, query
    assert json.dumps(compiled) == json.dumps(generic), query  # the keys in the same order too
    written = bool(reply.data) and all(value is not None for value in reply.data.values())
    assert ran == (supported and written), query  # the plan ran exactly when there was an answer to complete
    return reply


@pytest.mark.parametrize("role", ROLES)
async def test_every_role_creates_a_contact_and_reads_it_back_as_the_generic_path(
        world: World, role: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    data = {"name": "Ann Moore", "relationship": "SPOUSE", "phone": "+8613912345678", "notes": "Next door",
            "isEmergency": True}
    answered = 0
    for patient in (world.in_reach, world.out_of_reach, uuid.uuid4()):
        for selection, defined, fragments, extra, supported in SELECTIONS:
            query = CREATE.format(variables=defined, selection=selection, fragments=fragments)
            reply = await assert_same_write(world, role, query, {"patientId": str(patient), "input": data, **extra},
                                            supported, monkeypatch, caplog)
            answered += bool(reply.data and reply.data["contactCreate"])
    if role == "nurse":  # the corpus exercises what it claims: the nurse writes and reads back in reach only
        assert answered == len(SELECTIONS)


@pytest.mark.parametrize("role", ROLES)
async def test_every_role_updates_a_contact_and_reads_it_back_as_the_generic_path(
        world: World, role: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    near = await make_contact(world.tenant, world.in_reach, "Bo Moore", notes="Brother")
    far = await make_contact(world.tenant, world.out_of_reach, "Cy Wei")
    answered = 0
    for contact in (near, far, uuid.uuid4()):
        for selection, defined, fragments, extra, supported in SELECTIONS:
            query = UPDATE.format(variables=defined, selection=selection, fragments=fragments)
            reply = await assert_same_write(world, role, query,
                                            {"id": str(contact), "input": {"phone": "13600007777"}, **extra},
                                            supported, monkeypatch, caplog)
            answered += bool(reply.data and reply.data["contactUpdate"])
    if role == "nurse":
        assert answered == len(SELECTIONS)


async def test_a_mutation_with_two_root_fields_keeps_the_generic_path(
        world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    query = """mutation($patientId: ID!, $input: ContactCreateInput!) {
      a: contactCreate(patientId: $patientId, input: $input) { id name }
      b: contactCreate(patientId: $patientId, input: $input) { id phone } }"""
    reply = await assert_same_write(world, "nurse", query, {"patientId": str(world.in_reach), "input": {
        "name": "Di Moore", "relationship": "CHILD", "phone": "13600008888"}}, False, monkeypatch, caplog)
    assert reply.data["a"]["name"] == "Di Moore" and reply.data["b"]["phone"]


async def test_the_patient_writes_their_contacts_and_reads_them_back_as_the_generic_path(
        world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    me = await open_account(world.tenant, world.in_reach)
    mine = await make_contact(world.tenant, world.in_reach, "Eve Moore")
    answered = 0
    for selection, defined, fragments, extra, supported in SELECTIONS:
        for query, variables in (
                (CREATE, {"patientId": str(world.in_reach), "input": {"name": "Fay Moore", "relationship": "PARENT"}}),
                (CREATE, {"patientId": str(world.out_of_reach), "input": {"name": "Gus", "relationship": "OTHER"}}),
                (UPDATE, {"id": str(mine), "input": {"isEmergency": True}})):
            reply = await assert_same_write(world, me.token, query.format(variables=defined, selection=selection,
                                                                          fragments=fragments),
                                            {**variables, **extra}, supported, monkeypatch, caplog)
            answered += bool(reply.data and next(iter(reply.data.values())))
    assert answered == 2 * len(SELECTIONS)  # their own file's, never another's
