"""core.statements with the query it was made for: the patients in a caller's scope with their checks. Built once
per shape, it must bind exactly what Tortoise builds for the same values, for every reach of every role, and read
the same rows and checks; a value Tortoise transforms leaves the shape to be built every time. On the test
database (SQLite or PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from functools import partial
from itertools import product
from typing import Any

import pytest
from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from core import statements
from models import AuditEvent, FollowUpTask, Patient
from policies.scopes import IN_CARE_TEAM, IN_EMERGENCY, ROLE_REACH, PatientScope, Reach
from resolvers import access, audit_event, follow_up
from resolvers import patient as patients
from tests.api.test_break_glass import BREAK, REASON, patient_of_b
from tests.factories import Tenant, make_patient

NOW = datetime.now(UTC)


def scope(reach: frozenset[Reach], departments: int = 1, partner: bool = False, patient: bool = False,
          institution: uuid.UUID | None = None, staff: uuid.UUID | None = None,
          department_ids: set[uuid.UUID] | None = None) -> PatientScope:
    return PatientScope(institution or uuid.uuid4(), staff or uuid.uuid4(),
                        frozenset(department_ids or {uuid.uuid4() for _ in range(departments)}),
                        {"identity": reach, "contact": reach & {Reach.INSTITUTION, Reach.CARE_TEAM}}, {}, NOW,
                        uuid.uuid4() if partner else None, uuid.uuid4() if patient else None)


def every_shape() -> list[PatientScope]:
    reaches = {*ROLE_REACH.values(), ROLE_REACH["front_desk"] | ROLE_REACH["nurse"],
               ROLE_REACH["department_head"] | ROLE_REACH["patient"]}
    return [scope(reach, departments, partner, patient) for reach in reaches for departments in (0, 1, 3)
            for partner in (False, True) for patient in (False, True)]


def rendered(query: QuerySet[Any]) -> tuple[str, list[Any]]:
    query._choose_db_if_not_chosen()
    query._make_query()
    sql, params = query.query.get_parameterized_sql()
    return sql, list(params)


COLUMNS = [None, ("birth_date", "department_id", "full_name", "id", "status")]


@pytest.mark.parametrize("columns", COLUMNS)
async def test_every_shape_binds_what_tortoise_builds(tenant: Tenant, columns: tuple[str, ...] | None) -> None:
    dialect = statements.dialect_of(Patient)
    for case in every_shape():
        assert case.reaches_anyone == (case.filter() is not None)
        if not case.reaches_anyone:
            continue
        shape, build = access.checked_statement(case, columns, partial(access._among, columns))
        for ids in ([uuid.uuid4()], sorted(uuid.uuid4() for _ in range(3))):
            for scoped in (case, similar(case)):
                values = {"ids": ids, **scoped.values()}
                assert statements.bound(shape, build, dialect, **values) == rendered(build(**values)), case.reach


@pytest.mark.parametrize("columns", COLUMNS)
async def test_the_plain_patient_list_binds_what_tortoise_builds(tenant: Tenant,
                                                                 columns: tuple[str, ...] | None) -> None:
    dialect = statements.dialect_of(Patient)
    plain = partial(patients._plain_page, columns)
    for case in every_shape():
        if not case.reaches_anyone:
            continue
        shape, build = access.checked_statement(case, ("page", columns), plain)
        for after in (None, uuid.uuid4(), uuid.uuid4()):
            for scoped, limit in ((case, 51), (similar(case), 2)):
                values = {"after": after, "limit": limit, **scoped.values()}
                assert statements.bound(shape, build, dialect, **values) == rendered(build(**values)), case.reach


def similar(case: PatientScope) -> PatientScope:
    """Another caller of the same shape, at another time: other ids, as many departments."""
    other = scope(case.reach, len(case.department_ids), case.partner_id is not None, case.patient_id is not None)
    return other.with_values(**{**other.values(), "now": NOW - timedelta(hours=5, microseconds=7)})


async def test_the_rows_and_their_checks_are_the_query_s(tenant: Tenant) -> None:
    in_department = await make_patient(tenant)  # department A, the nurse's
    in_team = await make_patient(tenant, "nurse", departmentId=str(tenant.departments["B"].id))
    opened = await patient_of_b(tenant)
    assert not (await tenant.call("nurse", BREAK, id=str(opened), reason=REASON)).errors
    out_of_reach = await patient_of_b(tenant)
    ids = [in_department, in_team, opened, out_of_reach, uuid.uuid4()]
    nurse = scope(ROLE_REACH["nurse"], institution=tenant.id, staff=tenant.staff_ids["nurse"],
                  department_ids={tenant.departments["A"].id})

    for columns in (None, access.view_columns(["full_name"])):
        shape, build = access.checked_statement(nurse, columns, partial(access._among, columns))
        values = {"ids": sorted(ids), **nurse.values()}
        expected = await build(**values)
        for _ in range(2):  # learning the shape, then bound
            rows = await statements.select(Patient, shape, build, **values)
            assert summary(rows) == summary(expected)
        assert {row.id for row in rows} == {in_department, in_team, opened}
        assert {row.id: (getattr(row, IN_CARE_TEAM), getattr(row, IN_EMERGENCY)) for row in rows}[opened] == ("0", "1")
        assert all(row._partial == (columns is not None) for row in rows)

    later = nurse.with_values(**{**nurse.values(), "now": NOW + timedelta(days=1)})  # the grant has run out
    shape, build = access.checked_statement(later, None, partial(access._among, None))
    rows = await statements.select(Patient, shape, build, ids=sorted(ids), **later.values())
    assert {row.id for row in rows} == {in_department, in_team}


def summary(rows: list[Patient]) -> list[dict[str, Any]]:
    """Each instance's every attribute (its fields, the checks, Tortoise's own state such as ``_partial``)."""
    return sorted((vars(row) for row in rows), key=lambda attributes: attributes["id"])


async def test_a_value_tortoise_transforms_is_built_every_time(tenant: Tenant) -> None:
    named = await make_patient(tenant)
    row = await Patient.get(id=named)

    def build(fragment: uuid.UUID, institution_id: uuid.UUID) -> QuerySet[Patient]:  # a LIKE '%...%' pattern
        return Patient.filter(Q(institution_id=institution_id) & ~Q(full_name__contains=str(fragment)))

    with pytest.raises(ValueError, match="built by Tortoise"):
        statements.bound("transformed", build, statements.dialect_of(Patient), fragment=uuid.uuid4(),
                         institution_id=tenant.id)
    found = await statements.select(Patient, "transformed", build, fragment=uuid.uuid4(), institution_id=tenant.id)
    assert row.id in {r.id for r in found}


def test_an_id_list_has_a_few_lengths_and_the_same_ids() -> None:
    for count in range(0, 70):
        ids = [uuid.uuid4() for _ in range(count)] * 2
        listed = statements.id_list(ids)
        assert set(listed) == set(ids) and listed == sorted(listed)
        assert len(listed) in {0, 1, 2, 4, 8, 16, 32, 64, 128} and len(listed) >= len(set(ids))


def test_a_value_transformed_into_a_constant_is_built_every_time(tenant: Tenant) -> None:
    """A datetime truncated (to the second, to the day) or an int clamped gives both stand-ins one parameter: it
    looked constant, and every later call was bound with the stand-in's (created after 1901-01-01)."""
    dialect = statements.dialect_of(Patient)
    when = datetime(2026, 12, 3, 10, 30, 15, 250, tzinfo=UTC)

    def truncated(now: datetime) -> QuerySet[Patient]:
        return Patient.filter(created_at__gt=now.replace(microsecond=0), updated_at__gt=now.replace(hour=0, minute=0,
                                                                                                      second=0))

    def clamped(institution_id: uuid.UUID, limit: int) -> QuerySet[Patient]:
        return Patient.filter(institution_id=institution_id).limit(min(limit, 100))

    for shape, build, values in (("truncated", truncated, {"now": when}),
                                 ("clamped", clamped, {"institution_id": tenant.id, "limit": 5})):
        with pytest.raises(ValueError, match="built by Tortoise"):
            statements.bound(shape, build, dialect, **values)


def test_a_naive_datetime_is_not_bound_where_an_aware_one_was(tenant: Tenant) -> None:
    """Tortoise makes a naive datetime aware: it is another shape than an aware one, built every time."""
    dialect = statements.dialect_of(Patient)

    def build(now: datetime) -> QuerySet[Patient]:
        return Patient.filter(created_at__gt=now)

    aware = datetime(2026, 12, 3, 10, tzinfo=UTC)
    assert statements.bound("naive", build, dialect, now=aware) == rendered(build(aware))
    with pytest.warns(RuntimeWarning, match="naive datetime"), pytest.raises(ValueError, match="built by Tortoise"):
        statements.bound("naive", build, dialect, now=aware.replace(tzinfo=None))


AUDIT_FILTERS = {
    "actor_id": lambda: uuid.uuid4(), "patient_id": lambda: uuid.uuid4(),
    "since": lambda: NOW - timedelta(days=3, microseconds=11), "until": lambda: NOW + timedelta(minutes=7),
}


async def test_the_audit_page_binds_what_tortoise_builds(tenant: Tenant) -> None:
    """The trail's page (``auditEvents``, W4): each filter of the shapes it binds (ids, times, a cursor), alone and
    together, binds what Tortoise builds for two callers; a resource id (a LIKE pattern) or a resource type (text) is
    left to Tortoise."""
    dialect = statements.dialect_of(AuditEvent)
    empty = dict.fromkeys(("actor_id", "patient_id", "resource_id", "resource_type", "action", "outcome", "since",
                           "until"))
    combinations = [[], *([name] for name in AUDIT_FILTERS), list(AUDIT_FILTERS)]
    for first in (1, 50):
        build = partial(audit_event._page_query, first + 1)
        for names in combinations:
            for before in (None, 1234):
                for caller in range(2):
                    values: dict[str, Any] = {**empty, "institution_id": uuid.uuid4(),
                                              "before": None if before is None else before + caller,
                                              **{name: AUDIT_FILTERS[name]() for name in names}}
                    assert statements.bound(("audit_event.page", first), build, dialect, **values) == rendered(
                        build(**values)), names
    for text in ({"resource_id": uuid.uuid4()}, {"resource_type": "patient"}):
        with pytest.raises(ValueError, match="built by Tortoise"):
            statements.bound(("audit_event.page", 50), partial(audit_event._page_query, 51), dialect,
                             **{**empty, "institution_id": uuid.uuid4(), "before": None, **text})


async def test_the_worklist_binds_what_tortoise_builds(tenant: Tenant) -> None:
    """The follow-up worklist's page (``followUpWorklist``, W5), for every reach that holds a patient: each list
    (mine, in one department or not; the pool; a department's), each order, with and without a cursor, whole rows
    or only some columns, binds what Tortoise builds for two callers."""
    dialect = statements.dialect_of(FollowUpTask)
    lists: list[tuple[str, dict[str, Any]]] = [
        ("mine", {"departments": None, "department_id": None}),
        ("mine", {"departments": None, "department_id": uuid.uuid4()}),
        ("pool", {"departments": [uuid.uuid4()], "department_id": None}),
        ("department", {"departments": sorted(uuid.uuid4() for _ in range(3)), "department_id": None}),
    ]
    orders = [("due_on", False, lambda: date.today() - timedelta(days=uuid.uuid4().int % 90)),
              ("updated_at", True, lambda: NOW - timedelta(minutes=uuid.uuid4().int % 10_000, microseconds=3))]
    pruned = tuple(sorted({*follow_up.TASK_ROW_COLUMNS, "due_on", "updated_at", "status"}))
    for case in every_shape():
        if not case.reaches_anyone or len(case.department_ids) != 1:
            continue
        for (kind, listed), only in product(lists, (None, pruned)):  # whole rows, and W5's columns
            for column, descending, value in orders:
                refine = partial(follow_up._worklist_page, kind, column, descending, 51, only)
                shape, build = access.reached_statement(case, FollowUpTask,
                                                        ("worklist", kind, column, descending, only), refine)
                for cursor in (False, True):
                    for scoped in (case, similar(case)):
                        values = {**listed, **scoped.values(), "due_by": date.today() + timedelta(days=cursor),
                                  "owner_id": uuid.uuid4() if listed["departments"] is None else None,
                                  "after_value": value() if cursor else None,
                                  "after_id": uuid.uuid4() if cursor else None}
                        assert statements.bound(shape, build, dialect, **values) == rendered(
                            build(**values)), (case.reach, kind, column)
