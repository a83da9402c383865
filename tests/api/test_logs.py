"""No patient data, identifier or secret reaches a log line, whatever happens to a request."""

from __future__ import annotations

import logging

import pytest
from tortoise.expressions import F

from app.logs import SQL_LOGGERS, WEBSOCKET_LOGGERS, configure_logging
from models import Patient
from tests.factories import PASSWORD, Tenant, gql, make_patient

SECRET_VALUES = {"full_name": "Zhang Secretname", "phone": "13912345678", "diagnoses": "Rare condition Xyzzy"}


@pytest.fixture
def verbose_logging(caplog: pytest.LogCaptureFixture):  # type: ignore[no-untyped-def]
    """The app's own logging configuration at its most verbose level."""
    levels = {name: logging.getLogger(name).level for name in (*SQL_LOGGERS, *WEBSOCKET_LOGGERS, "casbin")}
    configure_logging("DEBUG")
    caplog.set_level(logging.DEBUG)
    yield caplog  # WebSocket traffic at DEBUG: tests/app/test_ws_logs.py
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


async def test_logs_carry_no_patient_data(tenant: Tenant, verbose_logging: pytest.LogCaptureFixture) -> None:
    caplog = verbose_logging
    pid = await make_patient(tenant, "nurse", fullName=SECRET_VALUES["full_name"], phone=SECRET_VALUES["phone"],
                             diagnoses=SECRET_VALUES["diagnoses"])
    # Corrupt the diagnoses ciphertext, so that reading it fails unexpectedly (a masked server error).
    await Patient.filter(id=pid).update(diagnoses=F("phone"))
    reply = await tenant.call("nurse", "query($id: ID!) { patient(id: $id) { fullName phone diagnoses } }", id=str(pid))
    assert reply.codes == ["INTERNAL_SERVER_ERROR"]
    await tenant.call("front_desk", "query($id: ID!) { patient(id: $id) { diagnoses } }", id=str(pid))
    login = "mutation($p: String!) { login(email: \"nobody@x.test\", password: $p) { token } }"
    await gql(tenant.client, login, {"p": PASSWORD})
    await tenant.call("nurse", "mutation { patientCreate(input: {fullName: \"x\", phone: \"12345\"}) { matchedOn } }")

    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "unexpected DecryptionError" in text  # the failure is logged, by kind and place
    for value in [*SECRET_VALUES.values(), "+8613912345678", PASSWORD, "12345", *tenant.tokens.values()]:
        assert value not in text
