"""Exporting an institution's audit trail for a period, streamed in sequence order.

Formats: ``ndjson`` (one event per line with every hashed column and its hash: what
``careloop audit verify --export`` checks offline), ``csv`` (the same columns, for
spreadsheets) and ``fhir`` (one FHIR R4 ``AuditEvent`` resource per line, NDJSON as in FHIR
bulk data; an event covering several records names each as an entity, and each patient as a
Person). An event names field classes and field names, never a value of patient data, so neither
does an export.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from tortoise.functions import Max, Min

from audit import writer
from audit.chain import HASHED_COLUMNS, canonical, parse_subjects, patients_of
from core.errors import BadUserInput
from core.spreadsheet import safe_cell
from models import AuditEvent

FORMATS = ("ndjson", "csv", "fhir")
EVIDENCE = "ndjson"  # the format checked offline; the others are for reading, with the evidence beside them
EXPORT_END = "checkpoint"  # the key of an NDJSON export's last line: a checkpoint signed at its last event
COLUMNS = (*HASHED_COLUMNS, "hash")
BATCH = 2000

# FHIR R4 codes (http://hl7.org/fhir/R4/auditevent.html)
_FHIR_ACTION = {"read": "R", "create": "C", "update": "U", "delete": "D", "archive": "U", "export": "R",
                "disclose": "R", "break_glass": "E", "consent": "U", "grant": "U", "key_rotation": "E",
                "retention": "U", "archive_trail": "D", "login": "E", "logout": "E", "lockout": "E", "token": "E"}
_FHIR_OUTCOME = {"allowed": "0", "denied": "4", "error": "8"}
_REST = "http://hl7.org/fhir/restful-interaction"
_AUDIT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
_DICOM = "http://dicom.nema.org/resources/ontology/DCM"
# An event's type (FHIR's audit-event-type, DICOM's codes), by action: a RESTful operation on a record, with its
# interaction as subtype, unless named here.
_AUTHENTICATION = {"system": _DICOM, "code": "110114", "display": "User Authentication"}
_EXPORT = {"system": _DICOM, "code": "110106", "display": "Export"}  # data leaving: a file, a gateway
_SECURITY_ALERT = {"system": _DICOM, "code": "110113", "display": "Security Alert"}  # emergency and security set-up
_FHIR_TYPE = {"login": _AUTHENTICATION, "logout": _AUTHENTICATION, "lockout": _AUTHENTICATION,
              "token": _AUTHENTICATION, "export": _EXPORT, "disclose": _EXPORT, "archive_trail": _EXPORT,
              "break_glass": _SECURITY_ALERT, "key_rotation": _SECURITY_ALERT, "retention": _SECURITY_ALERT}
_REST_TYPE = {"system": _AUDIT_TYPE, "code": "rest", "display": "RESTful Operation"}
_INTERACTION = {"read": "read", "create": "create", "delete": "delete"}  # else "update": a record's state changed


async def rows(institution_id: uuid.UUID, since: datetime | None = None, until: datetime | None = None, *,
               after_seq: int = 0, up_to_seq: int | None = None) -> AsyncIterator[dict[str, Any]]:
    """The institution's events in sequence order, in batches, ``after_seq`` < seq <= ``up_to_seq`` (an archive
    takes a stretch of the chain by sequence) and, given a period, from the first event with ``since`` <= time <
    ``until`` to the last: a stretch of the chain without holes. An event takes its time when it happens and its
    place in the chain when it is linked, so a neighbour at the period's edge may lie just outside it; leaving it
    out would leave a gap the offline check rightly takes for a deleted event."""
    await writer.seal(institution_id)
    query = AuditEvent.filter(institution_id=institution_id, seq__gt=after_seq)
    if up_to_seq is not None:
        query = query.filter(seq__lte=up_to_seq)
    if since is not None or until is not None:
        period = query
        if since is not None:
            period = period.filter(occurred_at__gte=since)
        if until is not None:
            period = period.filter(occurred_at__lt=until)
        [(first, last)] = await period.annotate(first_seq=Min("seq"), last_seq=Max("seq")).values_list(
            "first_seq", "last_seq")
        if first is None:
            return
        query = query.filter(seq__gte=first, seq__lte=last)
    next_seq = after_seq
    while True:
        batch = await query.filter(seq__gt=next_seq).order_by("seq").limit(BATCH).values(*COLUMNS)
        for row in batch:
            yield row
        if len(batch) < BATCH:
            return
        next_seq = batch[-1]["seq"]


@dataclass(frozen=True)
class Written:
    """What an export holds: how many events, the first one's sequence number, and the last one's sequence number
    and hash (0 and "" if none)."""

    count: int
    last_seq: int = 0
    last_hash: str = ""
    first_seq: int = 0


async def write(institution_id: uuid.UUID, fmt: str, out: TextIO, *, since: datetime | None = None,
                until: datetime | None = None, after_seq: int = 0, up_to_seq: int | None = None,
                progress: Callable[[int], None] | None = None) -> Written:
    """Write the export to ``out``."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    count, first_seq, last_seq, last_hash = 0, 0, 0, ""
    if fmt == "csv":
        out.write(_csv_line(COLUMNS))
    async for row in rows(institution_id, since, until, after_seq=after_seq, up_to_seq=up_to_seq):
        out.write(line(fmt, row))
        count, last_seq, last_hash = count + 1, int(row["seq"]), str(row["hash"])
        first_seq = first_seq or last_seq
        if progress and count % BATCH == 0:
            progress(count)
    if progress:
        progress(count)
    return Written(count, last_seq, last_hash, first_seq)


def end_line(end: Any) -> str:
    """An NDJSON export's last line: the checkpoint signed at its last event, naming its first (``audit.checkpoint.
    sign`` with ``first_seq``), so that the export verifies on its own however many checkpoints the trail signs after
    it, and a cut at either end is found."""
    return json.dumps({EXPORT_END: end.to_json()}, separators=(",", ":")) + "\n"


def line(fmt: str, row: dict[str, Any]) -> str:
    if fmt == "csv":
        # For reading only, not the evidence: a cell that would run as a formula starts with a quote (a user agent
        # is any request's header, a sign-in refused included).
        return _csv_line([safe_cell(canonical(row[c])) for c in COLUMNS])
    document = fhir_audit_event(row) if fmt == "fhir" else {c: canonical(row[c]) for c in COLUMNS}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n"


def fhir_audit_event(row: dict[str, Any]) -> dict[str, Any]:
    """One event as a FHIR R4 AuditEvent resource."""
    action, outcome = str(row["action"]), str(row["outcome"])
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(row["id"]),
        "type": _FHIR_TYPE.get(action, _REST_TYPE),
        "action": _FHIR_ACTION.get(action, "E"),  # a kind a later version dropped: still exported
        "recorded": canonical(row["occurred_at"]),
        "outcome": _FHIR_OUTCOME.get(outcome, "8"),
        "agent": [_agent(row)],
        "source": {"observer": {"display": "careloop"},
                   "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                             "code": "4", "display": "Application Server"}]},
        "entity": _entities(row),
    }
    if action not in _FHIR_TYPE:
        event["subtype"] = [{"system": _REST, "code": _INTERACTION.get(action, "update")}]
    if row["reason"]:
        event["outcomeDesc"] = str(row["reason"])
    return event


def _agent(row: dict[str, Any]) -> dict[str, Any]:
    agent: dict[str, Any] = {"requestor": True,
                             "who": {"identifier": {"system": f"urn:careloop:{row['actor_kind']}",
                                                    "value": canonical(row["actor_id"]) or "anonymous"}}}
    if row["client_address"]:
        agent["network"] = {"address": str(row["client_address"]), "type": "2"}
    if row["policy_rule"]:
        agent["policy"] = [str(rule) for rule in str(row["policy_rule"]).split("; ")]
    return agent


def _entities(row: dict[str, Any]) -> list[dict[str, Any]]:
    chain = [{"type": name, "valueString": canonical(row[name])} for name in ("seq", "prev_hash", "hash")]
    fields = [{"type": kind, "valueString": str(row[column])}  # FHIR strings may not be empty
              for kind, column in (("field_classes", "field_classes"), ("fields", "fields_read")) if row[column]]
    records = parse_subjects(row["subjects"]) or [(row["resource_id"], row["patient_id"])]
    entities = [{
        "what": {"identifier": {"system": f"urn:careloop:{row['resource_type']}",
                                "value": canonical(record) or "none"}},
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2",
                 "display": "System Object"},
        "detail": chain + fields,
    } for record, _ in records]
    for patient in sorted(str(patient) for patient in patients_of(row)):  # one Person per patient, as FHIR has it
        entities.append({
            "what": {"identifier": {"system": "urn:careloop:patient", "value": patient}},
            "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1",
                     "display": "Person"},
            "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1",
                     "display": "Patient"},
        })
    return entities


def _csv_line(values: Any) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue()


def parse_time(text: str | None, option: str) -> datetime | None:
    """A time the operator typed as ``option`` (UTC when it names no zone), in UTC: SQLite keeps times as text and
    compares them as text, so a moment in another zone must be spelled as the stored ones are. Not a time, or one
    whose UTC falls outside the calendar (year 1 at +05:00): BAD_USER_INPUT naming the option, not a traceback."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadUserInput(f"{option}: an ISO 8601 time between the years 1 and 9999 in UTC, e.g. "
                           "2026-01-01T00:00:00+08:00 (UTC when no offset).", field=option) from None
