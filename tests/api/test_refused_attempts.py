"""A refused attempt to open an existing file names the patient on the trail (never in the answer), so it shows
in the patient's access report and in the trail filtered by patient."""

from __future__ import annotations

import uuid
from typing import Any

from tests.factories import Tenant, make_patient
from tests.partners import make_partnership

READ = "query($id: ID!) { patient(id: $id) { id fullName } }"
EVENTS = """query($pid: ID!) { auditEvents(first: 50, filter: {patient: $pid}) {
  edges { node { actorId patientId outcome reason resourceType } } } }"""
REPORT = "query($id: ID!) { patientAccessReport(patientId: $id) { actorId reads denied } }"


def _without_request_ids(value: Any) -> Any:
    """The answer as a client sees it, request ids aside (they differ on every request)."""
    if isinstance(value, dict):
        return {k: _without_request_ids(v) for k, v in value.items() if k not in ("requestId", "request_id")}
    if isinstance(value, list):
        return [_without_request_ids(v) for v in value]
    return value


async def test_a_refused_attempt_on_an_existing_file_names_the_patient_on_the_trail(tenant: Tenant) -> None:
    pid = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))  # the nurse works in A
    missing = uuid.uuid4()
    existing_reply = await tenant.call("nurse", READ, id=str(pid))
    missing_reply = await tenant.call("nurse", READ, id=str(missing))
    assert existing_reply.codes == ["NOT_FOUND"]
    assert existing_reply.status == missing_reply.status
    assert _without_request_ids(existing_reply.body) == _without_request_ids(missing_reply.body)
    assert str(pid) not in str(existing_reply.body)

    nurse = tenant.staff_ids["nurse"]
    refusals = {e.resource_id: e for e in await tenant.audit_events(actor_id=nurse, outcome="denied")}
    assert refusals[pid].patient_id == pid and refusals[pid].reason == "not_found"
    assert refusals[missing].patient_id is None  # no such file: nobody to name

    events = await tenant.call("compliance_officer", EVENTS, pid=str(pid))
    assert events.errors == [], events.errors
    mine = [e["node"] for e in events.data["auditEvents"]["edges"] if e["node"]["actorId"] == str(nurse)]
    assert mine == [{"actorId": str(nurse), "patientId": str(pid), "outcome": "DENIED", "reason": "not_found",
                     "resourceType": "patient"}]

    report = await tenant.call("compliance_officer", REPORT, id=str(pid))
    assert report.errors == [], report.errors
    attempts = [p for p in report.data["patientAccessReport"] if p["actorId"] == str(nurse)]
    assert attempts == [{"actorId": str(nurse), "reads": 0, "denied": 1}]


async def test_a_file_of_another_institution_is_not_named_on_this_trail(tenant: Tenant, other_tenant: Tenant) -> None:
    foreign = await make_patient(other_tenant)
    assert (await tenant.call("nurse", READ, id=str(foreign))).codes == ["NOT_FOUND"]
    refusal = (await tenant.audit_events(actor_id=tenant.staff_ids["nurse"], outcome="denied"))[-1]
    assert refusal.resource_id == foreign and refusal.patient_id is None
    assert await other_tenant.audit_events(patient_id=foreign, outcome="denied") == []


async def test_a_partners_refusal_does_not_name_the_file(tenant: Tenant) -> None:
    """A partner reads its own trail (partnerAccessLog): a refusal naming an existing file would tell it the file
    exists, so a partner's refusal names no patient."""
    p = await make_partnership(tenant)
    existing, missing = await p.call(READ, id=str(p.other)), await p.call(READ, id=str(uuid.uuid4()))
    assert existing.codes == ["NOT_FOUND"]
    assert _without_request_ids(existing.body) == _without_request_ids(missing.body)
    refusals = await p.events(outcome="denied")
    assert (refusals[0].resource_id, refusals[0].patient_id) == (p.other, None)


async def test_the_patient_sees_the_refused_attempt_in_who_viewed_my_record(tenant: Tenant) -> None:
    from tests.patients import open_account

    in_b = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))
    user = await open_account(tenant, in_b)
    assert (await tenant.call("nurse", "query($id: ID!) { patient(id: $id) { id } }", id=str(in_b))).codes == [
        "NOT_FOUND"]
    log = await user.call("{ myAccessLog(first: 50) { nodes { refused accessor { kind roles } } } }")
    assert not log.errors, log.errors
    refused = [n for n in log.data["myAccessLog"]["nodes"] if n["refused"]]
    assert refused == [{"refused": True, "accessor": {"kind": "STAFF", "roles": ["NURSE"]}}]


async def test_another_patients_attempt_on_my_file_is_not_shown_as_mine(tenant: Tenant) -> None:
    """Found in review: another patient's refused attempt on a file is on that file's trail (as every attempt on an
    existing file is), and "who viewed my record" showed it as kind PATIENT, which the portal shows as "you": the
    patient read that they had tried to open their own file and been turned away. It is shown as another patient's,
    never named; the patient's own reads and refusals stay theirs."""
    from tests.patients import open_account

    me, other = await open_account(tenant), await open_account(tenant)
    assert (await other.call(READ, id=str(me.patient_id))).codes == ["NOT_FOUND"]
    [probe] = await tenant.audit_events(actor_kind="patient", actor_id=other.account_id, outcome="denied")
    assert (probe.patient_id, probe.reason) == (me.patient_id, "not_found")  # on my trail, as a staff probe is
    assert (await me.call("{ myFile { id segments } }")).codes == ["FORBIDDEN"]  # my own refused read
    assert (await me.call("{ myFile { fullName } }")).errors == []  # my own read

    log = await me.call("{ myAccessLog(first: 50) { totalCount nodes { action resourceTypeName refused "
                        "accessor { kind name roles } } } }")

    assert not log.errors, log.errors
    nodes = log.data["myAccessLog"]["nodes"]
    assert [n for n in nodes if n["refused"]] == [
        {"action": "READ", "resourceTypeName": "Patient", "refused": True,
         "accessor": {"kind": "PATIENT", "name": "", "roles": []}},  # mine: the segments refused
        {"action": "READ", "resourceTypeName": "Patient", "refused": True,
         "accessor": {"kind": "ANOTHER_PATIENT", "name": "", "roles": []}}]
    assert {"action": "READ", "resourceTypeName": "Patient", "refused": False,
            "accessor": {"kind": "PATIENT", "name": "", "roles": []}} in nodes  # my own read, mine
    assert log.data["myAccessLog"]["totalCount"] == len(nodes)
    theirs = await other.call("{ myAccessLog(first: 50) { nodes { refused } } }")  # not on the prober's own log
    assert theirs.errors == [] and all(not n["refused"] for n in theirs.data["myAccessLog"]["nodes"])
