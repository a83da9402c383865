"""Prometheus metrics: requests and latencies by operation name, errors by code, audit append latency and
chain lag, outbox backlog; served on a port of their own; no patient data, id or variable in any label."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app import metrics
from core.settings import load_settings
from models import AuditChainHead, AuditCheckpoint, Communication
from tests.factories import Tenant, gql, make_patient
from tests.patients import open_account

NAME, PHONE = "Qiao Metricname", "13912345678"
PATIENTS = "query PatientsPage($first: Int!) { patients(first: $first) { edges { node { id } } } }"
CREATE = ("mutation($input: PatientCreateInput!) { patientCreate(input: $input, registerAnyway: true) "
          "{ patient { id } } }")
UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.IGNORECASE)
LABELS = {"operation", "code", "le", "reason"}


@pytest.fixture(autouse=True)
def fresh_label_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts below the caps, whatever names earlier tests in this process sent (the fuzz tests)."""
    monkeypatch.setattr(metrics, "_operations", set())
    monkeypatch.setattr(metrics, "_signed_out_operations", set())
    monkeypatch.setattr(metrics, "_outside_operations", set())
    monkeypatch.setattr(metrics, "_codes", set())


def samples() -> list[tuple[str, dict[str, str], float]]:
    return [(sample.name, sample.labels, sample.value)
            for family in text_string_to_metric_families(metrics.exposition().decode())
            for sample in family.samples]


def value(name: str, **labels: str) -> float:
    return sum(v for n, ls, v in samples() if n == name and all(ls.get(k) == w for k, w in labels.items()))


async def test_requests_are_counted_and_timed_by_operation_name(tenant: Tenant) -> None:
    before = value("careloop_graphql_requests_total", operation="PatientsPage")
    timed = value("careloop_graphql_request_duration_seconds_count", operation="PatientsPage")
    for _ in range(2):
        reply = await tenant.call("nurse", PATIENTS, first=5)
        assert not reply.errors, reply.errors
    assert value("careloop_graphql_requests_total", operation="PatientsPage") == before + 2
    assert value("careloop_graphql_request_duration_seconds_count", operation="PatientsPage") == timed + 2
    assert value("careloop_graphql_request_duration_seconds_bucket", operation="PatientsPage", le="+Inf") >= 2


async def test_an_unnamed_operation_is_anonymous(tenant: Tenant) -> None:
    before = value("careloop_graphql_requests_total", operation="anonymous")
    await tenant.call("nurse", "{ patients(first: 1) { edges { node { id } } } }")
    assert value("careloop_graphql_requests_total", operation="anonymous") == before + 1


async def test_errors_are_counted_by_code(tenant: Tenant, client: httpx.AsyncClient) -> None:
    unauthenticated = value("careloop_graphql_errors_total", code="UNAUTHENTICATED")
    refused = value("careloop_graphql_errors_total", code="METHOD_NOT_ALLOWED")
    reply = await gql(client, PATIENTS, {"first": 5})  # no token
    assert "UNAUTHENTICATED" in reply.codes
    assert (await client.put("/graphql", json={"query": "{ __typename }"})).status_code == 405
    assert value("careloop_graphql_errors_total", code="UNAUTHENTICATED") == unauthenticated + 1
    assert value("careloop_graphql_errors_total", code="METHOD_NOT_ALLOWED") == refused + 1


async def test_audit_appends_are_timed(tenant: Tenant) -> None:
    appends = value("careloop_audit_append_duration_seconds_count")
    events = value("careloop_audit_events_appended_total")
    before = await tenant.audit_count()
    await make_patient(tenant)
    written = await tenant.audit_count() - before
    assert written >= 1
    assert value("careloop_audit_append_duration_seconds_count") > appends
    assert value("careloop_audit_events_appended_total") >= events + written


async def test_chain_lag_and_outbox_backlog_are_read_from_the_database(tenant: Tenant) -> None:
    await make_patient(tenant)
    await metrics.refresh()
    heads = dict(await AuditChainHead.all().values_list("institution_id", "last_seq"))
    signed: dict[uuid.UUID, int] = {}
    for institution_id, last_seq in await AuditCheckpoint.all().values_list("institution_id", "last_seq"):
        signed[institution_id] = max(signed.get(institution_id, 0), last_seq)
    # a chain cut past its checkpoint (test_verify_truncation leaves one) has no unsigned events, not fewer than none
    lags = [max(0, last - signed.get(institution_id, 0)) for institution_id, last in heads.items()]
    assert heads[tenant.id] - signed.get(tenant.id, 0) == await tenant.audit_count()  # nothing signed yet
    assert value("careloop_audit_unsigned_events") == sum(lags)
    assert value("careloop_audit_chain_lag_events") == max(lags)
    assert value("careloop_outbox_queued_messages") == await Communication.filter(status="queued").count()
    assert 0 <= value("careloop_outbox_due_messages") <= value("careloop_outbox_queued_messages")


async def test_no_label_holds_an_id_a_variable_or_patient_data(tenant: Tenant, client: httpx.AsyncClient) -> None:
    patient = await make_patient(tenant, fullName=NAME, phone=PHONE)
    chosen_by_caller = [f"patient_{patient.hex}", f"call{PHONE}", f"Patient{PHONE[:4]}x", "has space", "x" * 80,
                        str(patient)]
    for name in chosen_by_caller:
        query = f"query {name} {{ patients(first: 1) {{ edges {{ node {{ id }} }} }} }}" if " " not in name \
            else PATIENTS
        await client.post("/graphql", json={"query": query, "operationName": name, "variables": {"first": 1}},
                          headers={"authorization": f"Bearer {tenant.tokens['nurse']}"})
    await tenant.call("front_desk", CREATE, input={"fullName": NAME, "phone": PHONE,
                                                   "departmentId": str(tenant.departments["A"].id)})
    await gql(client, "query Lookup($id: ID!) { patient(id: $id) { fullName } }", {"id": str(patient)})
    await metrics.refresh()
    for name, labels, _ in samples():
        assert set(labels) <= LABELS, (name, labels)
        for key, label in labels.items():
            if key == "le":  # a histogram bucket's bound
                continue
            assert not UUID.search(label) and not re.search(r"[0-9]{4,}", label), (name, labels)
            assert NAME not in label and PHONE not in label and str(patient) not in label
    operations = {labels["operation"] for n, labels, _ in samples() if n == "careloop_graphql_requests_total"}
    assert {"other", "Lookup"} <= operations
    assert not operations & set(chosen_by_caller)


def test_operation_names_are_bounded() -> None:
    """Past MAX_OPERATION_NAMES distinct names, a new one is `other`: a caller cannot grow the label set."""
    names = [f"Operation{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(metrics.MAX_OPERATION_NAMES + 20)]
    labels = [metrics.operation_label(name) for name in names]
    assert labels[:metrics.MAX_OPERATION_NAMES] == names[:metrics.MAX_OPERATION_NAMES]
    assert set(labels[metrics.MAX_OPERATION_NAMES:]) == {"other"}
    assert metrics.operation_label(names[0]) == names[0]  # one already seen keeps its label
    assert metrics.code_label("not a code") == "OTHER"


async def test_names_a_patient_sends_cannot_take_the_staffs_operation_labels(tenant: Tenant) -> None:
    """Staff's operations are labelled from the first ``MAX_OPERATION_NAMES`` names: a patient's account (or a
    partner's client) sending that many made-up names took every label, as anonymous requests did before them, and
    the staff portals' operations were all counted as ``other`` until the next restart. Patients and partners name
    theirs from a set of their own; past it theirs are ``other``."""
    patient = await open_account(tenant)
    names = [f"Junk{''.join(chr(65 + n // 26 ** p % 26) for p in range(3))}"  # no digits: a digit run is never a label
             for n in range(metrics.MAX_OPERATION_NAMES)]
    for name in names:
        reply = await patient.call(f"query {name} {{ __typename }}")
        assert reply.errors == [], reply.errors
    before = value("careloop_graphql_requests_total", operation="PatientsPage")

    reply = await tenant.call("nurse", PATIENTS, first=1)

    assert reply.errors == [], reply.errors
    assert value("careloop_graphql_requests_total", operation="PatientsPage") == before + 1
    labelled = {labels["operation"] for n, labels, _ in samples() if n == "careloop_graphql_requests_total"}
    assert set(names[:metrics.MAX_OUTSIDE_NAMES]) <= labelled  # the patients' own set
    assert not set(names[metrics.MAX_OUTSIDE_NAMES:]) & labelled  # past it: other
    assert value("careloop_graphql_requests_total", operation="other") >= len(names) - metrics.MAX_OUTSIDE_NAMES


def test_an_ids_hex_form_is_never_an_operation_label() -> None:
    """Even a hex id without four digits in a row (the case a random id once hit) stays out of the labels."""
    for name in ("patient_01a23a83c78a793cb73c1b2d6d1e064d", "p01a23a83c78a793cb", "x_0a1b2c3d"):
        assert metrics.operation_label(name) == "other"
    for name in ("AddFeedback", "Face2Face", "DeadBeefCafe", "Lookup"):
        assert metrics.operation_label(name) == name


async def test_the_metrics_port_serves_the_exposition(tenant: Tenant) -> None:
    await tenant.call("nurse", PATIENTS, first=1)
    server = metrics.serve("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient() as http:
            reply = await http.get(f"http://127.0.0.1:{server.server_port}/metrics")
    finally:
        server.shutdown()
        server.server_close()
    assert reply.status_code == 200
    assert 'careloop_graphql_requests_total{operation="PatientsPage"}' in reply.text
    assert "careloop_audit_append_duration_seconds_bucket" in reply.text


def test_metrics_are_off_by_default_and_never_on_the_api_port() -> None:
    assert load_settings({}).metrics_port == 0
    assert load_settings({"CARELOOP_METRICS_PORT": "9464"}).metrics_port == 9464
    for wrong in ("8000", "70000", "-1", "metrics"):
        with pytest.raises(SystemExit, match="CARELOOP_METRICS_PORT"):
            load_settings({"CARELOOP_METRICS_PORT": wrong})
