"""Compliance reports on a known data set: a patient's access report and the access anomalies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from models import RoleAssignment
from resolvers import institution as institutions
from resolvers.context import Services
from tests.factories import PASSWORD, Tenant, login, make_patient

REPORT = """query($id: ID!, $from: DateTime) { patientAccessReport(patientId: $id, from: $from) {
  actorKind actorId name roles reads writes denied fieldClasses fields policyRules tokenIds } }"""
ANOMALIES = """query($from: DateTime!, $to: DateTime!, $factor: Float! = 3.0, $minimum: Int! = 20) {
  accessAnomalies(from: $from, to: $to, factor: $factor, minimum: $minimum) {
    staffId name role patientsRead roleMedian peers ratio } }"""
READ = "query($id: ID!) { patient(id: $id) { id fullName allergies } }"
PERIOD_REPORTS = ["""query($id: ID!, $from: DateTime, $to: DateTime) {
  patientAccessReport(patientId: $id, from: $from, to: $to) { name } }""",
                  """query($id: ID!, $from: DateTime, $to: DateTime) {
  patientAccessReportConnection(patientId: $id, from: $from, to: $to) { nodes { who { name } } } }"""]


async def test_who_accessed_a_patients_file(tenant: Tenant) -> None:
    pid = await make_patient(tenant, "nurse", allergies="Penicillin")  # the nurse writes it
    start = datetime.now(UTC).isoformat()
    await tenant.call("nurse", READ, id=str(pid))
    await tenant.call("front_desk", READ, id=str(pid))  # identity yes, allergies (clinical) refused
    reply = await tenant.call("compliance_officer", REPORT, id=str(pid))
    assert reply.errors == [], reply.errors
    people = {p["name"]: p for p in reply.data["patientAccessReport"]}
    nurse, desk = people[f"nurse {tenant.institution.name.split()[-1]}"], people[
        f"front_desk {tenant.institution.name.split()[-1]}"]
    assert nurse["roles"] == ["NURSE"] and nurse["writes"] == 1 and nurse["reads"] == 1
    assert nurse["fieldClasses"] == ["CLINICAL", "IDENTITY"]
    assert nurse["fields"] == ["allergies", "department_id", "full_name"]  # decrypted, or written
    assert nurse["policyRules"] and nurse["tokenIds"]
    assert desk["reads"] == 1 and desk["denied"] == 1 and desk["fieldClasses"] == ["CLINICAL", "IDENTITY"]
    assert "Penicillin" not in str(reply.body)
    since = await tenant.call("compliance_officer", REPORT, id=str(pid), **{"from": start})
    later = {p["name"]: p for p in since.data["patientAccessReport"]}
    officer = later.pop(f"compliance_officer {tenant.institution.name.split()[-1]}")
    assert officer["reads"] == 1 and officer["fieldClasses"] == ["AUDIT"]  # viewing the report is on record too
    assert set(later) == set(people) and [p["writes"] for p in later.values()] == [0, 0]


async def test_a_report_for_a_period_the_wrong_way_round_is_bad_input(tenant: Tenant) -> None:
    """Not an empty report, which would say nobody dealt with the file; the right way round lists the reader."""
    pid = await make_patient(tenant, "nurse")
    start, end = datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(hours=1)
    nurse = f"nurse {tenant.institution.name.split()[-1]}"
    for query in PERIOD_REPORTS:
        for since, until in ((end, start), (start, start)):
            reply = await tenant.call("compliance_officer", query, id=str(pid), **{
                "from": since.isoformat(), "to": until.isoformat()})
            assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == "to", reply.body
        reply = await tenant.call("compliance_officer", query, id=str(pid), **{
            "from": start.isoformat(), "to": end.isoformat()})
        assert reply.errors == [], reply.errors
        assert nurse in str(reply.data)


async def test_the_report_is_for_compliance_officers_and_this_institution(tenant: Tenant,
                                                                         other_tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    for role in ("front_desk", "nurse", "doctor", "department_head", "support_agent", "admin"):
        assert (await tenant.call(role, REPORT, id=str(pid))).codes == ["FORBIDDEN"]
    foreign = await tenant.call("compliance_officer", REPORT, id=str(await make_patient(other_tenant)))
    missing = await tenant.call("compliance_officer", REPORT, id=str(uuid.uuid4()))
    assert foreign.codes == ["NOT_FOUND"] and foreign.errors == missing.errors
    denied = [(e.actor_id, e.reason) for e in await tenant.audit_events(outcome="denied")]
    assert (tenant.staff_ids["admin"], "forbidden") in denied
    assert (tenant.staff_ids["compliance_officer"], "not_found") in denied


async def test_a_nurse_who_reads_far_more_files_than_her_peers_stands_out(tenant: Tenant,
                                                                         services: Services) -> None:
    patients = [await make_patient(tenant, "front_desk") for _ in range(24)]
    nurses = {"usual": tenant.tokens["nurse"]}
    for n in range(3):
        staff = await institutions.create_account(
            services, tenant.institution, email=f"peer{n}.{uuid.uuid4().hex[:6]}@careloop.test", name=f"Peer {n}",
            password=PASSWORD, roles=["nurse"], departments=[tenant.departments["A"]])
        nurses[f"peer{n}"] = await login(tenant.client, staff.email)
    curious = await institutions.create_account(
        services, tenant.institution, email=f"curious.{uuid.uuid4().hex[:6]}@careloop.test", name="Curious Nurse",
        password=PASSWORD, roles=["nurse"], departments=[tenant.departments["A"]])
    nurses["curious"] = await login(tenant.client, curious.email)
    for name, token in nurses.items():
        reading = patients if name == "curious" else patients[:2]
        for pid in reading:
            reply = await tenant.client.post("/graphql", json={"query": READ, "variables": {"id": str(pid)}},
                                             headers={"authorization": f"Bearer {token}"})
            assert "errors" not in reply.json() or reply.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    window = {"from": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
              "to": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()}
    reply = await tenant.call("compliance_officer", ANOMALIES, **window)
    assert reply.errors == [], reply.errors
    assert reply.data["accessAnomalies"] == [{"staffId": str(curious.id), "name": "Curious Nurse", "role": "NURSE",
                                              "patientsRead": 24, "roleMedian": 2.0, "peers": 5, "ratio": 12.0}]
    strict = await tenant.call("compliance_officer", ANOMALIES, **window, minimum=30)
    assert strict.data["accessAnomalies"] == []
    bad = await tenant.call("compliance_officer", ANOMALIES, **window, factor=0.5)
    assert bad.codes == ["BAD_USER_INPUT"] and bad.errors[0]["extensions"]["field"] == "factor"
    assert (await tenant.call("admin", ANOMALIES, **window)).codes == ["FORBIDDEN"]


async def test_anomalies_for_a_period_without_a_time_zone_is_bad_input(tenant: Tenant) -> None:
    query = "query($f: DateTime!, $t: DateTime!) { accessAnomalies(from: $f, to: $t) { staffId } }"
    reply = await tenant.call("compliance_officer", query, f="2026-01-01T00:00:00", t="2026-02-01T00:00:00+00:00")
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == "from"


async def test_a_nurse_deactivated_after_reading_far_more_files_still_stands_out(tenant: Tenant,
                                                                                 services: Services) -> None:
    """Found in review: the anomaly's subject had to be active now, so an account that read far more files than its
    peers and was deactivated afterwards (someone leaving, or stopped for it) dropped out of accessAnomalies and of
    the next day's alert; it is the one a compliance officer most needs to see."""
    patients = [await make_patient(tenant, "front_desk") for _ in range(21)]
    for n in range(2):  # colleagues who read nothing in the period
        await institutions.create_account(
            services, tenant.institution, email=f"quiet{n}.{uuid.uuid4().hex[:6]}@careloop.test", name=f"Quiet {n}",
            password=PASSWORD, roles=["nurse"], departments=[tenant.departments["A"]])
    curious = await institutions.create_account(
        services, tenant.institution, email=f"leaving.{uuid.uuid4().hex[:6]}@careloop.test", name="Leaving Nurse",
        password=PASSWORD, roles=["nurse"], departments=[tenant.departments["A"]])
    token = await login(tenant.client, curious.email)
    for pid in patients:
        reply = await tenant.client.post("/graphql", json={"query": READ, "variables": {"id": str(pid)}},
                                         headers={"authorization": f"Bearer {token}"})
        assert "errors" not in reply.json(), reply.json()
    window = {"from": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
              "to": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()}
    before = await tenant.call("compliance_officer", ANOMALIES, **window)
    assert [a["staffId"] for a in before.data["accessAnomalies"]] == [str(curious.id)], before.data
    off = await tenant.call("admin", "mutation($id: ID!) { staffUpdate(id: $id, input: {active: false}) { active } }",
                            id=str(curious.id))
    assert off.errors == [] and off.data["staffUpdate"]["active"] is False, off.errors
    after = await tenant.call("compliance_officer", ANOMALIES, **window)
    assert after.errors == [], after.errors
    assert after.data["accessAnomalies"] == before.data["accessAnomalies"]


REVOKE = "mutation($id: ID!, $r: Role!) { roleRevoke(staffId: $id, role: $r) { roles } }"


async def test_a_nurse_whose_role_was_revoked_after_reading_far_more_files_still_stands_out(
        tenant: Tenant, services: Services) -> None:
    """Found re-reading the last session's notes: a holder was a holder of the role now, so a nurse who read far
    more files than her peers and lost the role afterwards (taken off the ward, or stopped for it) dropped out of
    accessAnomalies and of the next day's alert, as a deactivated account did before. The roles revoked since the
    period began (each revocation is on the trail) count as held in it."""
    patients = [await make_patient(tenant, "front_desk") for _ in range(21)]
    for n in range(2):  # colleagues who read nothing in the period
        await institutions.create_account(
            services, tenant.institution, email=f"quiet{n}.{uuid.uuid4().hex[:6]}@careloop.test", name=f"Quiet {n}",
            password=PASSWORD, roles=["nurse"], departments=[tenant.departments["A"]])
    curious = await institutions.create_account(
        services, tenant.institution, email=f"moved.{uuid.uuid4().hex[:6]}@careloop.test", name="Moved Nurse",
        password=PASSWORD, roles=["nurse", "support_agent"], departments=[tenant.departments["A"]])
    token = await login(tenant.client, curious.email)
    for pid in patients:
        reply = await tenant.client.post("/graphql", json={"query": READ, "variables": {"id": str(pid)}},
                                         headers={"authorization": f"Bearer {token}"})
        assert "errors" not in reply.json(), reply.json()
    window = {"from": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
              "to": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()}
    before = await tenant.call("compliance_officer", ANOMALIES, **window)
    nurse = [a for a in before.data["accessAnomalies"] if a["role"] == "NURSE"]
    assert [a["staffId"] for a in nurse] == [str(curious.id)], before.data

    denied = await tenant.call("nurse", REVOKE, id=str(curious.id), r="NURSE")  # its denied twin: not an admin's
    assert denied.codes == ["FORBIDDEN"]
    assert await RoleAssignment.filter(staff_id=curious.id, role="nurse").exists()
    assert [(e.action, e.resource_type) for e in await tenant.audit_events(outcome="denied")][-1] == ("delete", "role")
    revoked = await tenant.call("admin", REVOKE, id=str(curious.id), r="NURSE")
    assert revoked.errors == [] and revoked.data["roleRevoke"]["roles"] == ["SUPPORT_AGENT"], revoked.errors
    after = await tenant.call("compliance_officer", ANOMALIES, **window)
    assert after.errors == [], after.errors
    assert [a for a in after.data["accessAnomalies"] if a["role"] == "NURSE"] == nurse

    later = {"from": (datetime.now(UTC) + timedelta(seconds=1)).isoformat(),
             "to": (datetime.now(UTC) + timedelta(minutes=2)).isoformat()}
    assert (await tenant.call("compliance_officer", ANOMALIES, **later)).data["accessAnomalies"] == []


TRAIL_LOOKS = [  # a compliance officer's looks at one file's trail: each is on that file's record
    "query($id: ID!) { auditEvents(first: 1, filter: {patient: $id}) { nodes { seq } } }",
    """query($id: ID!) { disclosures(from: "2026-01-01T00:00:00Z", to: "2030-01-01T00:00:00Z", patientId: $id,
      first: 1) { nodes { partnerName } } }""",
    "query($id: ID!) { patientAccessReport(patientId: $id) { name } }"]


async def test_an_officer_looking_at_many_files_trails_does_not_stand_out(tenant: Tenant,
                                                                         services: Services) -> None:
    """Found in the last session's notes: a look at a file's trail is on that file's record (the patient's
    ``myAccessLog`` shows it), and the anomaly counted it as a file read, so a compliance officer investigating 21
    files in a day stood out against colleagues and alerted them. An anomaly counts the files whose data was read:
    the officer's looks no longer count; a nurse reading as many files in the same period still stands out."""
    patients = [await make_patient(tenant, "front_desk") for _ in range(21)]
    for n in range(2):  # colleagues of each role who read nothing in the period
        for role in ("compliance_officer", "nurse"):
            await institutions.create_account(
                services, tenant.institution, email=f"{role}{n}.{uuid.uuid4().hex[:6]}@careloop.test",
                name=f"Quiet {role} {n}", password=PASSWORD, roles=[role], departments=[tenant.departments["A"]])
    window = {"from": (datetime.now(UTC) - timedelta(minutes=1)).isoformat()}
    for pid in patients:
        for query in TRAIL_LOOKS:
            look = await tenant.call("compliance_officer", query, id=str(pid))
            assert look.errors == [], look.errors
        read = await tenant.call("nurse", READ, id=str(pid))
        assert read.errors == [], read.errors
    window["to"] = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    reply = await tenant.call("compliance_officer", ANOMALIES, **window)
    assert reply.errors == [], reply.errors
    assert [(a["staffId"], a["patientsRead"]) for a in reply.data["accessAnomalies"]] == [
        (str(tenant.staff_ids["nurse"]), 21)], reply.data
    looked = await tenant.audit_events(actor_id=tenant.staff_ids["compliance_officer"], action="read",
                                       patient_id=patients[0])
    assert {e.resource_type for e in looked} == {"audit_event", "disclosure", "audit_report"}  # still on record
