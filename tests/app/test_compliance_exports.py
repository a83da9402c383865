"""Issue 18: exports for compliance officers over HTTP (app/compliance.py): a patient's access report as a PDF
and a CSV people read, and the institution's trail as the NDJSON evidence with its signed end; streamed,
period-bounded, at most a few at once, every export and every refusal on the trail."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from pypdf import PdfReader
from starlette.applications import Starlette

from app import compliance
from audit import checkpoint, offline, writer
from audit.events import Action, Actor, AuditRecord, Outcome
from models import AuditChainHead, AuditEvent, AuditPatientIndex
from resolvers.context import Services
from tests.factories import Tenant, make_patient
from tests.partners import ALL_SCOPES, make_partnership
from tests.patients import open_account

READ = "query($id: ID!) { patient(id: $id) { id fullName phone allergies } }"
MACHINE_WORDS = ("full_name", "department_id", "allergies,", "policy_rule", ", *, ", "patient.contact", "_at", "_id")
SECRETS = ("Penicillin", "13800002222")


def report_url(patient_id: object, fmt: str) -> str:
    return f"/compliance/exports/patient-access/{patient_id}.{fmt}"


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


async def seen_file(tenant: Tenant) -> uuid.UUID:
    """A file the nurse wrote and the front desk read (its allergies refused)."""
    pid = await make_patient(tenant, "nurse", allergies="Penicillin", phone="13800002222")
    await tenant.call("front_desk", READ, id=str(pid))
    return pid


async def local_times(tenant: Tenant, patient_id: uuid.UUID) -> list[str]:
    zone = ZoneInfo(tenant.institution.time_zone)
    return [f"{e.occurred_at.astimezone(zone):%Y-%m-%d %H:%M:%S}" for e in await tenant.audit_events(
        patient_id=patient_id)]


def flat(text: str) -> str:
    return " ".join(text.split())


def assert_readable(text: str, tenant: Tenant) -> None:
    n = tenant.institution.name.split()[-1]
    assert f"nurse {n}" in text and f"front_desk {n}" in text  # the staff names (the tenant's own spelling)
    assert "front desk" in text and "nurse" in text
    assert "allowed by the front desk's rule to read contact details" in text
    assert "health information" in text and "refused" in text
    for word in (*MACHINE_WORDS, *SECRETS):
        assert word not in text.replace(f"front_desk {n}", ""), word


async def test_a_compliance_officer_takes_a_patients_access_report_as_a_pdf(tenant: Tenant) -> None:
    pid = await seen_file(tenant)
    before = await local_times(tenant, pid)
    reply = await tenant.client.get(report_url(pid, "pdf"), headers=bearer(tenant.tokens["compliance_officer"]))
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/pdf"
    assert reply.headers["content-disposition"] == f"attachment; filename*=UTF-8''access-report-{pid}.pdf"
    text = flat("\n".join(page.extract_text() for page in PdfReader(io.BytesIO(reply.content)).pages))
    assert_readable(text, tenant)
    assert str(pid) in text and tenant.institution.name in text and "Asia/Shanghai" in text
    assert all(moment in text for moment in before)  # the report's own export comes after it
    exported = await tenant.audit_events(action="export", patient_id=pid)
    assert [(e.actor_id, e.resource_type, e.outcome) for e in exported] == [
        (tenant.staff_ids["compliance_officer"], "audit_report", "allowed")]
    assert "format:pdf" in exported[0].fields_read


async def test_the_csv_reads_the_same_and_in_chinese(tenant: Tenant) -> None:
    pid = await seen_file(tenant)
    before = await local_times(tenant, pid)  # the export itself is on the patient's report afterwards
    reply = await tenant.client.get(report_url(pid, "csv"), headers=bearer(tenant.tokens["compliance_officer"]))
    assert reply.status_code == 200 and reply.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(reply.content.decode("utf-8-sig"))))
    assert rows[0] == ["Time", "Who", "Role", "Partner", "Action", "Outcome", "What", "Fields", "Allowed by"]
    assert [row[0] for row in rows[1:]] == before
    assert_readable(flat(reply.content.decode("utf-8-sig")), tenant)
    desk = [row for row in rows[1:] if row[2] == "front desk"]
    assert {row[5] for row in desk} == {"allowed", "refused"}
    chinese = await tenant.client.get(report_url(pid, "csv"), params={"language": "zh-CN"},
                                      headers=bearer(tenant.tokens["compliance_officer"]))
    head, *lines = list(csv.reader(io.StringIO(chinese.content.decode("utf-8-sig"))))
    assert head[0] == "时间" and any("依据前台的规则允许查看联系方式" in line[8] for line in lines)
    assert len(await tenant.audit_events(action="export", patient_id=pid)) == 2


async def test_anyone_else_is_refused_with_nothing_and_on_record(tenant: Tenant) -> None:
    pid = await seen_file(tenant)
    partnership = await make_partnership(tenant, ALL_SCOPES)
    patient = await open_account(tenant, pid)
    callers = {"nurse": ("staff", tenant.staff_ids["nurse"], tenant.tokens["nurse"]),
               "front_desk": ("staff", tenant.staff_ids["front_desk"], tenant.tokens["front_desk"]),
               "partner": ("partner", partnership.client.id, partnership.token),
               "patient": ("patient", patient.account_id, patient.token)}
    for who, (kind, actor, token) in callers.items():
        for url in (report_url(pid, "pdf"), report_url(pid, "csv"), "/compliance/exports/audit.ndjson"):
            reply = await tenant.client.get(url, headers=bearer(token))
            assert reply.status_code == 403, (who, url, reply.text)
            assert reply.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            assert "%PDF" not in reply.text and "seq" not in reply.text
        refused = await AuditEvent.filter(institution_id=tenant.id, actor_kind=kind, actor_id=actor,
                                          action="export", outcome="denied").count()
        assert refused == 3, who
    assert await tenant.audit_events(action="export", outcome="allowed") == []
    anonymous = await tenant.client.get(report_url(pid, "pdf"))
    assert anonymous.status_code == 401


async def test_a_refused_export_of_a_patients_report_is_on_that_patients_record(tenant: Tenant) -> None:
    """As a refused patientAccessReport is (docs/security.md): found in review, the export's refusal named the file only
    as the record asked for, so the attempt was not in the file's index, its trail filtered to it, or the patient's
    own access log, while the allowed export named the patient."""
    pid = await make_patient(tenant)
    for fmt in ("pdf", "csv"):
        reply = await tenant.client.get(report_url(pid, fmt), headers=bearer(tenant.tokens["nurse"]))
        assert reply.status_code == 403, reply.text
    allowed = await tenant.client.get(report_url(pid, "csv"), headers=bearer(tenant.tokens["compliance_officer"]))
    assert allowed.status_code == 200, allowed.text

    exports = await tenant.audit_events(action="export", resource_type="audit_report")
    assert [(e.actor_id, e.outcome, e.resource_id, e.patient_id) for e in exports] == [
        (tenant.staff_ids["nurse"], "denied", pid, pid), (tenant.staff_ids["nurse"], "denied", pid, pid),
        (tenant.staff_ids["compliance_officer"], "allowed", pid, pid)]
    on_file = await AuditPatientIndex.filter(institution_id=tenant.id, patient_id=pid, action="export").values_list(
        "actor_id", "outcome")
    assert sorted(on_file) == sorted([(tenant.staff_ids["nurse"], "denied")] * 2 + [
        (tenant.staff_ids["compliance_officer"], "allowed")])


async def test_a_file_out_of_reach_answers_like_a_missing_one(tenant: Tenant, other_tenant: Tenant) -> None:
    foreign = await make_patient(other_tenant)
    token = bearer(tenant.tokens["compliance_officer"])
    out_of_reach = await tenant.client.get(report_url(foreign, "pdf"), headers=token)
    missing = await tenant.client.get(report_url(uuid.uuid4(), "pdf"), headers=token)
    assert out_of_reach.status_code == missing.status_code == 404
    assert out_of_reach.json() == missing.json() and missing.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    denied = await tenant.audit_events(action="export", outcome="denied", reason="not_found")
    assert len(denied) == 2
    assert await AuditEvent.filter(institution_id=other_tenant.id, action="export").count() == 0


async def test_periods_are_bounded_and_zoned(tenant: Tenant) -> None:
    pid = await make_patient(tenant)
    token = bearer(tenant.tokens["compliance_officer"])
    now = datetime.now(UTC)
    too_long = {"from": (now - timedelta(days=400)).isoformat(), "to": now.isoformat()}
    naive = {"from": "2026-01-01T00:00:00"}
    for url in (report_url(pid, "pdf"), "/compliance/exports/audit.ndjson"):
        for params, field in ((too_long, "from"), (naive, "from"), ({"to": "yesterday"}, "to")):
            reply = await tenant.client.get(url, params=params, headers=token)
            assert reply.status_code == 400, (url, params, reply.text)
            extensions = reply.json()["errors"][0]["extensions"]
            assert (extensions["code"], extensions["field"]) == ("BAD_USER_INPUT", field), (url, params)
        # The caller is checked first: a nurse learns nothing about the period, and the refusal is recorded.
        nurse = await tenant.client.get(url, params=too_long, headers=bearer(tenant.tokens["nurse"]))
        assert nurse.status_code == 403
    assert len(await tenant.audit_events(action="export", actor_id=tenant.staff_ids["nurse"], outcome="denied")) == 2
    unknown = await tenant.client.get(report_url(pid, "xlsx"), headers=token)
    assert unknown.status_code == 400 and unknown.json()["errors"][0]["extensions"]["field"] == "format"
    assert await tenant.audit_events(action="export", outcome="allowed") == []


async def test_the_trail_over_http_verifies_offline(tenant: Tenant, services: Services) -> None:
    pid = await seen_file(tenant)
    key = services.master_key.checkpoint_key
    await checkpoint.take(key, tenant.id)  # a checkpoint inside the export
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    async with tenant.client.stream("GET", "/compliance/exports/audit.ndjson", params={"from": since},
                                    headers=bearer(tenant.tokens["compliance_officer"])) as reply:
        assert reply.status_code == 200 and reply.headers["content-type"] == "application/x-ndjson"
        lines = [line async for line in reply.aiter_lines() if line]
    await checkpoint.take(key, tenant.id)  # the trail goes on: a later checkpoint covers the export's own event
    checkpoints = await checkpoint.of_institution(tenant.id)
    report = offline.verify(lines, checkpoints, key.public_key())
    assert report.ok, report.problem
    assert report.signed_end and report.start_vouched and report.unverified_tail is None
    assert report.later_checkpoints == 1 and report.vouched_to == report.last_seq == report.events
    assert '"checkpoint"' in lines[-1] and str(pid) in "\n".join(lines)  # identifiers, never values
    assert not any(secret in "\n".join(lines) for secret in SECRETS)
    exported = await tenant.audit_events(action="export", resource_type="audit_event")
    assert [(e.actor_id, e.outcome, e.seq) for e in exported] == [
        (tenant.staff_ids["compliance_officer"], "allowed", report.last_seq + 1)]
    assert f"through_seq:{report.last_seq}" in exported[0].fields_read


async def test_a_period_cut_between_events_linked_out_of_order_verifies_offline(tenant: Tenant,
                                                                                   services: Services) -> None:
    """An event takes its time when it happens and its place in the chain when it is linked: a long request's read
    is linked after a later, shorter one's. The export of a period is the stretch from its first event to its last,
    its neighbours outside the period included, not a chain with holes the offline check takes for deletions (found
    in review: "sequence gap" on an intact trail)."""
    now = datetime.now(UTC)

    async def read(hours_ago: float) -> int:
        await writer.append([AuditRecord(tenant.id, Actor("staff", tenant.staff_ids["nurse"]), Action.READ,
                                         "patient", Outcome.ALLOWED, patient_id=uuid.uuid4(),
                                         occurred_at=now - timedelta(hours=hours_ago))])
        return (await AuditChainHead.get(institution_id=tenant.id)).last_seq

    first = await read(2)
    before_the_period = await read(4)
    await read(1.9)
    after_the_period = await read(0.5)
    last = await read(1)
    key = services.master_key.checkpoint_key
    period = {"from": (now - timedelta(hours=3)).isoformat(), "to": (now - timedelta(hours=0.75)).isoformat()}
    reply = await tenant.client.get("/compliance/exports/audit.ndjson", params=period,
                                    headers=bearer(tenant.tokens["compliance_officer"]))
    assert reply.status_code == 200
    lines = reply.text.splitlines()

    report = offline.verify(lines, await checkpoint.of_institution(tenant.id), key.public_key())
    assert report.ok, report.problem
    assert (report.first_seq, report.last_seq, report.events) == (first, last, 5) and report.signed_end
    exported = [int(json.loads(line)["seq"]) for line in lines[:-1]]
    assert before_the_period in exported and after_the_period in exported


async def test_while_exports_run_anyone_else_is_still_refused_and_on_record(tenant: Tenant,
                                                                          services: Services) -> None:
    """The bound is the officers': a caller without the right is FORBIDDEN and recorded, never RATE_LIMITED."""
    pid = await seen_file(tenant)
    full = Starlette(routes=compliance.routes(services, compliance.Running(limit=0)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=full), base_url="http://test") as http:
        for url in (report_url(pid, "pdf"), "/compliance/exports/audit.ndjson"):
            reply = await http.get(url, headers=bearer(tenant.tokens["nurse"]))
            assert reply.status_code == 403 and reply.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            officer = await http.get(url, headers=bearer(tenant.tokens["compliance_officer"]))
            assert officer.status_code == 429  # the officer waits for a slot
    refused = await tenant.audit_events(actor_id=tenant.staff_ids["nurse"], action="export", outcome="denied")
    assert [(e.resource_type, e.resource_id) for e in refused] == [("audit_report", pid), ("audit_event", None)]
    assert await tenant.audit_events(action="export", outcome="allowed") == []


async def test_at_most_a_few_exports_run_at_once(tenant: Tenant, services: Services) -> None:
    full = Starlette(routes=compliance.routes(services, compliance.Running(limit=0)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=full), base_url="http://test") as http:
        reply = await http.get("/compliance/exports/audit.ndjson",
                               headers=bearer(tenant.tokens["compliance_officer"]))
    assert reply.status_code == 429 and reply.headers["retry-after"] == "10"
    assert reply.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    one = Starlette(routes=compliance.routes(services, compliance.Running(limit=1)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=one), base_url="http://test") as http:
        for _ in range(2):  # a finished export gives its slot back: one after the other, both go out
            reply = await http.get("/compliance/exports/audit.ndjson",
                                   headers=bearer(tenant.tokens["compliance_officer"]))
            assert reply.status_code == 200 and '"checkpoint"' in reply.text.splitlines()[-1]


async def test_events_cut_from_the_start_of_an_export_are_found(tenant: Tenant, services: Services) -> None:
    """The export's signed end names its first event too: an export whose leading events were cut verified, since
    a period's export may start anywhere and nothing linked its start to what the export held (found in review)."""
    await seen_file(tenant)
    key = services.master_key.checkpoint_key
    await checkpoint.take(key, tenant.id)
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    reply = await tenant.client.get("/compliance/exports/audit.ndjson", params={"from": since},
                                    headers=bearer(tenant.tokens["compliance_officer"]))
    assert reply.status_code == 200
    lines = reply.text.splitlines()
    checkpoints = await checkpoint.of_institution(tenant.id)
    first = int(json.loads(lines[0])["seq"])

    cut = offline.verify(lines[2:], checkpoints, key.public_key())

    assert cut.problem == (f"truncated: the export's signed end says it starts at seq {first}, its events start "
                           f"at {first + 2}")
    whole = offline.verify(lines, checkpoints, key.public_key())
    assert whole.ok and whole.signed_end and whole.signed_start and whole.first_seq == first, whole.problem
