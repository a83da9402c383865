"""Prometheus metrics, served on a port of their own (``CARELOOP_METRICS_PORT``, off by default), never on the
API's: a scraper needs no token, so the port is for the monitoring network only.

No label carries patient data, an identifier, a variable or anything else a caller chooses freely: an
operation is labelled by its name only when that is a plain GraphQL name with no run of digits (a phone, an
id) and one of the first ``MAX_OPERATION_NAMES`` this process has seen; every other is ``other``, and an
unnamed one is ``anonymous``. Requests without a signed-in caller name their operations from a set of their own
(``MAX_SIGNED_OUT_NAMES``: sign-ins, links): made-up names sent without a token took every label otherwise, and
the portals' operations were counted as ``other`` until a restart (found in review). Patients and partners' clients,
signed in but not staff, name theirs from a set of their own too (``MAX_OUTSIDE_NAMES``): a patient's account
sending a hundred made-up names took the staff's labels the same way (found in review). Error codes are ours
(``core.errors``), bounded the same way.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from wsgiref.simple_server import WSGIServer

from graphql import OperationDefinitionNode
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector
from tortoise.functions import Max

from audit import writer
from core import rounds
from core.errors import FailingRounds
from models import AuditChainHead, AuditCheckpoint, Communication

log = logging.getLogger("careloop.metrics")

MAX_OPERATION_NAMES = 100
MAX_SIGNED_OUT_NAMES = 20  # names of operations sent without a signed-in caller (its own set)
MAX_OUTSIDE_NAMES = 40  # names of operations sent by patients and partners' clients (their own set)
MAX_ERROR_CODES = 40
REFRESH_EVERY_SECONDS = 15.0
# A refresh reads four aggregates (milliseconds, a second on large tables); past this it is cut short (core.rounds)
REFRESH_BUDGET_SECONDS = 30.0
OPERATION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
DIGIT_RUN = re.compile(r"[0-9]{4,}")
HEX_RUN = re.compile(r"[0-9a-fA-F]{8,}")
ERROR_CODE = re.compile(r"[A-Z][A-Z_]{0,39}")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
APPEND_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)

REGISTRY = CollectorRegistry()
REQUESTS = Counter("careloop_graphql_requests", "GraphQL requests over HTTP, by operation name",
                   ["operation"], registry=REGISTRY)
LATENCY = Histogram("careloop_graphql_request_duration_seconds", "Time to answer a GraphQL request over HTTP, "
                    "by operation name", ["operation"], buckets=LATENCY_BUCKETS, registry=REGISTRY)
ERRORS = Counter("careloop_graphql_errors", "Errors in GraphQL answers, by code (refusals before execution "
                 "included)", ["code"], registry=REGISTRY)
CALLBACKS_REFUSED = Counter("careloop_delivery_callbacks_refused", "Gateways' delivery callbacks refused, by "
                            "reason (app/message_hooks.py)", ["reason"], registry=REGISTRY)
AUDIT_APPEND = Histogram("careloop_audit_append_duration_seconds", "Time to append a batch of audit events to "
                         "their chains, lock wait included", buckets=APPEND_BUCKETS, registry=REGISTRY)
AUDIT_EVENTS = Counter("careloop_audit_events_appended", "Audit events appended", registry=REGISTRY)
# Read from the database every REFRESH_EVERY_SECONDS by each worker: the newest reading wins.
UNSIGNED = Gauge("careloop_audit_unsigned_events", "Audit events, all chains together, not yet covered by a "
                 "signed checkpoint", multiprocess_mode="mostrecent", registry=REGISTRY)
CHAIN_LAG = Gauge("careloop_audit_chain_lag_events", "The most audit events one chain has beyond its newest "
                  "signed checkpoint", multiprocess_mode="mostrecent", registry=REGISTRY)
OUTBOX_QUEUED = Gauge("careloop_outbox_queued_messages", "Messages to patients waiting in the outbox",
                      multiprocess_mode="mostrecent", registry=REGISTRY)
OUTBOX_DUE = Gauge("careloop_outbox_due_messages", "Queued messages whose time has come (a backlog when it "
                   "keeps growing)", multiprocess_mode="mostrecent", registry=REGISTRY)

_operations: set[str] = set()
_signed_out_operations: set[str] = set()
_outside_operations: set[str] = set()
_codes: set[str] = set()


def _bounded(value: str, seen: set[str], cap: int) -> str | None:
    if value in seen:
        return value
    if len(seen) >= cap:
        return None
    seen.add(value)
    return value


def operation_name(sent: str | None, operations: Sequence[OperationDefinitionNode] | None) -> str | None:
    """The name the caller sent, or else the name of the document's only operation."""
    if sent is not None or not operations or len(operations) != 1 or operations[0].name is None:
        return sent
    return operations[0].name.value


def _holds_an_id(name: str) -> bool:
    """A run of digits, or a hex run with digits in it (an id's hex form such as patient_01a23a83c78a...);
    a word of hex letters alone (AddFeedback) is a name."""
    return bool(DIGIT_RUN.search(name)) or any(
        sum(char.isdigit() for char in run.group()) >= 2 for run in HEX_RUN.finditer(name))


def operation_label(name: object, *, signed_in: bool = True, staff: bool = True) -> str:
    """``signed_in``: the caller holds a token; ``staff``: and is a staff member (not a patient or a partner)."""
    if name is None or name == "":
        return "anonymous"
    if not isinstance(name, str) or not OPERATION_NAME.fullmatch(name) or _holds_an_id(name):
        return "other"
    if name in _operations:  # a name staff use keeps its label for everyone
        return name
    if not signed_in:
        return _bounded(name, _signed_out_operations, MAX_SIGNED_OUT_NAMES) or "other"
    if not staff:
        return _bounded(name, _outside_operations, MAX_OUTSIDE_NAMES) or "other"
    return _bounded(name, _operations, MAX_OPERATION_NAMES) or "other"


def code_label(code: object) -> str:
    if not isinstance(code, str) or not ERROR_CODE.fullmatch(code):
        return "OTHER"
    return _bounded(code, _codes, MAX_ERROR_CODES) or "OTHER"


_by_operation: dict[str, tuple[Any, Any]] = {}  # a label's request counter and latency histogram


def observe_request(operation_name: object, seconds: float, *, signed_in: bool = True, staff: bool = True) -> None:
    label = operation_label(operation_name, signed_in=signed_in, staff=staff)
    counted = _by_operation.get(label)
    if counted is None:  # once per label (they are bounded): ``labels`` checks and locks on every call, ~5 us
        counted = _by_operation[label] = (REQUESTS.labels(label), LATENCY.labels(label))
    requests, latency = counted
    requests.inc()
    latency.observe(seconds)


def count_errors(codes: list[Any]) -> None:
    for code in codes:
        ERRORS.labels(code_label(code)).inc()


def count_refused_callback(reason: str) -> None:
    """``reason`` is one of ours (``message_hooks.REFUSALS``), never the caller's."""
    CALLBACKS_REFUSED.labels(reason).inc()


def _observe_append(seconds: float, events: int) -> None:
    AUDIT_APPEND.observe(seconds)
    AUDIT_EVENTS.inc(events)


if _observe_append not in writer.append_observers:
    writer.append_observers.append(_observe_append)


async def refresh() -> None:
    """Chain lag and outbox backlog, read from the database (every institution together: no id in a label)."""
    heads = await AuditChainHead.all().values_list("institution_id", "last_seq")
    signed = dict(await AuditCheckpoint.annotate(signed=Max("last_seq")).group_by("institution_id")
                  .values_list("institution_id", "signed"))
    lags = [max(0, last_seq - (signed.get(institution_id) or 0)) for institution_id, last_seq in heads]
    UNSIGNED.set(sum(lags))
    CHAIN_LAG.set(max(lags, default=0))
    OUTBOX_QUEUED.set(await Communication.filter(status="queued").count())
    OUTBOX_DUE.set(await Communication.filter(status="queued", due_at__lte=datetime.now(UTC)).count())


async def run(every: float = REFRESH_EVERY_SECONDS) -> None:
    """The database-read gauges, kept fresh while the app runs (started by its lifespan with metrics on)."""
    told = FailingRounds(log, "metrics: reading the audit chains and the outbox")
    while True:
        try:
            async with rounds.Budget(REFRESH_BUDGET_SECONDS):
                await refresh()
        except Exception as exc:  # a database hiccup must not stop the worker; the next round tries again
            told.failed(exc)
        else:
            told.worked()
        await asyncio.sleep(every)


def exposition() -> bytes:
    return generate_latest(REGISTRY)


def serve(host: str, port: int, *, workers: int = 1) -> WSGIServer:
    """Serves /metrics on ``host:port`` from a (daemon) thread of this process.

    With several uvicorn workers each counts in files of a directory they share (prometheus_client's
    multiprocess mode), which this process, their parent, adds up: the variable must be set before the
    workers start, so call this before ``uvicorn.run``."""
    if workers > 1:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=_multiprocess_directory())
        server, _ = start_http_server(port, addr=host, registry=registry)
    else:
        server, _ = start_http_server(port, addr=host, registry=REGISTRY)
    log.info("metrics on http://%s:%s/metrics", host, server.server_port)
    return server


def _multiprocess_directory() -> str:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        directory = tempfile.mkdtemp(prefix="careloop-metrics-")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory  # inherited by the workers uvicorn spawns
    return directory
