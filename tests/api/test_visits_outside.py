"""Visits for those outside the institution: a home-care partner records the services it delivered for
granted patients (scope visit:create) and reads only those; a patient reads their own visits in the portal,
with the after-visit instructions and never the internal note."""

from __future__ import annotations

from models import Visit
from tests.factories import Tenant, gql, make_patient
from tests.partners import ALL_SCOPES, make_partnership
from tests.patients import open_account

CREATE = "mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id kind status recordedByPartner } }"
READ = "query($id: ID!) { visit(id: $id) { id kind status treatmentPlan internalNote } }"
HISTORY = "query($pid: ID!) { visits(patientId: $pid) { nodes { id recordedByPartner } } }"
HOME_CARE = {"kind": "HOME_CARE", "status": "FINISHED", "startedAt": "2026-11-20T09:00:00+08:00",
             "endedAt": "2026-11-20T10:00:00+08:00"}
SCOPES = [*ALL_SCOPES, "visit:create", "visit:read"]


async def test_a_partner_records_home_care_for_a_granted_patient_and_reads_only_its_own(tenant: Tenant) -> None:
    partnership = await make_partnership(tenant, SCOPES)
    staff_visit = await tenant.call("nurse", CREATE, input={"patientId": str(partnership.granted),
                                                            "kind": "OUTPATIENT"})
    reply = await partnership.call(CREATE, input={"patientId": str(partnership.granted), **HOME_CARE})
    assert reply.errors == [], reply.errors
    assert reply.data["visitCreate"] == {**reply.data["visitCreate"], "kind": "HOME_CARE", "status": "FINISHED",
                                         "recordedByPartner": True}
    history = await partnership.call(HISTORY, pid=str(partnership.granted))
    assert [n["id"] for n in history.data["visits"]["nodes"]] == [reply.data["visitCreate"]["id"]]
    hidden = await partnership.call(READ, id=staff_visit.data["visitCreate"]["id"])
    assert hidden.codes == ["NOT_FOUND"]  # the institution's own visit looks missing


async def test_a_partner_records_nothing_else(tenant: Tenant) -> None:
    partnership = await make_partnership(tenant, SCOPES)
    before = await Visit.filter(institution_id=tenant.id).count()
    outpatient = await partnership.call(CREATE, input={"patientId": str(partnership.granted),
                                                       "kind": "OUTPATIENT", "status": "FINISHED",
                                                       "startedAt": HOME_CARE["startedAt"],
                                                       "endedAt": HOME_CARE["endedAt"]})
    assert outpatient.codes == ["BAD_USER_INPUT"]
    ungranted = await partnership.call(CREATE, input={"patientId": str(partnership.other), **HOME_CARE})
    assert ungranted.codes == ["NOT_FOUND"]
    assert await Visit.filter(institution_id=tenant.id).count() == before


async def test_a_partners_visit_credits_none_of_the_institutions_staff(tenant: Tenant) -> None:
    """Found in review: a partner's home-care visit could name any active clinician or staff member of the institution
    as the one who delivered it, crediting them with work they did not do (the follow-up calls and satisfaction
    surveys after it go by the visit's clinician). Refused at the field, nothing written; the same visit without
    them is recorded."""
    partnership = await make_partnership(tenant, SCOPES)
    before = await Visit.filter(institution_id=tenant.id).count()
    doctor = str(tenant.staff_ids["doctor"])
    for named in ({"clinicianId": doctor}, {"staffIds": [doctor]}):
        reply = await partnership.call(CREATE, input={"patientId": str(partnership.granted), **HOME_CARE, **named})
        assert reply.codes == ["BAD_USER_INPUT"]
        assert reply.errors[0]["extensions"]["field"] == f"input.{next(iter(named))}"
        assert reply.errors[0]["extensions"]["reason"] == "partner_visit"
    assert await Visit.filter(institution_id=tenant.id).count() == before
    assert (await partnership.call(CREATE, input={"patientId": str(partnership.granted), **HOME_CARE})).errors == []


async def test_without_the_scope_a_partner_records_no_visit(tenant: Tenant) -> None:
    partnership = await make_partnership(tenant, ALL_SCOPES)
    before, events = await Visit.filter(institution_id=tenant.id).count(), await tenant.audit_count()
    reply = await partnership.call(CREATE, input={"patientId": str(partnership.granted), **HOME_CARE})
    assert reply.codes == ["FORBIDDEN"]
    assert await Visit.filter(institution_id=tenant.id).count() == before
    assert await tenant.audit_count() > events  # the refusal is on the trail


async def test_a_patient_reads_their_visits_with_instructions_never_the_internal_note(tenant: Tenant) -> None:
    me = await open_account(tenant)
    someone = await make_patient(tenant)
    mine = await tenant.call("nurse", CREATE, input={"patientId": str(me.patient_id), "kind": "DENTAL",
                                                     "treatmentPlan": "Soft food for a week",
                                                     "internalNote": "Anxious, talk slowly"})
    theirs = await tenant.call("nurse", CREATE, input={"patientId": str(someone), "kind": "DENTAL"})
    reply = await gql(tenant.client, READ, {"id": mine.data["visitCreate"]["id"]}, me.token)
    assert reply.data["visit"]["treatmentPlan"] == "Soft food for a week"
    assert reply.data["visit"]["internalNote"] is None and reply.codes == ["FORBIDDEN"]
    assert (await gql(tenant.client, READ, {"id": theirs.data["visitCreate"]["id"]}, me.token)).codes == [
        "NOT_FOUND"]
    refused = await gql(tenant.client, CREATE, {"input": {"patientId": str(me.patient_id), "kind": "DENTAL"}},
                        me.token)
    assert refused.codes == ["FORBIDDEN"]


COHORT = 'query { patientsWithCode(codeSystem: ICD10, code: "K08.1") { nodes { id } } }'
ADD_CODE = """mutation($id: ID!) { visitCodeAdd(visitId: $id, input: {kind: CONDITION, code: "K08.1"}) { id } }"""


async def test_a_partner_finds_codes_only_on_the_visits_it_recorded(tenant: Tenant) -> None:
    """A cohort by code reveals what visits recorded: a partner without the visit scope is refused, and with
    it finds only codes of its own visits, never the institution's."""
    reader = await make_partnership(tenant, [*ALL_SCOPES, "visit:read"])
    staff_visit = await tenant.call("nurse", CREATE, input={"patientId": str(reader.granted), "kind": "OUTPATIENT"})
    assert (await tenant.call("nurse", ADD_CODE, id=staff_visit.data["visitCreate"]["id"])).errors == []
    assert (await reader.call(COHORT)).data["patientsWithCode"]["nodes"] == []
    blind = await make_partnership(tenant, ALL_SCOPES)
    assert (await blind.call(COHORT)).codes == ["FORBIDDEN"]
    nurse = await tenant.call("nurse", COHORT)
    assert str(reader.granted) in [n["id"] for n in nurse.data["patientsWithCode"]["nodes"]]
