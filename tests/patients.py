"""Patients in the self-service portal, through the API: invite, open the account, sign in; and
what the portal's tests check around it (the audit trail since a mark, the stored state)."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from typing import Any

from audit import writer
from audit.writer import SYSTEM_CHAIN
from models import (
    AuditEvent,
    CareTeamMember,
    Contact,
    Department,
    EmergencyAccess,
    ImprovementItem,
    Partner,
    PartnerClient,
    PartnerConsent,
    PartnerGrant,
    Patient,
    PatientAccount,
    PatientInvitation,
    PatientSession,
    RoleAssignment,
    Staff,
    Ticket,
)
from tests.factories import Response, Tenant, gql, make_patient

PATIENT_PASSWORD = "my own long secret 42"
_counter = itertools.count(1)

INVITE = "mutation($patientId: ID!) { patientInvite(patientId: $patientId) { code expiresAt } }"
ACTIVATE = """mutation($code: String!, $email: String!, $password: String!) {
  patientAccountActivate(code: $code, email: $email, password: $password) { token expiresAt }
}"""
PATIENT_LOGIN = """mutation($email: String!, $password: String!) {
  patientLogin(email: $email, password: $password) { token expiresAt }
}"""
DEACTIVATE = "mutation($patientId: ID!) { patientAccountDeactivate(patientId: $patientId) }"
PARTNER_CREATE = "mutation($name: String!) { partnerCreate(name: $name) { id } }"
CONTACT_CREATE = """mutation($patientId: ID!, $input: ContactCreateInput!) {
  contactCreate(patientId: $patientId, input: $input) { id }
}"""

INVALID_CREDENTIALS = {"message": "Invalid email or password.", "extensions": {"code": "UNAUTHENTICATED"}}
BAD_TOKEN = {"message": "Invalid or expired token.", "extensions": {"code": "UNAUTHENTICATED"}}
BAD_CODE = {"message": "code: not a valid invitation (unknown, used or expired).",
            "extensions": {"code": "BAD_USER_INPUT", "field": "code", "reason": "invalid"}}
NOT_ALLOWED = {"message": "Not allowed.", "extensions": {"code": "FORBIDDEN"}}


@dataclass
class PatientUser:
    """A patient signed in to the portal: their file, their account and their token."""

    tenant: Tenant
    patient_id: uuid.UUID
    account_id: uuid.UUID
    email: str
    token: str

    async def call(self, query: str, **variables: Any) -> Response:
        return await gql(self.tenant.client, query, variables, self.token)


def new_email() -> str:
    return f"patient.{next(_counter)}.{uuid.uuid4().hex[:8]}@example.com"


async def invite(tenant: Tenant, patient_id: uuid.UUID, role: str = "front_desk") -> str:
    """A one-time invitation code for the patient's file, from a staff member."""
    reply = await tenant.call(role, INVITE, patientId=str(patient_id))
    assert not reply.errors, reply.errors
    return str(reply.data["patientInvite"]["code"])


async def activate(tenant: Tenant, code: str, email: str, password: str = PATIENT_PASSWORD) -> Response:
    """Open an account with an invitation code, anonymously."""
    return await gql(tenant.client, ACTIVATE, {"code": code, "email": email, "password": password})


async def patient_login(tenant: Tenant, email: str, password: str = PATIENT_PASSWORD) -> Response:
    return await gql(tenant.client, PATIENT_LOGIN, {"email": email, "password": password})


async def open_account(tenant: Tenant, patient_id: uuid.UUID | None = None, *, email: str | None = None,
                       **patient_fields: Any) -> PatientUser:
    """A patient (registered by the front desk unless given) invited and signed in to their account."""
    if patient_id is None:
        patient_id = await make_patient(tenant, **patient_fields)
    address = email or new_email()
    reply = await activate(tenant, await invite(tenant, patient_id), address)
    assert not reply.errors, reply.errors
    account = await PatientAccount.get(patient_id=patient_id)
    return PatientUser(tenant, patient_id, account.id, address, reply.data["patientAccountActivate"]["token"])


async def make_partner(tenant: Tenant, name: str | None = None) -> uuid.UUID:
    reply = await tenant.call("admin", PARTNER_CREATE, name=name or f"Partner {next(_counter)}")
    assert not reply.errors, reply.errors
    return uuid.UUID(reply.data["partnerCreate"]["id"])


async def make_contact(tenant: Tenant, patient_id: uuid.UUID, name: str, phone: str = "13600004444",
                       notes: str = "Lives nearby") -> uuid.UUID:
    reply = await tenant.call("front_desk", CONTACT_CREATE, patientId=str(patient_id),
                              input={"name": name, "relationship": "SPOUSE", "phone": phone, "notes": notes})
    assert not reply.errors, reply.errors
    return uuid.UUID(reply.data["contactCreate"]["id"])


# -- what the tests check -----------------------------------------------------------------------


def without_place(reply: Response) -> dict[str, Any]:
    """The reply with error paths and locations left out: what must not differ between two answers."""
    errors = [{k: retry_after_checked(v) if k == "extensions" else v for k, v in error.items()
               if k not in ("path", "locations")} for error in reply.errors]
    return {"data": reply.data, "errors": errors}


def retry_after_checked(extensions: dict[str, Any]) -> dict[str, Any]:
    """A lockout's ``retryAfter`` (seconds, counting down) as the range it must fall in, so errors compare whole."""
    seconds = extensions.get("retryAfter")
    if seconds is None:
        return extensions
    return {**extensions, "retryAfter": "1 to 900 s" if isinstance(seconds, int) and 0 < seconds <= 900 else seconds}


def errors_by_path(reply: Response) -> list[tuple[Any, str]]:
    return [(error.get("path"), error["extensions"]["code"]) for error in reply.errors]


async def mark(institution_id: uuid.UUID = SYSTEM_CHAIN) -> int:
    """The last sequence number of an institution's audit chain (0 when it is empty)."""
    await writer.seal(institution_id)
    last = await AuditEvent.filter(institution_id=institution_id).order_by("-seq").first()
    return 0 if last is None else int(last.seq)


async def events_since(institution_id: uuid.UUID, seq: int, **filters: Any) -> list[AuditEvent]:
    await writer.seal(institution_id)
    return await AuditEvent.filter(institution_id=institution_id, seq__gt=seq, **filters).order_by("seq")


async def denials_since(institution_id: uuid.UUID, seq: int) -> list[tuple[str, str, str, Any, Any]]:
    """(action, resource_type, reason, resource_id, patient_id) of each refusal since the mark."""
    return [(e.action, e.resource_type, e.reason, e.resource_id, e.patient_id)
            for e in await events_since(institution_id, seq, outcome="denied")]


async def stored(tenant: Tenant) -> dict[str, Any]:
    """Every row a patient's refused attempt must leave as it was, in one institution."""
    where = {"institution_id": tenant.id}
    tables = {"patients": Patient, "contacts": Contact, "consents": PartnerConsent, "grants": PartnerGrant,
              "partners": Partner, "clients": PartnerClient, "invitations": PatientInvitation,
              "accounts": PatientAccount, "sessions": PatientSession, "care_team": CareTeamMember,
              "emergency": EmergencyAccess, "tickets": Ticket, "improvements": ImprovementItem, "staff": Staff,
              "roles": RoleAssignment, "departments": Department}
    return {name: await model.filter(**where).order_by("id").values() for name, model in tables.items()}
