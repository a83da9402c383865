"""CARELOOP_LOG_FORMAT=json: every line on stderr is one JSON object, uvicorn's and ours alike, with no query
string and nothing about a patient; text stays the default."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest

from app.logs import JsonLines, NoQueryStrings, uvicorn_log_config
from core.settings import load_settings
from tests.factories import Tenant, make_patient

NAME, PHONE = "Lin Lognamesecret", "13800001234"

# What `careloop serve` does in each worker: uvicorn applies the dictConfig, then the app logs.
SERVE = """
import logging, logging.config, sys
from app.logs import uvicorn_log_config
logging.config.dictConfig(uvicorn_log_config("INFO", sys.argv[1]))
logging.getLogger("uvicorn.error").info("Started server process [%d]", 42)
logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "198.51.100.23", "GET",
                                         "/unsubscribe?token=cl_secret_token", "1.1", 200)
logging.getLogger("careloop.outbox").warning("message %s failed: %s", "m-1", "timeout")
logging.getLogger("tortoise.db_client").debug("SELECT secret FROM patient")
try:
    raise ValueError("boom")
except ValueError:
    logging.getLogger("careloop.graphql").exception("unexpected error")
"""


def serve_logs(log_format: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", SERVE, log_format], capture_output=True, text=True, timeout=60,
                          check=True)
    assert not done.stdout
    return done.stderr.splitlines()


def test_json_lines_from_uvicorn_and_careloop() -> None:
    lines = serve_logs("json")
    entries = [json.loads(line) for line in lines if not line.startswith(" ")]
    assert len(entries) == len(lines) == 4  # a traceback stays inside its entry; SQL stays out
    started, access, outbox, error = entries
    assert started["logger"] == "uvicorn.error" and started["message"] == "Started server process [42]"
    assert access["logger"] == "uvicorn.access"
    assert (access["client"], access["method"], access["path"], access["status"]) == (
        "198.51.100.23", "GET", "/unsubscribe?...", 200)
    assert outbox == {"time": outbox["time"], "level": "WARNING", "logger": "careloop.outbox",
                      "message": "message m-1 failed: timeout"}
    assert outbox["time"].endswith("+00:00")
    assert error["level"] == "ERROR" and "ValueError: boom" in error["exception"]
    assert "cl_secret_token" not in "\n".join(lines)


def test_text_is_the_default_and_drops_query_strings_too() -> None:
    assert load_settings({}).log_format == "text"
    lines = serve_logs("text")
    assert any(" INFO uvicorn.access: 198.51.100.23 - \"GET /unsubscribe?... HTTP/1.1\" 200" in line
               for line in lines)
    assert any(" WARNING careloop.outbox: message m-1 failed: timeout" in line for line in lines)
    assert "cl_secret_token" not in "\n".join(lines)
    assert "SELECT secret" not in "\n".join(lines)


def test_the_setting_is_checked() -> None:
    assert load_settings({"CARELOOP_LOG_FORMAT": "json"}).log_format == "json"
    with pytest.raises(SystemExit, match="CARELOOP_LOG_FORMAT"):
        load_settings({"CARELOOP_LOG_FORMAT": "xml"})
    assert uvicorn_log_config("DEBUG", "json")["loggers"]["tortoise"]["level"] == "WARNING"


class JsonCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonLines())
        self.addFilter(NoQueryStrings())
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def json_logs() -> Iterator[JsonCapture]:
    root, capture = logging.getLogger(), JsonCapture()
    level = root.level
    root.addHandler(capture)
    root.setLevel(logging.INFO)
    yield capture
    root.removeHandler(capture)
    root.setLevel(level)


async def test_requests_log_nothing_about_the_patient(tenant: Tenant, json_logs: JsonCapture) -> None:
    """The JSON format changes the shape of a line, never what is in it."""
    patient = await make_patient(tenant, fullName=NAME, phone=PHONE)
    await tenant.call("nurse", "query($id: ID!) { patient(id: $id) { fullName phone } }", id=str(patient))
    await tenant.call("front_desk", "query($id: ID!) { patient(id: $id) { nope } }", id=str(patient))
    entries = [json.loads(line) for line in json_logs.lines]
    assert any(entry["logger"] == "careloop.graphql" for entry in entries)  # the refused field, by its code
    for line in json_logs.lines:
        assert NAME not in line and PHONE not in line and str(patient) not in line
