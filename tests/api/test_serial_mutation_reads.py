"""A mutation's root fields run one after the other, and each reads what the ones before it wrote (found in review:
the request's DataLoaders kept what an earlier field had loaded, so a patient's contacts read back after a
contactCreate or a contactDelete of the same request answered the list as it was before)."""

from __future__ import annotations

from tests.api.test_contact import add_contact, contact_rows, denials
from tests.factories import Tenant, make_patient

CREATE_BETWEEN = """mutation($pid: ID!) {
  before: patientUpdate(id: $pid, input: {occupation: "teacher"}) { contacts { name } }
  contactCreate(patientId: $pid, input: {name: "Li Na", relationship: CHILD}) { name }
  after: patientUpdate(id: $pid, input: {occupation: "driver"}) { occupation contacts { name } }
}"""
DELETE_BETWEEN = """mutation($pid: ID!, $cid: ID!) {
  before: patientUpdate(id: $pid, input: {occupation: "teacher"}) { contacts { name } }
  contactDelete(id: $cid)
  after: patientUpdate(id: $pid, input: {occupation: "driver"}) { contacts { name } }
}"""


async def test_a_contact_created_by_an_earlier_field_is_read_back_by_a_later_one(tenant: Tenant) -> None:
    pid = await make_patient(tenant)

    reply = await tenant.call("front_desk", CREATE_BETWEEN, pid=str(pid))

    assert reply.errors == [], reply.errors
    assert reply.data["before"]["contacts"] == []
    assert reply.data["after"] == {"occupation": "driver", "contacts": [{"name": "Li Na"}]}


async def test_a_contact_deleted_by_an_earlier_field_is_gone_from_a_later_one(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    cid = await add_contact(tenant, pid)

    reply = await tenant.call("front_desk", DELETE_BETWEEN, pid=str(pid), cid=str(cid))

    assert reply.errors == [], reply.errors
    assert reply.data["before"]["contacts"] == [{"name": "Wang Fang"}]
    assert reply.data["after"]["contacts"] == []


async def test_a_refused_write_between_leaves_the_later_read_as_it_was(tenant: Tenant) -> None:
    """The denied twin: a reader's contactCreate is refused and recorded, nothing is written, and the later field
    reads the list unchanged."""
    pid = await make_patient(tenant)
    await add_contact(tenant, pid)
    before = await contact_rows(tenant)

    reply = await tenant.call("doctor", """mutation($pid: ID!) {
      contactCreate(patientId: $pid, input: {name: "Li Na", relationship: CHILD}) { name }
      patientUpdate(id: $pid, input: {allergies: "penicillin"}) { contacts { name } }
    }""", pid=str(pid))

    assert reply.codes == ["FORBIDDEN"], reply.errors
    assert await contact_rows(tenant) == before
    assert await denials(tenant) == [(tenant.staff_ids["doctor"], "forbidden")]
    assert reply.data["patientUpdate"]["contacts"] == [{"name": "Wang Fang"}]
