"""One person's trail across a merge of their files (issue 16): the reads of a file merged into another are the
survivor's person's too, in the compliance officer's access report (paged, unpaged and its CSV), in the accounting
of disclosures of the survivor and in the patient's own "who viewed my record"; an unrelated file's reads are in
none of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx

from models import Staff
from tests.factories import Tenant, gql, make_patient
from tests.partners import consent_and_grant, make_client, make_partner, token_for
from tests.patients import open_account

MERGE = "mutation($s: ID!, $d: ID!) { patientMerge(survivorId: $s, duplicateId: $d) { survivor { id } } }"
READ = "query($id: ID!) { patient(id: $id) { fullName } }"
REPORT = """query($id: ID!) {
  patientAccessReportConnection(patientId: $id, first: 50) { totalCount nodes { who { name partner } } }
  patientAccessReport(patientId: $id) { name } }"""
DISCLOSURES = """query($from: DateTime!, $to: DateTime!, $p: ID!) {
  disclosures(from: $from, to: $to, patientId: $p) { totalCount nodes { patientId partnerName purpose } } }"""
LOG = "{ myAccessLog(first: 100) { totalCount nodes { action accessor { kind name } } } }"


async def test_a_persons_trail_holds_the_reads_of_the_file_merged_into_theirs(client: httpx.AsyncClient,
                                                                              tenant: Tenant) -> None:
    survivor = await make_patient(tenant, "nurse", fullName="Zhang Wei")
    duplicate = await make_patient(tenant, "nurse", fullName="Zhang Wei")
    unrelated = await make_patient(tenant, "nurse", fullName="Li Lei")
    partner = await make_partner(tenant, "Alpha Home Care")
    partner_token = await token_for(client, await make_client(tenant, partner))
    for patient, purpose in ((duplicate, "Wound care"), (unrelated, "Physiotherapy")):
        await consent_and_grant(tenant, partner, patient, purpose)
        assert (await gql(client, READ, {"id": str(patient)}, partner_token)).errors == []
    assert (await tenant.call("doctor", READ, id=str(duplicate))).errors == []
    assert (await tenant.call("support_agent", READ, id=str(unrelated))).errors == []
    me = await open_account(tenant, survivor)
    assert (await tenant.call("front_desk", MERGE, s=str(survivor), d=str(duplicate))).errors == []

    doctor, agent = [(await Staff.get(id=tenant.staff_ids[role])).name for role in ("doctor", "support_agent")]
    report = await tenant.call("compliance_officer", REPORT, id=str(survivor))
    assert report.errors == [], report.errors
    people = report.data["patientAccessReportConnection"]["nodes"]
    names = {person["who"]["partner"] or person["who"]["name"] for person in people}
    assert {doctor, "Alpha Home Care"} <= names and agent not in names
    assert report.data["patientAccessReportConnection"]["totalCount"] == len(people)
    assert len(report.data["patientAccessReport"]) == len(people)
    csv = await client.get(f"/compliance/exports/patient-access/{survivor}.csv",
                           headers={"authorization": f"Bearer {tenant.tokens['compliance_officer']}"})
    assert csv.status_code == 200 and doctor in csv.text and agent not in csv.text

    period = {"from": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
              "to": (datetime.now(UTC) + timedelta(days=1)).isoformat()}
    disclosed = await tenant.call("compliance_officer", DISCLOSURES, p=str(survivor), **period)
    assert disclosed.errors == [], disclosed.errors
    assert disclosed.data["disclosures"] == {"totalCount": 1, "nodes": [
        {"patientId": str(duplicate), "partnerName": "Alpha Home Care", "purpose": "Wound care"}]}

    log = await me.call(LOG)
    assert log.errors == [], log.errors
    seen = {(node["action"], node["accessor"]["name"]) for node in log.data["myAccessLog"]["nodes"]}
    assert {("READ", doctor), ("READ", "Alpha Home Care")} <= seen
    assert ("READ", agent) not in seen
    assert log.data["myAccessLog"]["totalCount"] == len(log.data["myAccessLog"]["nodes"])
