"""Small builders for tests: an institution with one account per role, signed in over the API."""

from __future__ import annotations

import itertools
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tortoise.transactions import in_transaction

from audit import writer
from audit.chain import parse_subjects
from audit.events import RequestMeta
from core.passwords import HashParameters
from core.principal import ROLES
from models import AuditEvent, Department, Institution, Staff
from resolvers import institution as institutions
from resolvers import session
from resolvers.context import Context, Services

PASSWORD = "correct horse battery staple"
CLIENT_ADDRESS = "203.0.113.7"  # the test client's address (tests/conftest.py), as the audit trail records it
# Fast hashing in tests only (still argon2id): the production floor is checked in tests/app/test_startup.py.
TEST_HASHING = HashParameters(time_cost=1, memory_cost_kib=1024, parallelism=1)
_counter = itertools.count(1)


@dataclass
class Response:
    status: int
    body: dict[str, Any]

    @property
    def data(self) -> Any:
        return self.body.get("data")

    @property
    def errors(self) -> list[dict[str, Any]]:
        return self.body.get("errors") or []

    @property
    def codes(self) -> list[str]:
        return [e.get("extensions", {}).get("code") for e in self.errors]


async def gql(client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None,
              token: str | None = None, headers: dict[str, str] | None = None) -> Response:
    all_headers = {"content-type": "application/json", **(headers or {})}
    if token:
        all_headers["authorization"] = f"Bearer {token}"
    reply = await client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=all_headers)
    return Response(reply.status_code, reply.json() if reply.headers.get("content-type", "").startswith(
        "application/json") else {"raw": reply.text})


@dataclass
class Tenant:
    client: httpx.AsyncClient
    institution: Institution
    departments: dict[str, Department]
    staff_ids: dict[str, uuid.UUID] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> uuid.UUID:
        return self.institution.id

    async def call(self, role: str | None, query: str, **variables: Any) -> Response:
        return await gql(self.client, query, variables, self.tokens[role] if role else None)

    async def audit_events(self, **filters: Any) -> list[AuditEvent]:
        await writer.seal(self.id)  # as the service's readers do: events a busy head left waiting count too
        return await AuditEvent.filter(institution_id=self.id, **filters).order_by("seq")

    async def audit_count(self) -> int:
        await writer.seal(self.id)
        return await AuditEvent.filter(institution_id=self.id).count()


def subjects(event: AuditEvent) -> list[tuple[uuid.UUID | None, uuid.UUID | None]]:
    """The (record, patient) pairs an event is about: its own ids, or each of the alike reads it stands for."""
    return parse_subjects(event.subjects) or [(event.resource_id, event.patient_id)]


LOGIN = "mutation($email: String!, $password: String!) { login(email: $email, password: $password) { token } }"


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
    reply = await gql(client, LOGIN, {"email": email, "password": password})
    assert not reply.errors, reply.errors
    return reply.data["login"]["token"]


async def sign_in(services: Services, email: str, password: str = PASSWORD) -> str:
    """A token from the real sign-in (resolvers.session.login: the lockout check, argon2, the session row and
    its audit record, with the test client's address and user agent), without the HTTP and GraphQL layers
    around it, which the tests of the login mutation exercise. For fixtures: a third cheaper than ``login``."""
    return (await session.login(Context(services=services, request=_client_request()), email, password)).token


async def make_tenant(client: httpx.AsyncClient, services: Services, name: str = "Test Dental Clinic") -> Tenant:
    """An institution with departments A and B and one signed-in account per role.

    Nurse, doctor and department head belong to department A. The audit trail of a new tenant reads: the
    institution, the two departments, then each account's creation followed by its sign-in (tests count on it).
    """
    n = next(_counter)
    async with in_transaction():  # one commit for the whole set-up, which every test pays for
        institution = await institutions.create(services, f"{name} {n}", "dental")
        departments = {key: await institutions.create_department(institution, f"Department {key}") for key in "AB"}
        tenant = Tenant(client, institution, departments)
        for role in ROLES:
            email = f"{role}.{n}.{uuid.uuid4().hex[:6]}@careloop.test"
            in_a = [departments["A"]] if role in ("nurse", "doctor", "department_head") else []
            staff = await institutions.create_account(services, institution, email=email, name=f"{role} {n}",
                                                      password=PASSWORD, roles=[role], departments=in_a)
            tenant.staff_ids[role] = staff.id
            tenant.emails[role] = email
            tenant.tokens[role] = await open_session(services, staff)
    return tenant


async def open_session(services: Services, staff: Staff) -> str:
    """A token for a new account, as its sign-in opens it (the session row and its audit record, with the test
    client's address and user agent) without checking the password just set: the fixtures' sign-ins were a
    third of every test's set-up, and the sign-in itself is tested on its own (tests/api/test_auth.py)."""
    async with in_transaction():
        return (await session.open_session(Context(services=services, request=_client_request()),
                                           session.STAFF_ACCOUNTS, staff)).token


def _client_request() -> RequestMeta:
    """A request as the test client sends it (its address and user agent), for sign-ins made without HTTP."""
    return RequestMeta(uuid.uuid4().hex, CLIENT_ADDRESS, f"python-httpx/{httpx.__version__}")


CREATE_PATIENT = """
mutation($input: PatientCreateInput!, $anyway: Boolean! = false) {
  patientCreate(input: $input, registerAnyway: $anyway) {
    patient { id } returningPatient { id } matchedOn
  }
}"""


async def make_patient(tenant: Tenant, role: str = "front_desk", **fields: Any) -> uuid.UUID:
    """A patient registered through the API (by default by the front desk, in department A)."""
    data = {"fullName": f"Patient {next(_counter)}", "departmentId": str(tenant.departments["A"].id), **fields}
    reply = await tenant.call(role, CREATE_PATIENT, input=data, anyway=True)
    assert not reply.errors, reply.errors
    return uuid.UUID(reply.data["patientCreate"]["patient"]["id"])


def raw_sqlite_bytes(path: Path) -> bytes:
    """The database file and its WAL as stored, read by a child process.

    Opening and closing the file in this process would drop this process's POSIX locks on it,
    which SQLite relies on: a later connection may then see stale pages or a disk I/O error.
    """
    parts = [str(p) for p in (path, Path(f"{path}-wal"), Path(f"{path}-journal")) if p.exists()]
    copy = "import sys; [sys.stdout.buffer.write(open(p, 'rb').read()) for p in sys.argv[1:]]"
    return subprocess.run([sys.executable, "-c", copy, *parts], capture_output=True, check=True).stdout
