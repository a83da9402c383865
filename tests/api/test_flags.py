"""Alerts on the file (FHIR Flag) through the API: who raises and changes which, the detail read under
the class of its kind, flags in force on the institution's local date, bad input, and every refusal
leaving nothing written but its record."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from models import AuditEvent, Flag
from tests.daytime import a_whole_local_day, local_today
from tests.factories import Tenant, make_patient
from tests.partners import make_partnership

CREATE = """mutation($input: FlagCreateInput!) {
  flagCreate(input: $input) { id patientId kind status startsOn endsOn detail } }"""
UPDATE = """mutation($id: ID!, $input: FlagUpdateInput!) {
  flagUpdate(id: $id, input: $input) { id kind status startsOn endsOn detail } }"""
RAISE = """mutation($input: FlagCreateInput!) { flagCreate(input: $input) { id kind status startsOn endsOn } }"""
SET_STATUS = """mutation($id: ID!, $status: FlagStatus!) {
  flagUpdate(id: $id, input: {status: $status}) { id status } }"""
LIST = """query($pid: ID!) { patientFlags(patientId: $pid) { id kind status startsOn endsOn detail } }"""
LIST_ALL = """query($pid: ID!) { patientFlags(patientId: $pid, inForceOnly: false) { id kind status } }"""
KINDS_ONLY = "query($pid: ID!) { patientFlags(patientId: $pid) { id kind } }"

DETAILS = {
    "VIP": "Board member of the hospital foundation",
    "DIFFICULT_PAYER": "Two unpaid invoices, ask for a deposit",
    "SPECIAL_NEEDS": "Large print, accompanied by her daughter",
    "FALL_RISK": "Walks with a frame",
    "ALLERGY": "Penicillin: anaphylaxis",
    "CLINICAL_ALERT": "Anticoagulated: no extractions without INR",
}
KIND_CLASS = {"VIP": "internal", "DIFFICULT_PAYER": "internal", "SPECIAL_NEEDS": "needs", "FALL_RISK": "needs",
              "ALLERGY": "clinical", "CLINICAL_ALERT": "clinical"}
# Which classes each role may write (policy.csv, patient.<class>: update) and whether it may raise flags at all.
WRITES = {
    "front_desk": {"identity", "contact", "needs", "internal"},
    "nurse": {"identity", "contact", "clinical", "needs", "internal"},
    "doctor": {"clinical"},
    "department_head": set(),
}
# Which detail classes each role reads on a patient of department A (nurse, doctor and head are in A).
READS = {
    "front_desk": {"needs", "internal"},
    "nurse": {"clinical", "needs", "internal"},
    "doctor": {"clinical", "needs", "internal"},
    "department_head": {"clinical", "needs", "internal"},
    "support_agent": {"internal"},
}


async def raise_flag(tenant: Tenant, pid: uuid.UUID, kind: str, role: str = "nurse", **fields: Any) -> dict[str, Any]:
    reply = await tenant.call(role, RAISE, input={"patientId": str(pid), "kind": kind, **fields})
    assert reply.errors == [], reply.errors
    return dict(reply.data["flagCreate"])


async def flagged_patient(tenant: Tenant) -> tuple[uuid.UUID, dict[str, str]]:
    """A patient of department A with one flag of each kind, each with its detail (the nurse writes them all)."""
    pid = await make_patient(tenant)
    ids = {kind: (await raise_flag(tenant, pid, kind, detail=detail))["id"] for kind, detail in DETAILS.items()}
    return pid, ids


async def snapshot(tenant: Tenant) -> list[tuple[Any, ...]]:
    rows = await Flag.filter(institution_id=tenant.id).order_by("id")
    return [(r.id, r.kind, r.status, r.detail, r.starts_on, r.ends_on) for r in rows]


def names(column: str) -> set[str]:
    """An audit event's field classes or field names, as stored (comma-separated)."""
    return set(column.split(",")) if column else set()


async def last_denial(tenant: Tenant) -> AuditEvent | None:
    return await AuditEvent.filter(institution_id=tenant.id, outcome="denied").order_by("-seq").first()


# -- raising a flag --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(DETAILS))
@pytest.mark.parametrize("role", ["front_desk", "nurse", "doctor", "department_head"])
async def test_a_detail_is_written_only_with_the_right_to_write_its_class(tenant: Tenant, role: str,
                                                                          kind: str) -> None:
    pid = await make_patient(tenant)
    before, events = await snapshot(tenant), await tenant.audit_count()
    asked_on = local_today()
    reply = await tenant.call(role, CREATE, input={"patientId": str(pid), "kind": kind, "detail": DETAILS[kind]})
    if KIND_CLASS[kind] in WRITES[role]:
        assert reply.errors == [], reply.errors
        created = reply.data["flagCreate"]
        assert (created["kind"], created["status"], created["patientId"]) == (kind, "ACTIVE", str(pid))
        # from the institution's date when it was raised (the call may straddle its midnight, 16:00 UTC)
        assert created["startsOn"] in {asked_on.isoformat(), local_today().isoformat()}
        row = await Flag.get(id=created["id"])
        assert DETAILS[kind].encode() not in bytes(row.detail)  # sealed at rest
        assert row.author_id == tenant.staff_ids[role]
        write = await AuditEvent.filter(institution_id=tenant.id, resource_type="flag", action="create",
                                        outcome="allowed").order_by("-seq").first()
        assert write is not None and write.patient_id == pid and "detail" in names(write.fields_read)
        assert DETAILS[kind] not in str(write.fields_read)
    else:
        assert reply.codes == ["FORBIDDEN"] and reply.data == {"flagCreate": None}
        assert await snapshot(tenant) == before and await tenant.audit_count() == events + 1
        denial = await last_denial(tenant)
        assert denial is not None and denial.patient_id == pid and denial.reason == "forbidden"


@pytest.mark.parametrize("role", ["front_desk", "nurse", "doctor", "department_head"])
async def test_every_role_that_raises_flags_may_raise_one_without_detail(tenant: Tenant, role: str) -> None:
    pid = await make_patient(tenant)
    reply = await tenant.call(role, CREATE, input={"patientId": str(pid), "kind": "ALLERGY"})
    assert reply.data["flagCreate"]["kind"] == "ALLERGY" and reply.data["flagCreate"]["detail"] is None
    # the (empty) detail of an allergy is read under the clinical class, like any other
    assert reply.codes == ([] if role != "front_desk" else ["FORBIDDEN"])
    assert await Flag.filter(patient_id=pid, kind="allergy", detail=None).count() == 1


@pytest.mark.parametrize("role", ["support_agent", "compliance_officer", "admin"])
async def test_roles_that_do_not_raise_flags_are_refused_and_nothing_is_written(tenant: Tenant, role: str) -> None:
    pid = await make_patient(tenant)
    flag_id = (await raise_flag(tenant, pid, "FALL_RISK", detail="Walks with a frame"))["id"]
    before, events = await snapshot(tenant), await tenant.audit_count()
    reply = await tenant.call(role, CREATE, input={"patientId": str(pid), "kind": "VIP"})
    assert reply.codes == ["FORBIDDEN"]
    reply = await tenant.call(role, UPDATE, id=flag_id, input={"status": "INACTIVE"})
    assert reply.codes == ["FORBIDDEN"]
    assert await snapshot(tenant) == before and await tenant.audit_count() == events + 2
    denials = await AuditEvent.filter(institution_id=tenant.id, outcome="denied").order_by("-seq").limit(2)
    assert {(e.resource_type, e.reason, e.actor_id) for e in denials} == {
        ("flag", "forbidden", tenant.staff_ids[role])}


async def test_a_nurse_of_another_department_meets_a_missing_patient(tenant: Tenant) -> None:
    pid = await make_patient(tenant, departmentId=str(tenant.departments["B"].id))
    flag_id = (await raise_flag(tenant, pid, "ALLERGY", role="front_desk"))["id"]
    before = await snapshot(tenant)
    create = await tenant.call("nurse", CREATE, input={"patientId": str(pid), "kind": "FALL_RISK"})
    missing = await tenant.call("nurse", CREATE, input={"patientId": str(uuid.uuid4()), "kind": "FALL_RISK"})
    assert create.body == missing.body and create.codes == ["NOT_FOUND"]
    update = await tenant.call("nurse", UPDATE, id=flag_id, input={"status": "INACTIVE"})
    assert update.codes == ["NOT_FOUND"]
    listed = await tenant.call("nurse", LIST, pid=str(pid))
    assert listed.codes == ["NOT_FOUND"]
    assert await snapshot(tenant) == before


# -- reading the detail under its class ------------------------------------------------------------


@pytest.mark.parametrize("role", list(READS))
async def test_each_role_reads_the_detail_of_the_classes_it_may_read(tenant: Tenant, role: str) -> None:
    pid, ids = await flagged_patient(tenant)
    reply = await tenant.call(role, LIST, pid=str(pid))
    listed = {flag["kind"]: flag for flag in reply.data["patientFlags"]}
    assert set(listed) == set(DETAILS), "kind and period are identity: every staff role sees which alerts stand"
    refused = set()
    for kind, flag in listed.items():
        assert flag["id"] == ids[kind] and flag["status"] == "ACTIVE"
        if KIND_CLASS[kind] in READS[role]:
            assert flag["detail"] == DETAILS[kind]
        else:
            assert flag["detail"] is None
            refused.add(kind)
    assert {KIND_CLASS[k] for k in refused} == set(KIND_CLASS.values()) - READS[role]
    refused_paths = sorted((e["path"][1], e["path"][2]) for e in reply.errors)
    order = [flag["kind"] for flag in reply.data["patientFlags"]]
    assert refused_paths == sorted((order.index(kind), "detail") for kind in refused)
    assert set(reply.codes) <= {"FORBIDDEN"}


async def test_the_front_desk_never_reads_an_allergy_and_the_refusal_is_recorded(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    await raise_flag(tenant, pid, "ALLERGY", detail="Penicillin: anaphylaxis")
    await raise_flag(tenant, pid, "SPECIAL_NEEDS", detail="Large print, accompanied")
    reply = await tenant.call("front_desk", LIST, pid=str(pid))
    assert [(f["kind"], f["detail"]) for f in reply.data["patientFlags"]] == [
        ("ALLERGY", None), ("SPECIAL_NEEDS", "Large print, accompanied")]
    assert reply.codes == ["FORBIDDEN"] and reply.errors[0]["path"] == ["patientFlags", 0, "detail"]
    assert "Penicillin" not in str(reply.body)
    events = await tenant.audit_events(patient_id=pid, action="read", actor_id=tenant.staff_ids["front_desk"])
    allowed = [e for e in events if e.outcome == "allowed"]
    denied = [e for e in events if e.outcome == "denied"]
    assert allowed and {"identity", "needs"} <= names(allowed[-1].field_classes)
    assert "flag.detail" in names(allowed[-1].fields_read)
    assert denied and denied[-1].reason == "forbidden_field" and names(denied[-1].field_classes) == {"clinical"}


async def test_a_nurse_reads_the_allergy_and_the_decryption_is_audited(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    await raise_flag(tenant, pid, "ALLERGY", detail="Penicillin: anaphylaxis")
    reply = await tenant.call("nurse", LIST, pid=str(pid))
    assert reply.errors == [] and reply.data["patientFlags"][0]["detail"] == "Penicillin: anaphylaxis"
    event = await AuditEvent.filter(institution_id=tenant.id, patient_id=pid, action="read",
                                    actor_id=tenant.staff_ids["nurse"]).order_by("-seq").first()
    assert event is not None and "clinical" in names(event.field_classes) and "flag.detail" in names(event.fields_read)
    assert "Penicillin" not in str(event.fields_read)


@pytest.mark.parametrize("role", ["admin", "compliance_officer"])
async def test_roles_without_patient_data_read_no_flag(tenant: Tenant, role: str) -> None:
    pid, _ = await flagged_patient(tenant)
    events = await tenant.audit_count()
    reply = await tenant.call(role, LIST, pid=str(pid))
    assert reply.codes == ["FORBIDDEN"] and reply.data is None
    assert await tenant.audit_count() == events + 1
    denial = await last_denial(tenant)
    assert denial is not None and (denial.resource_type, denial.patient_id) == ("flag", pid)


async def test_a_partner_reads_under_its_scopes_and_never_the_internal_flags(tenant: Tenant) -> None:
    pship = await make_partnership(tenant, ["patient.identity:read", "patient.needs:read", "flag:read"])
    for kind, detail in DETAILS.items():
        await raise_flag(tenant, pship.granted, kind, detail=detail)
    reply = await pship.call(LIST, pid=str(pship.granted))
    listed = [(f["kind"], f["detail"]) for f in reply.data["patientFlags"]]
    # VIP and difficult payer are staff-only labels, like the segments: not even their kind is shown
    assert listed == [("SPECIAL_NEEDS", DETAILS["SPECIAL_NEEDS"]), ("FALL_RISK", DETAILS["FALL_RISK"]),
                      ("ALLERGY", None), ("CLINICAL_ALERT", None)]
    assert set(reply.codes) == {"FORBIDDEN"} and len(reply.errors) == 2
    ungranted = await pship.call(LIST, pid=str(pship.other))
    assert ungranted.codes == ["NOT_FOUND"]
    without_scope = await make_partnership(tenant, ["patient.identity:read", "patient.needs:read"])
    refused = await without_scope.call(LIST, pid=str(without_scope.granted))
    assert refused.codes == ["FORBIDDEN"]
    reads = await pship.events(action="read", outcome="allowed", patient_id=pship.granted)
    assert reads and any(e.policy_rule.startswith(f"partner_grant {pship.grant_id}") for e in reads)


# -- in force ----------------------------------------------------------------------------------------


async def test_only_flags_in_force_on_the_local_date_are_listed(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    today = await a_whole_local_day()  # the API's "in force" is by its date: the whole test on one
    standing = await raise_flag(tenant, pid, "FALL_RISK", startsOn=(today - timedelta(days=3)).isoformat(),
                                endsOn=today.isoformat())
    open_ended = await raise_flag(tenant, pid, "VIP")
    ended = await raise_flag(tenant, pid, "ALLERGY", startsOn=(today - timedelta(days=9)).isoformat(),
                             endsOn=(today - timedelta(days=1)).isoformat())
    future = await raise_flag(tenant, pid, "SPECIAL_NEEDS", startsOn=(today + timedelta(days=1)).isoformat())
    inactive = await raise_flag(tenant, pid, "CLINICAL_ALERT")
    assert (await tenant.call("nurse", UPDATE, id=inactive["id"], input={"status": "INACTIVE"})).errors == []
    in_force = await tenant.call("front_desk", KINDS_ONLY, pid=str(pid))
    assert [f["id"] for f in in_force.data["patientFlags"]] == [standing["id"], open_ended["id"]]
    every = await tenant.call("front_desk", LIST_ALL, pid=str(pid))
    assert [f["id"] for f in every.data["patientFlags"]] == [standing["id"], open_ended["id"], ended["id"],
                                                             future["id"], inactive["id"]]
    assert every.data["patientFlags"][-1]["status"] == "INACTIVE"
    assert local_today() == today, "the test crossed the institution's midnight: a_whole_local_day's margin is short"


# -- changing a flag -----------------------------------------------------------------------------------


async def test_a_flag_is_changed_deactivated_and_entered_in_error_for_good(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    flag = await raise_flag(tenant, pid, "SPECIAL_NEEDS", role="front_desk", detail="Large print")
    reply = await tenant.call("front_desk", UPDATE, id=flag["id"],
                              input={"detail": "Large print, accompanied", "endsOn": "2099-12-31"})
    assert reply.errors == [] and (reply.data["flagUpdate"]["detail"], reply.data["flagUpdate"]["endsOn"]) == (
        "Large print, accompanied", "2099-12-31")
    write = await AuditEvent.filter(institution_id=tenant.id, resource_type="flag", action="update").order_by(
        "-seq").first()
    assert write is not None and names(write.fields_read) == {"detail", "ends_on"} and write.patient_id == pid
    off = await tenant.call("department_head", UPDATE, id=flag["id"], input={"status": "INACTIVE"})
    assert off.errors == [] and off.data["flagUpdate"]["status"] == "INACTIVE"
    assert (await tenant.call("front_desk", KINDS_ONLY, pid=str(pid))).data["patientFlags"] == []
    on = await tenant.call("nurse", UPDATE, id=flag["id"], input={"status": "ACTIVE"})
    assert on.data["flagUpdate"]["status"] == "ACTIVE"
    wrong = await tenant.call("nurse", UPDATE, id=flag["id"], input={"status": "ENTERED_IN_ERROR"})
    assert wrong.data["flagUpdate"]["status"] == "ENTERED_IN_ERROR"
    before = await snapshot(tenant)
    for change in ({"status": "ACTIVE"}, {"detail": "Again"}):
        refused = await tenant.call("nurse", UPDATE, id=flag["id"], input=change)
        assert refused.codes == ["BAD_USER_INPUT"], refused.errors
    assert await snapshot(tenant) == before


@pytest.mark.parametrize(("role", "kind"), [("front_desk", "ALLERGY"), ("doctor", "SPECIAL_NEEDS"),
                                            ("department_head", "VIP")])
async def test_changing_a_detail_needs_the_right_to_write_its_class(tenant: Tenant, role: str, kind: str) -> None:
    pid = await make_patient(tenant)
    flag = await raise_flag(tenant, pid, kind, detail=DETAILS[kind])
    before, events = await snapshot(tenant), await tenant.audit_count()
    reply = await tenant.call(role, UPDATE, id=flag["id"], input={"detail": "Overwritten"})
    assert reply.codes == ["FORBIDDEN"]
    assert await snapshot(tenant) == before and await tenant.audit_count() == events + 1
    # the status is not the detail: whoever may update flags may deactivate one
    off = await tenant.call(role, SET_STATUS, id=flag["id"], status="INACTIVE")
    assert off.errors == [] and off.data["flagUpdate"]["status"] == "INACTIVE"


# -- bad input ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "field"), [
    ({"endsOn": "2026-01-01", "startsOn": "2026-02-01"}, "input.endsOn"),
    ({"detail": "Large\u202eprint"}, "input.detail"),
    ({"detail": "Large\u2066print"}, "input.detail"),
    ({"detail": "x" * 501}, "input.detail"),
    ({"detail": "   "}, "input.detail"),
    ({"detail": "a\x00b"}, "input.detail"),
    ({"patientId": "not-an-id"}, "input.patientId"),
])
async def test_bad_flags_are_refused_with_the_field_named(tenant: Tenant, fields: dict[str, Any], field: str) -> None:
    pid = await make_patient(tenant)
    before = await snapshot(tenant)
    reply = await tenant.call("nurse", CREATE, input={"patientId": str(pid), "kind": "SPECIAL_NEEDS", **fields})
    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    assert reply.errors[0]["extensions"]["field"] == field
    assert "\u202e" not in str(reply.body) and "xxxxxxxx" not in str(reply.body)
    assert await snapshot(tenant) == before


async def test_an_unknown_kind_or_status_is_refused_before_anything_runs(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    flag = await raise_flag(tenant, pid, "FALL_RISK")
    before, events = await snapshot(tenant), await tenant.audit_count()
    reply = await tenant.call("nurse", CREATE, input={"patientId": str(pid), "kind": "ZOMBIE"})
    assert reply.codes == ["BAD_USER_INPUT"] and reply.data is None
    reply = await tenant.call("nurse", UPDATE, id=flag["id"], input={"status": "DELETED"})
    assert reply.codes == ["BAD_USER_INPUT"]
    assert await snapshot(tenant) == before and await tenant.audit_count() == events


@pytest.mark.parametrize(("change", "field"), [
    ({"endsOn": "2000-01-01"}, "input.endsOn"),  # before the flag's start (today)
    ({"status": None}, "input.status"),
    ({}, "input"),
    ({"detail": "\u200fhidden"}, "input.detail"),
])
async def test_bad_changes_are_refused_with_the_field_named(tenant: Tenant, change: dict[str, Any],
                                                            field: str) -> None:
    pid = await make_patient(tenant)
    flag = await raise_flag(tenant, pid, "FALL_RISK", detail="Walks with a frame")
    before = await snapshot(tenant)
    reply = await tenant.call("nurse", UPDATE, id=flag["id"], input=change)
    assert reply.codes == ["BAD_USER_INPUT"], reply.errors
    assert reply.errors[0]["extensions"]["field"] == field
    assert await snapshot(tenant) == before


async def test_no_flag_for_a_file_that_is_not_active(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    assert (await tenant.call("front_desk", "mutation($id: ID!) { patientArchive(id: $id) { id } }",
                              id=str(pid))).errors == []
    before = await snapshot(tenant)
    reply = await tenant.call("front_desk", CREATE, input={"patientId": str(pid), "kind": "VIP"})
    assert reply.codes == ["BAD_USER_INPUT"] and reply.errors[0]["extensions"]["field"] == "input.patientId"
    assert await snapshot(tenant) == before


# -- tenant isolation -----------------------------------------------------------------------------------------


async def test_another_institutions_flag_looks_missing(tenant: Tenant, other_tenant: Tenant) -> None:
    pid, ids = await flagged_patient(tenant)
    before = await snapshot(tenant)
    for role in ("front_desk", "nurse"):
        listed = await other_tenant.call(role, LIST, pid=str(pid))
        missing_patient = await other_tenant.call(role, LIST, pid=str(uuid.uuid4()))
        assert listed.body == missing_patient.body and listed.codes == ["NOT_FOUND"]
        changed = await other_tenant.call(role, UPDATE, id=ids["ALLERGY"], input={"status": "INACTIVE"})
        missing_flag = await other_tenant.call(role, UPDATE, id=str(uuid.uuid4()), input={"status": "INACTIVE"})
        assert changed.body == missing_flag.body and changed.codes == ["NOT_FOUND"]
        raised = await other_tenant.call(role, CREATE, input={"patientId": str(pid), "kind": "VIP"})
        assert raised.codes == ["NOT_FOUND"]
    assert await snapshot(tenant) == before
    assert await Flag.filter(institution_id=other_tenant.id).count() == 0
    denials = await other_tenant.audit_events(outcome="denied", reason="not_found")
    assert len(denials) == 10 and not await AuditEvent.filter(institution_id=tenant.id, outcome="denied").exists()


async def test_a_flag_entered_in_error_is_not_changed_beside_its_own_status(tenant: Tenant) -> None:
    """ENTERED_IN_ERROR is final: a change that names that status again with a detail or a period is refused like the
    change alone (found in review: passing the status along let the detail and period of a retracted flag be
    rewritten)."""
    pid = await make_patient(tenant)
    flag = await raise_flag(tenant, pid, "SPECIAL_NEEDS", role="front_desk", detail="Large print")
    wrong = await tenant.call("nurse", SET_STATUS, id=flag["id"], status="ENTERED_IN_ERROR")
    assert wrong.errors == [], wrong.errors
    before = await snapshot(tenant)
    for change in ({"detail": "Rewritten"}, {"endsOn": "2099-12-31"}):
        refused = await tenant.call("nurse", UPDATE, id=flag["id"], input={"status": "ENTERED_IN_ERROR", **change})
        assert refused.codes == ["BAD_USER_INPUT"], refused.errors
    assert await snapshot(tenant) == before
