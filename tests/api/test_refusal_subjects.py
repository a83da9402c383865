"""A refusal by role (the policy says no before any row is read) of an operation that names a patient names that
patient on the trail, and in the per-patient index, only when the id is one of the institution's files; another
institution's file, or no file at all, is recorded as a missing file's refusal is: the id asked for where the
operation records one, no patient, no index row. So institution A's trail never names B's patient, and A's
per-patient access report lists only A's files. A partner reads its own trail (``partnerAccessLog``): its refusals
name a file only when its grant in force opens it (which ``partnerOwnGrants`` tells it anyway), so an id out of its
grant, another institution's and a made-up one leave records that look alike to it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from models import AuditEvent, AuditPatientIndex
from tests.factories import Tenant, make_patient
from tests.partners import ALL_SCOPES, OWN_LOG, make_partnership


@dataclass(frozen=True)
class Named:
    """An operation naming a patient by ``pid``, refused by role to ``refused`` and allowed to ``allowed``."""

    name: str
    query: str
    variables: Any  # (tenant, pid) -> the operation's variables
    refused: str = "compliance_officer"
    allowed: str = "nurse"
    resource_is_patient: bool = False  # the refusal's resource is the file itself (its id the record's resource)
    recorded: bool = True  # allowed, it leaves a record naming the file (an empty list of visits leaves none)


CONTACT = {"name": "Wang Fang", "relationship": "SPOUSE", "phone": "13900139000"}
OPS = [
    Named("contactCreate", "mutation($pid: ID!, $input: ContactCreateInput!) { contactCreate(patientId: $pid, "
          "input: $input) { id } }", lambda t, pid: {"pid": pid, "input": CONTACT}),
    Named("visitCreate", "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }",
          lambda t, pid: {"input": {"patientId": pid, "departmentId": str(t.departments["A"].id),
                                    "kind": "OUTPATIENT"}}),
    Named("flagCreate", "mutation($input: FlagCreateInput!) { flagCreate(input: $input) { id } }",
          lambda t, pid: {"input": {"patientId": pid, "kind": "FALL_RISK"}}),
    Named("visits", "query($pid: ID!) { visits(patientId: $pid) { nodes { id } } }", lambda t, pid: {"pid": pid},
          recorded=False),
    Named("careTeamAssign", "mutation($pid: ID!, $sid: ID!) { careTeamAssign(patientId: $pid, staffId: $sid) }",
          lambda t, pid: {"pid": pid, "sid": str(t.staff_ids["doctor"])}, allowed="department_head"),
    Named("patientArchive", "mutation($id: ID!) { patientArchive(id: $id) { id } }", lambda t, pid: {"id": pid},
          allowed="front_desk", resource_is_patient=True),
    Named("patientAccessReport", "query($pid: ID!) { patientAccessReport(patientId: $pid) { actorId } }",
          lambda t, pid: {"pid": pid}, refused="nurse", allowed="compliance_officer", resource_is_patient=True),
]


async def _index(tenant: Tenant, patient_id: uuid.UUID) -> list[int]:
    """The seqs of the tenant's per-patient index rows for ``patient_id``."""
    return sorted(await AuditPatientIndex.filter(institution_id=tenant.id, patient_id=patient_id)
                  .values_list("seq", flat=True))


async def _last_seq(tenant: Tenant) -> int:
    events = await tenant.audit_events()
    return events[-1].seq if events else 0


async def _refused(tenant: Tenant, op: Named, pid: uuid.UUID) -> AuditEvent:
    """``op`` sent by its refused role naming ``pid``: FORBIDDEN, and the one record it leaves."""
    mark = await _last_seq(tenant)
    reply = await tenant.call(op.refused, op.query, **op.variables(tenant, str(pid)))
    assert reply.codes == ["FORBIDDEN"], reply.errors
    [denial] = await tenant.audit_events(seq__gt=mark)
    assert (denial.outcome, denial.reason, denial.actor_id) == ("denied", "forbidden", tenant.staff_ids[op.refused])
    return denial


@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
async def test_a_refusal_by_role_names_the_institutions_own_file(tenant: Tenant, op: Named) -> None:
    pid = await make_patient(tenant)

    denial = await _refused(tenant, op, pid)

    assert denial.patient_id == pid
    assert denial.seq in await _index(tenant, pid)


@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
async def test_a_refusal_by_role_names_no_file_of_another_institution_nor_a_made_up_one(
        tenant: Tenant, other_tenant: Tenant, op: Named) -> None:
    foreign, made_up = await make_patient(other_tenant), uuid.uuid4()
    theirs, their_index = await other_tenant.audit_count(), await _index(other_tenant, foreign)

    denials = [await _refused(tenant, op, pid) for pid in (foreign, made_up)]

    # recorded as a missing file's refusal is: the id asked for as the resource where the operation names one
    assert [(d.patient_id, d.subjects) for d in denials] == [(None, "")] * 2
    assert [d.resource_id for d in denials] == ([foreign, made_up] if op.resource_is_patient else [None, None])
    assert [(d.action, d.resource_type, d.field_classes) for d in denials] == [
        (denials[0].action, denials[0].resource_type, denials[0].field_classes)] * 2
    assert await _index(tenant, foreign) == await _index(tenant, made_up) == []
    # nor the other institution's: its trail and index as they were
    assert await other_tenant.audit_count() == theirs
    assert await _index(other_tenant, foreign) == their_index


DISCLOSED = """query($pid: ID!) { auditEvents(first: 50, filter: {patient: $pid}) { nodes { seq } } }"""


async def test_the_per_patient_report_lists_no_file_of_another_institution(tenant: Tenant,
                                                                          other_tenant: Tenant) -> None:
    """Through the API: the trail filtered by another institution's file finds nothing in this institution."""
    foreign = await make_patient(other_tenant)
    for op in OPS:
        await _refused(tenant, op, foreign)

    reply = await tenant.call("compliance_officer", DISCLOSED, pid=str(foreign))

    assert reply.errors == [], reply.errors
    assert reply.data["auditEvents"]["nodes"] == []


@pytest.mark.parametrize("op", OPS, ids=[op.name for op in OPS])
async def test_the_allowed_twin_names_its_file_as_before(tenant: Tenant, op: Named) -> None:
    pid = await make_patient(tenant)
    mark = await _last_seq(tenant)

    reply = await tenant.call(op.allowed, op.query, **op.variables(tenant, str(pid)))

    assert reply.errors == [], reply.errors
    events = await tenant.audit_events(seq__gt=mark)
    assert all(e.outcome == "allowed" for e in events)
    named = {e.seq for e in events if e.patient_id == pid}
    assert bool(named) is op.recorded
    assert named <= set(await _index(tenant, pid))


# -- a partner reads its own trail ---------------------------------------------------------------------------------

PARTNER_OPS = [op for op in OPS if op.name in ("contactCreate", "flagCreate")]  # a partner may do neither
OWN_LOG_QUERY = """{ partnerAccessLog(first: 50) { nodes { action resourceType resourceId patientId patientIds
  fieldClasses outcome reason policyRule } } }"""


@pytest.mark.parametrize("op", PARTNER_OPS, ids=[op.name for op in PARTNER_OPS])
async def test_a_partners_refusals_look_alike_whether_the_id_is_out_of_its_grant_elsewhere_or_none(
        tenant: Tenant, other_tenant: Tenant, op: Named) -> None:
    p = await make_partnership(tenant, [*ALL_SCOPES, OWN_LOG])
    foreign = await make_patient(other_tenant)
    theirs = await other_tenant.audit_count()

    for pid in (p.other, foreign, uuid.uuid4()):
        reply = await p.call(op.query, **op.variables(tenant, str(pid)))
        assert reply.codes == ["FORBIDDEN"], reply.errors

    log = await p.call(OWN_LOG_QUERY)
    assert log.errors == [], log.errors
    refusals = [n for n in log.data["partnerAccessLog"]["nodes"] if n["outcome"] == "DENIED"]
    assert len(refusals) == 3
    assert refusals[0] == refusals[1] == refusals[2]
    assert (refusals[0]["patientId"], refusals[0]["patientIds"]) == (None, [])
    denied = {e.seq for e in await p.events(outcome="denied")}
    assert len(denied) == 3 and not denied & set(await _index(tenant, p.other))
    assert await _index(tenant, foreign) == []
    assert await other_tenant.audit_count() == theirs


@pytest.mark.parametrize("op", PARTNER_OPS, ids=[op.name for op in PARTNER_OPS])
async def test_a_partners_refusal_names_the_file_its_grant_opens(tenant: Tenant, op: Named) -> None:
    """The twin: a file the partner's grant opens (which ``partnerOwnGrants`` tells it) is named, so the refused
    attempt is in that patient's access report."""
    p = await make_partnership(tenant, [*ALL_SCOPES, OWN_LOG])

    reply = await p.call(op.query, **op.variables(tenant, str(p.granted)))

    assert reply.codes == ["FORBIDDEN"], reply.errors
    [denial] = await p.events(outcome="denied")
    assert denial.patient_id == p.granted
    assert denial.seq in await _index(tenant, p.granted)
