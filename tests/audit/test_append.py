"""One append, whatever the database: the events the writer appends hash as ``row_hash`` says, whether the
writer computes the hashes (SQLite) or PostgreSQL's ``audit_append`` does from the body pieces it is sent, for
every character a request may bring (quotes, backslashes, control characters, other scripts, emoji)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime

import pytest

from audit import writer
from audit.chain import body_around, hash_of_pieces, row_hash
from audit.events import Action, Actor, AuditRecord, Outcome, RequestMeta
from audit.verify import verify_all
from models import AuditChainHead, AuditEvent
from tests.audit.test_chain import connection, is_postgres
from tests.factories import Tenant

AGENTS = ['plain', 'quote " and backslash \\ and slash /', "tab\tnewline\nreturn\r bell\x07 nul-free \x1f",
          "张三的手机 ✓ 😀 \u2028 \u00e9\u0301", "", "x" * 200]


@pytest.mark.parametrize("agent", AGENTS)
async def test_appended_events_hash_as_row_hash_says(tenant: Tenant, agent: str) -> None:
    head = await AuditChainHead.get(institution_id=tenant.id)
    records = [AuditRecord(tenant.id, Actor("staff", uuid.uuid4(), uuid.uuid4()), Action.READ, "patient",
                           Outcome.ALLOWED, RequestMeta("r" * 32, "203.0.113.9", agent), resource_id=uuid.uuid4(),
                           patient_id=uuid.uuid4(), field_classes=frozenset({"contact", "identity"}),
                           fields_read=frozenset({"phone"}), policy_rule="nurse, *, patient.contact, read, allow",
                           occurred_at=datetime(2026, 12, 2, 8, 30, 0, 5, tzinfo=UTC))
               for _ in range(3)]

    await writer.append(records)

    rows = await AuditEvent.filter(institution_id=tenant.id, seq__gt=head.last_seq).order_by("seq").values()
    assert [row["seq"] for row in rows] == [head.last_seq + 1, head.last_seq + 2, head.last_seq + 3]
    assert rows[0]["prev_hash"] == head.last_hash
    for before, row in zip([head.last_hash, rows[0]["hash"], rows[1]["hash"]], rows, strict=True):
        assert row["prev_hash"] == before and row["hash"] == row_hash(row)
        assert hash_of_pieces(*body_around(row), row["seq"], row["prev_hash"]) == row["hash"]  # verify's way
        assert row["user_agent"] == agent
    moved = await AuditChainHead.get(institution_id=tenant.id)
    assert (moved.last_seq, moved.last_hash) == (rows[-1]["seq"], rows[-1]["hash"])
    (report,) = await verify_all(tenant.id)
    assert report.ok


async def test_the_first_append_starts_the_chain(database: str) -> None:
    chain = uuid.uuid4()  # an institution without a head yet (writer.append starts it, on either database)
    await writer.append([AuditRecord(chain, Actor("system"), Action.READ, "request", Outcome.ALLOWED)])

    (row,) = await AuditEvent.filter(institution_id=chain).values()
    assert (row["seq"], row["prev_hash"], row["hash"]) == (1, "0" * 64, row_hash(row))


async def test_a_cancelled_caller_gives_way_only_once_its_record_is_durable(tenant: Tenant) -> None:
    """graphql-core cancels a failing field's siblings and sends the response once they end: a sibling recording a
    refusal must end only after the record is written (a bare ``asyncio.shield`` ended at once, the append still
    running behind the response; found when a CI run missed a sibling's refusal)."""
    finished: list[int] = []
    observer = lambda _seconds, count: finished.append(count)  # noqa: E731
    writer.append_observers.append(observer)
    try:
        record = AuditRecord(tenant.id, Actor("system"), Action.READ, "patient", Outcome.DENIED, reason="forbidden")
        task = asyncio.ensure_future(writer.append_before_giving_way([record]))
        await asyncio.sleep(0)  # the append is under way
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert finished == [1]  # written before the caller gave way, not after
    finally:
        writer.append_observers.remove(observer)
    assert (await tenant.audit_events())[-1].reason == "forbidden"
    (report,) = await verify_all(tenant.id)
    assert report.ok


async def test_a_failed_append_under_a_cancelled_caller_is_logged_by_its_kind_never_its_text(
        tenant: Tenant, caplog: pytest.LogCaptureFixture) -> None:
    """The append a cancelled caller waited for was logged with its exception whole (text and traceback), and a
    database error's text quotes the values at fault (found in review, with ``seal_pending``'s). Its kind (and a
    database error's SQLSTATE) is logged instead. The fault: a trigger refusing the chain's inserts with a message
    that names a patient."""
    secret = "patient Wang Fang, ID 110101199003077777"
    if is_postgres():
        create = [f"""CREATE FUNCTION test_refuse_append() RETURNS trigger LANGUAGE plpgsql AS $$
                      BEGIN RAISE EXCEPTION '{secret}' USING DETAIL = '{secret}'; END $$;
                      CREATE TRIGGER test_refuse_append BEFORE INSERT ON audit_event FOR EACH ROW
                        WHEN (NEW.institution_id = '{tenant.id}') EXECUTE FUNCTION test_refuse_append();"""]
        drop = "DROP TRIGGER test_refuse_append ON audit_event; DROP FUNCTION test_refuse_append()"
    else:
        create = [f"""CREATE TRIGGER test_refuse_append BEFORE INSERT ON audit_event
                      WHEN NEW.institution_id = '{tenant.id}' BEGIN SELECT RAISE(ABORT, '{secret}'); END"""]
        drop = "DROP TRIGGER test_refuse_append"
    for statement in create:
        await connection().execute_script(statement)
    caplog.set_level(logging.INFO, logger="careloop.audit")
    try:
        record = AuditRecord(tenant.id, Actor("system"), Action.READ, "patient", Outcome.DENIED, reason="forbidden")
        task = asyncio.ensure_future(writer.append_before_giving_way([record]))
        await asyncio.sleep(0)  # the append is under way
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await connection().execute_script(drop)
    [line] = [record for record in caplog.records if record.name == "careloop.audit"]
    assert line.exc_info is None and line.exc_text is None and "Wang" not in caplog.text
    assert line.getMessage() == ("an audit append under a cancelled request failed (RaiseError, SQLSTATE P0001)"
                                 if is_postgres() else "an audit append under a cancelled request failed "
                                                       "(IntegrityError)")
