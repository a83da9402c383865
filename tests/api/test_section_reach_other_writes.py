"""An account of two roles writes a patient's file (and reads its grants and survey invitations) only where a role of
the account holding that right reaches the file, not wherever another role of it does (as visits, alerts, plans, tasks,
appointments and the communication log: tests/api/test_section_reach.py, test_section_reach_changes.py).

Found in review, each went through before: a support agent (reads every file's contacts) who is also a nurse of
department B added, changed and deleted the contacts of every department's patients; a nurse of department B who also
works in finance (finds every client) recorded consents, opened tickets, invited patients to their accounts, issued
them password reset codes (the account's takeover) and closed their accounts, read their survey invitations and
entered their answers, renamed and moved their files; a doctor of B in finance granted partners access to any file
and read its grants; a head of department B in finance archived files of every department and revoked their partners'
grants. Refused now: FORBIDDEN on a file found (NOT_FOUND for a record named by id, as the surrounding code answers a
record out of reach), the refusal recorded, nothing written; the twin on department B's file goes through."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from models import CareTeamMember, PasswordReset, Patient, PatientAccount
from resolvers.context import Services
from tests.api.test_questionnaire_responses import written
from tests.api.test_section_reach_changes import account
from tests.factories import Response, Tenant, make_patient
from tests.partners import CONSENT_SET, GRANT_REVOKE, consent, grant, make_partner
from tests.patients import DEACTIVATE, INVITE, denials_since, mark, open_account, stored
from tests.surveys import GOOD, invited, questionnaire

CONTACT_CREATE = """mutation($pid: ID!, $input: ContactCreateInput!) {
  contactCreate(patientId: $pid, input: $input) { id } }"""
CONTACT_UPDATE = "mutation($id: ID!, $input: ContactUpdateInput!) { contactUpdate(id: $id, input: $input) { id } }"
CONTACT_DELETE = "mutation($id: ID!) { contactDelete(id: $id) }"
GRANTS = "query($id: ID!) { partnerGrants(patientId: $id) { edges { node { id } } } }"
RESET = "mutation($pid: ID!) { patientPasswordResetIssue(patientId: $pid) { code expiresAt } }"
INVITATIONS = "query($pid: ID!) { patientSurveyInvitations(patientId: $pid) { nodes { id status } } }"
ENTER = """mutation($id: ID!, $answers: [SurveyAnswerInput!]!, $source: EnteredSource!) {
  surveyResponseEnter(invitationId: $id, answers: $answers, source: $source) { responseId } }"""
ARCHIVE = "mutation($id: ID!) { patientArchive(id: $id) { id status } }"
UPDATE = "mutation($id: ID!, $input: PatientUpdateInput!) { patientUpdate(id: $id, input: $input) { id } }"
TICKET_CREATE = "mutation($input: TicketCreateInput!) { ticketCreate(input: $input) { id } }"
SPOUSE = {"name": "Wang Fang", "relationship": "SPOUSE", "phone": "13900139000"}


async def patient_in(tenant: Tenant, department: str) -> uuid.UUID:
    return await make_patient(tenant, departmentId=str(tenant.departments[department].id))


async def everything_stored(tenant: Tenant) -> tuple[Any, ...]:
    """Every row a refused write must leave as it was (tests.patients.stored), with the reset codes."""
    codes = await PasswordReset.filter(institution_id=tenant.id).order_by("id").values()
    return await stored(tenant), codes


async def refused_and_recorded(tenant: Tenant, call: Callable[[], Awaitable[Response]], code: str,
                               denial: tuple[str, str, str, Any, Any]) -> None:
    """The call answers ``code``, writes nothing, and leaves exactly ``denial`` on the trail."""
    before, seq = await everything_stored(tenant), await mark(tenant.id)
    refused = await call()
    assert refused.codes == [code], refused.errors
    assert await everything_stored(tenant) == before
    assert await denials_since(tenant.id, seq) == [denial]


# -- contacts: a support agent who is also a nurse of department B ----------------------------------------------------


async def agent_nurse(tenant: Tenant, services: Services, client: httpx.AsyncClient) -> str:
    """The support agent reads every file's contacts; the nurse of department B adds, changes and deletes them."""
    return await account(tenant, services, client, "agent_nurse", ["support_agent", "nurse"])


async def a_contact(tenant: Tenant, pid: uuid.UUID) -> str:
    reply = await tenant.call("front_desk", CONTACT_CREATE, pid=str(pid), input=SPOUSE)
    assert reply.errors == [], reply.errors
    return str(reply.data["contactCreate"]["id"])


CONTACT_WRITES: dict[str, Callable[[Tenant, str, uuid.UUID, str], Awaitable[Response]]] = {
    "create": lambda t, who, pid, contact: t.call(who, CONTACT_CREATE, pid=str(pid), input=SPOUSE),
    "update": lambda t, who, pid, contact: t.call(who, CONTACT_UPDATE, id=contact, input={"name": "Li Na"}),
    "delete": lambda t, who, pid, contact: t.call(who, CONTACT_DELETE, id=contact),
}


@pytest.mark.parametrize("act", sorted(CONTACT_WRITES))
async def test_contacts_change_only_where_a_role_that_changes_them_reaches(
        tenant: Tenant, services: Services, client: httpx.AsyncClient, act: str) -> None:
    who = await agent_nurse(tenant, services, client)
    in_a, in_b = await patient_in(tenant, "A"), await patient_in(tenant, "B")
    contact_a, contact_b = await a_contact(tenant, in_a), await a_contact(tenant, in_b)

    await refused_and_recorded(tenant, lambda: CONTACT_WRITES[act](tenant, who, in_a, contact_a), "FORBIDDEN", (
        act, "contact", "forbidden", None if act == "create" else uuid.UUID(contact_a), in_a))
    allowed = await CONTACT_WRITES[act](tenant, who, in_b, contact_b)
    assert allowed.errors == [], allowed.errors


# -- consents, grants, patient accounts: a nurse or doctor of department B who also works in finance ------------------


async def in_finance(tenant: Tenant, services: Services, client: httpx.AsyncClient, role: str) -> str:
    """Finance reaches every client (their identity only); ``role`` of department B holds the right."""
    return await account(tenant, services, client, f"finance_{role}", ["finance", role])


async def test_a_consent_is_recorded_only_where_a_role_that_records_consents_reaches(
        tenant: Tenant, services: Services, client: httpx.AsyncClient) -> None:
    who = await in_finance(tenant, services, client, "nurse")
    partner = await make_partner(tenant)
    in_a, in_b = await patient_in(tenant, "A"), await patient_in(tenant, "B")

    await refused_and_recorded(tenant, lambda: consent(tenant, in_a, partner, role=who), "FORBIDDEN",
                               ("consent", "partner_consent", "forbidden", None, in_a))
    assert (await tenant.call(who, CONSENT_SET, patientId=str(in_b), partnerId=str(partner),
                              granted=True)).errors == []


async def test_a_partner_is_granted_a_file_and_its_grants_read_only_where_a_granting_role_reaches(
        tenant: Tenant, services: Services, client: httpx.AsyncClient) -> None:
    who = await in_finance(tenant, services, client, "doctor")
    partner = await make_partner(tenant)
    in_a, in_b = await patient_in(tenant, "A"), await patient_in(tenant, "B")
    for pid in (in_a, in_b):
        assert (await consent(tenant, pid, partner)).errors == []

    await refused_and_recorded(tenant, lambda: grant(tenant, partner, in_a, role=who), "FORBIDDEN",
                               ("grant", "partner_grant", "forbidden", None, in_a))
    await refused_and_recorded(tenant, lambda: tenant.call(who, GRANTS, id=str(in_a)), "FORBIDDEN",
                               ("read", "partner_grant", "forbidden", None, in_a))
    assert (await grant(tenant, partner, in_b, role=who)).errors == []
    listed = await tenant.call(who, GRANTS, id=str(in_b))
    assert listed.errors == [] and len(listed.data["partnerGrants"]["edges"]) == 1, listed.errors


async def test_a_grant_is_revoked_only_where_a_revoking_role_reaches(
        tenant: Tenant, services: Services, client: httpx.AsyncClient) -> None:
    """A grant out of reach answers as a missing one, as it does a head of another department."""
    who = await in_finance(tenant, services, client, "department_head")
    partner = await make_partner(tenant)
    in_a, in_b = await patient_in(tenant, "A"), await patient_in(tenant, "B")
    grant_a, grant_b = [await granted_by_the_desk(tenant, partner, pid) for pid in (in_a, in_b)]

    await refused_and_recorded(tenant, lambda: tenant.call(who, GRANT_REVOKE, id=str(grant_a)), "NOT_FOUND",
                               ("grant", "partner_grant", "not_found", grant_a, None))
    revoked = await tenant.call(who, GRANT_REVOKE, id=str(grant_b))
    assert revoked.errors == [] and revoked.data["partnerGrantRevoke"]["standing"] is False, revoked.errors


async def granted_by_the_desk(tenant: Tenant, partner: uuid.UUID, pid: uuid.UUID) -> uuid.UUID:
    """The patient's consent and a grant, both recorded by the front desk (which reaches both departments)."""
    assert (await consent(tenant, pid, partner)).errors == []
    made = await grant(tenant, partner, pid, role="front_desk")
    assert made.errors == [], made.errors
    return uuid.UUID(made.data["partnerGrantCreate"]["id"])


ACCOUNT_WRITES: dict[str, tuple[str, str, str]] = {  # mutation -> (its query, the refusal's action and resource)
    "patientInvite": (INVITE, "create", "patient_invitation"),
    "patientPasswordResetIssue": (RESET, "create", "password_reset"),
    "patientAccountDeactivate": (DEACTIVATE, "update", "patient_account"),
}


@pytest.mark.parametrize("name", sorted(ACCOUNT_WRITES))
async def test_a_patients_account_is_kept_only_where_a_role_that_keeps_accounts_reaches(
        tenant: Tenant, services: Services, client: httpx.AsyncClient, name: str) -> None:
    """An invitation or a reset code is the key to the patient's account, and through it to their file."""
    who = await in_finance(tenant, services, client, "nurse")
    in_a, in_b = await patient_in(tenant, "A"), await patient_in(tenant, "B")
    if name != "patientInvite":  # the others act on an open account
        for pid in (in_a, in_b):
            await open_account(tenant, pid)
    query, action, resource = ACCOUNT_WRITES[name]
    variables = {"patientId": "pid"} if name != "patientPasswordResetIssue" else {"pid": "pid"}
    key = next(iter(variables))

    await refused_and_recorded(tenant, lambda: tenant.call(who, query, **{key: str(in_a)}), "FORBIDDEN",
                               (action, resource, "forbidden", None, in_a))
    assert (await tenant.call(who, query, **{key: str(in_b)})).errors == []
    if name == "patientAccountDeactivate":
        assert [row.is_active for row in await PatientAccount.filter(patient_id__in=[in_a, in_b])
                .order_by("patient_id")] == [pid != in_b for pid in sorted([in_a, in_b])]


# -- survey invitations and staff-entered answers ---------------------------------------------------------------------


async def test_invitations_are_read_and_answers_entered_only_where_a_role_allowed_to_reaches(
        tenant: Tenant, services: Services, client: httpx.AsyncClient) -> None:
    """An invitation named by id out of reach answers as a missing one (as to a nurse of another department)."""
    who = await in_finance(tenant, services, client, "nurse")
    q = await questionnaire(tenant)
    in_a, invitation_a, _ = await invited(tenant, services, q)
    in_b, invitation_b, _ = await invited(tenant, services, q, department="B")

    await refused_and_recorded(tenant, lambda: tenant.call(who, INVITATIONS, pid=str(in_a)), "FORBIDDEN",
                               ("read", "survey_invitation", "forbidden", None, in_a))
    answers_before = await written(tenant)
    await refused_and_recorded(tenant, lambda: tenant.call(who, ENTER, id=str(invitation_a.id), answers=GOOD,
                                                           source="PHONE"),
                               "NOT_FOUND", ("create", "survey_invitation", "not_found", invitation_a.id, None))
    assert (await written(tenant))[:3] == answers_before[:3]  # no response, answer or answered invitation

    listed = await tenant.call(who, INVITATIONS, pid=str(in_b))
    assert listed.errors == [] and [n["id"] for n in listed.data["patientSurveyInvitations"]["nodes"]] == [
        str(invitation_b.id)], listed.errors
    entered = await tenant.call(who, ENTER, id=str(invitation_b.id), answers=GOOD, source="PHONE")
    assert entered.errors == [], entered.errors


# -- the file itself: its fields, its archive, a ticket about it -----------------------------------------------------


@pytest.mark.parametrize("change", [{"fullName": "Renamed Elsewhere"}, {"departmentId": "B"}])
async def test_a_files_fields_are_written_only_where_a_role_that_writes_them_reaches(
        tenant: Tenant, services: Services, client: httpx.AsyncClient, change: dict[str, str]) -> None:
    """Finance reads the identity of every file; the nurse of B writes it on her files only (moving a file into
    department B would have opened it whole to her)."""
    who = await in_finance(tenant, services, client, "nurse")
    in_a, in_b = await patient_in(tenant, "A"), await patient_in(tenant, "B")
    data = {name: str(tenant.departments[value].id) if name == "departmentId" else value
            for name, value in change.items()}

    await refused_and_recorded(tenant, lambda: tenant.call(who, UPDATE, id=str(in_a), input=data), "FORBIDDEN",
                               ("update", "patient", "forbidden", in_a, in_a))
    assert (await tenant.call(who, UPDATE, id=str(in_b), input=data)).errors == []


async def test_a_file_is_archived_only_where_a_role_that_archives_reaches(
        tenant: Tenant, services: Services, client: httpx.AsyncClient) -> None:
    who = await in_finance(tenant, services, client, "department_head")
    in_a, in_b = await patient_in(tenant, "A"), await patient_in(tenant, "B")

    await refused_and_recorded(tenant, lambda: tenant.call(who, ARCHIVE, id=str(in_a)), "FORBIDDEN",
                               ("archive", "patient", "forbidden", in_a, in_a))
    archived = await tenant.call(who, ARCHIVE, id=str(in_b))
    assert archived.errors == [] and (await Patient.get(id=in_b)).status == "archived", archived.errors


async def test_a_ticket_about_a_patient_is_opened_only_where_a_role_that_opens_tickets_reaches(
        tenant: Tenant, services: Services, client: httpx.AsyncClient) -> None:
    who = await in_finance(tenant, services, client, "nurse")
    in_a, in_b = await patient_in(tenant, "A"), await patient_in(tenant, "B")

    def opened(pid: uuid.UUID) -> Awaitable[Response]:
        return tenant.call(who, TICKET_CREATE, input={"channel": "HOTLINE", "category": "ENQUIRY",
                                                      "subject": "Visiting hours", "patientId": str(pid)})

    await refused_and_recorded(tenant, lambda: opened(in_a), "FORBIDDEN", ("create", "ticket", "forbidden", None, in_a))
    assert (await opened(in_b)).errors == []


# -- registering a patient: the care team place goes by the reach of the roles that register ---------------------------


async def test_a_nurse_in_finance_registering_a_patient_of_another_department_joins_its_care_team(
        tenant: Tenant, services: Services, client: httpx.AsyncClient) -> None:
    """A nurse of department B registering a patient in department A joins the file's care team, to read back what
    she entered (as a nurse alone does). With finance as a second role (which registers no one, and finds every
    client's identity) she did not: finance's reach counted as hers for the nurse's right, and the clinical data she
    had just entered was out of her sight."""
    who = await in_finance(tenant, services, client, "nurse")
    pid = await make_patient(tenant, role=who, allergies="Penicillin")
    members = await CareTeamMember.filter(institution_id=tenant.id, patient_id=pid).values_list("staff_id", flat=True)
    assert len(members) == 1, members
    reply = await tenant.call(who, "query($id: ID!) { patient(id: $id) { allergies } }", id=str(pid))
    assert reply.errors == [] and reply.data["patient"]["allergies"] == "Penicillin", reply.errors
