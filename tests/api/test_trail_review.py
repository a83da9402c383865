"""Gaps in the promise that every read and write of patient data is on the audit trail, found by a review of it
(docs/security.md, Audit): each test failed before its fix."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from app.senders import logging_senders
from models import Communication, Institution, SurveyInvitation
from resolvers import communication, reminder
from resolvers.context import Services
from tests import surveys
from tests.api import test_contract_reminders as contracts
from tests.api.test_appointments import BOOK, booking, make_schedule
from tests.contracts import active_contract, item_input, make_item
from tests.daytime import daytime_from
from tests.factories import Tenant, make_patient
from tests.partners import ALL_SCOPES, make_partnership

NOON = datetime(2030, 3, 12, 4, 0, tzinfo=UTC)
VISIT = """mutation($input: VisitCreateInput!) { visitCreate(input: $input) { id } }"""
PLAN = """mutation($input: CarePlanCreateInput!) { carePlanCreate(input: $input) { id } }"""
NAME, PHONE = "Zelda Quokkafield", "13812345678"
DISCLOSED = """query($filter: AuditEventFilter) { auditEvents(first: 20, filter: $filter) {
  nodes { action actorKind patientId resourceId fieldClasses fieldsRead fieldNames reason } } }"""
DISCLOSURES = """query($p: ID!, $from: DateTime!, $to: DateTime!) {
  disclosures(first: 20, patientId: $p, from: $from, to: $to) { nodes { patientId purpose grantId } } }"""
TEMPLATE_SET = """mutation($input: MessageTemplateInput!) { messageTemplateSet(input: $input) { version } }"""


class _Sender:
    """The texts handed to the gateway for one institution: the outbox sends every due message of the shared
    database, other tests' too (found by `make test`: this test saw another's message)."""

    def __init__(self, institution_id: uuid.UUID) -> None:
        self.institution_id = institution_id
        self.bodies: list[str] = []

    async def send(self, message: Any) -> str | None:
        if message.institution_id == self.institution_id:
            self.bodies.append(message.body)
        return None


async def _reminded(tenant: Tenant, services: Services) -> tuple[uuid.UUID, _Sender]:
    """A patient who takes SMS, sent an appointment reminder by the outbox."""
    pid = await make_patient(tenant, fullName=NAME, phone=PHONE, preferredLanguage="en", contactConsent=True,
                             contactChannels=["SMS"])
    async with in_transaction():
        await communication.schedule(tenant.id, key=f"test:{uuid.uuid4()}", cause="appointment_reminder",
                                     patient_id=pid, due_at=NOON - timedelta(minutes=1),
                                     variables={"date": "2030-03-13", "time": "09:30"})
    sender = _Sender(tenant.id)
    await communication.deliver_due(services, {"sms": sender}, now=NOON)
    return pid, sender


async def _disclosures(tenant: Tenant, pid: uuid.UUID) -> list[dict[str, Any]]:
    reply = await tenant.call("compliance_officer", DISCLOSED, filter={"patient": str(pid), "action": "DISCLOSE"})
    assert reply.errors == [], reply.errors
    assert NAME not in str(reply.body) and PHONE not in str(reply.body)
    return list(reply.data["auditEvents"]["nodes"])


# -- a message handed to a gateway discloses the name it greets the patient by ------------------------------------


async def test_a_message_that_names_the_patient_discloses_the_name_on_the_trail(tenant: Tenant,
                                                                                services: Services) -> None:
    """Every built-in text greets the patient by name: the gateway gets the name with the phone. The `disclose`
    record named the phone alone, so the trail said less left the institution than did."""
    pid, sender = await _reminded(tenant, services)

    [body] = sender.bodies
    assert body.startswith(f"{NAME}, a reminder")
    [disclosed] = await _disclosures(tenant, pid)
    assert (disclosed["actorKind"], disclosed["reason"]) == ("SYSTEM", "sent_sms")
    # and the appointment's date and time its text tells (``_reminded`` gives no clinician)
    assert sorted(disclosed["fieldsRead"]) == ["appointment.slot_start", "full_name", "phone"]
    assert sorted(disclosed["fieldNames"]) == ["Appointment.slotStart", "Patient.fullName", "Patient.phone"]
    assert sorted(disclosed["fieldClasses"]) == ["CONTACT", "IDENTITY"]


async def test_a_message_that_does_not_name_the_patient_discloses_the_address_alone(tenant: Tenant,
                                                                                    services: Services) -> None:
    """The twin: an institution's own text without `{patient_name}` (nor its time) hands the gateway the phone
    only."""
    reply = await tenant.call("admin", TEMPLATE_SET, input={
        "cause": "APPOINTMENT_REMINDER", "channel": "SMS", "language": "EN",
        "body": "A reminder of your appointment soon. {institution_name}"})
    assert reply.errors == [], reply.errors

    pid, sender = await _reminded(tenant, services)

    [body] = sender.bodies
    assert NAME not in body
    [disclosed] = await _disclosures(tenant, pid)
    assert (disclosed["fieldsRead"], disclosed["fieldClasses"]) == (["phone"], ["CONTACT"])


async def test_the_calendars_reminders_disclose_the_day_they_tell(tenant: Tenant, services: Services) -> None:
    """A re-visit reminder tells the visit's re-visit day, a pending-treatment reminder its care plan activity's, a
    follow-up call's announcement its task's: each record names that day's field (set up through the API, scheduled
    by the calendar's sweep, sent by the logging sender). No built-in text names the department: none is named."""
    pid = await make_patient(tenant, fullName=NAME, phone=PHONE, preferredLanguage="en", contactConsent=True,
                             contactChannels=["SMS"])
    tomorrow, department = date(2031, 5, 13), str(tenant.departments["A"].id)
    visit = await tenant.call("nurse", VISIT, input={
        "patientId": str(pid), "kind": "OUTPATIENT", "status": "FINISHED", "revisitOn": tomorrow.isoformat(),
        "departmentId": department, "startedAt": "2026-01-10T09:00:00+08:00", "endedAt": "2026-01-10T09:30:00+08:00"})
    plan = await tenant.call("nurse", PLAN, input={
        "patientId": str(pid), "title": "Cycle 2", "startsOn": "2031-05-12", "departmentId": department,
        "activities": [{"kind": "REHABILITATION", "dueOn": tomorrow.isoformat()},
                       {"kind": "CALL", "dueOn": tomorrow.isoformat()}]})
    assert visit.errors == [] and plan.errors == [], (visit.errors, plan.errors)
    morning = datetime(2031, 5, 12, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    await reminder.sweep_institution(await Institution.get(id=tenant.id), morning - timedelta(hours=2))
    await communication.deliver_due(services, logging_senders(), now=morning)

    causes = dict(await Communication.filter(patient_id=pid, status="sent").values_list("id", "cause"))
    told = {causes[uuid.UUID(r["resourceId"])]: sorted(r["fieldNames"]) for r in await _disclosures(tenant, pid)}
    assert told == {
        "revisit_reminder": ["Patient.fullName", "Patient.phone", "Visit.revisitOn"],
        "pending_treatment_reminder": ["CarePlanActivity.dueOn", "Patient.fullName", "Patient.phone"],
        "follow_up_announcement": ["FollowUpTask.dueOn", "Patient.fullName", "Patient.phone"]}


async def test_a_contract_expiry_discloses_the_contracts_number_and_end(tenant: Tenant, services: Services) -> None:
    """The contract reminder's built-in text tells the contract's number and the day its term ends."""
    pid = await contracts.client(tenant)
    end = datetime.now(UTC).date() + timedelta(days=90)
    contract = await contracts.active(tenant, pid, end=end)
    moment = contracts.local(end - timedelta(days=60))
    await contracts.sweep(moment)
    await communication.deliver_due(services, logging_senders(), now=moment + timedelta(minutes=1))

    [disclosed] = await _disclosures(tenant, pid)
    assert contract["number"] not in str(disclosed) and end.isoformat() not in str(disclosed)
    assert sorted(disclosed["fieldNames"]) == ["Contract.endOn", "Contract.number", "Patient.email",
                                               "Patient.fullName"]


async def test_a_survey_invitation_discloses_its_link_and_the_department_its_text_names(
        tenant: Tenant, services: Services) -> None:
    """The built-in invitation carries the survey's link (which answers as the patient) and names no department; an
    institution's own text with ``{department_name}`` tells the invitation's department, and its record says so."""
    q = await surveys.questionnaire(tenant)
    await surveys.trigger(tenant, q, delayHours=0)

    async def invitation_told() -> list[str]:
        pid = await surveys.texted(tenant, preferredLanguage="en", fullName=NAME)
        await surveys.finished_visit(tenant, pid)
        row = await SurveyInvitation.get(institution_id=tenant.id, patient_id=pid)
        message = await Communication.get(key=f"survey:{row.id}:invitation")
        await communication.deliver_due(services, logging_senders(), now=daytime_from(max(row.send_at,
                                                                                           message.due_at)))
        [disclosed] = await _disclosures(tenant, pid)
        return sorted(set(disclosed["fieldNames"]) - {"Patient.email", "Patient.phone"})  # the channel the gate took

    assert await invitation_told() == ["Patient.fullName", "SurveyInvitation.link"]
    reply = await tenant.call("admin", TEMPLATE_SET, input={
        "cause": "SURVEY_INVITATION", "channel": "ANY", "language": "EN", "subject": "Survey",
        "body": "{patient_name}, how was {department_name}? {survey_url}"})
    assert reply.errors == [], reply.errors
    assert await invitation_told() == ["Patient.fullName", "SurveyInvitation.departmentId", "SurveyInvitation.link"]

# -- a partner's read of a contract names the grant it was made under ---------------------------------------------


async def test_a_partners_read_of_a_contract_names_its_grant_in_the_accounting_of_disclosures(
        tenant: Tenant, services: Services) -> None:
    """A partner reads the contracts naming it of the patients granted to it (`contract:read`). The read was
    recorded with the role's rule alone, so the accounting of disclosures listed it without the grant and its
    purpose (HIPAA 164.528 asks for the purpose of every disclosure): each read of the file names the grant it
    is open under, and so does the contract's."""
    partnership = await make_partnership(tenant, [*ALL_SCOPES, "contract:read"], purpose="Home care visits")
    items = [item_input(await make_item(tenant), by_partner=True)]
    contract = await active_contract(tenant, services, patient_id=partnership.granted, items=items,
                                     partnerId=str(partnership.partner_id))
    before = datetime.now(UTC)

    listed = await partnership.call("{ contracts(first: 10) { nodes { id title } } }")
    one = await partnership.call("query($id: ID!) { contract(id: $id) { id status } }", id=contract["id"])

    assert [n["id"] for n in listed.data["contracts"]["nodes"]] == [contract["id"]] and one.errors == []
    reads = [e for e in await partnership.events(resource_type="contract") if e.occurred_at >= before]
    assert len(reads) == 2
    for read in reads:
        assert (read.action, read.patient_id) == ("read", partnership.granted)
        assert f"partner_grant {partnership.grant_id}" in read.policy_rule
    period = {"from": before.isoformat(), "to": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()}
    reply = await tenant.call("compliance_officer", DISCLOSURES, p=str(partnership.granted), **period)
    assert reply.errors == [], reply.errors
    assert [(d["purpose"], d["grantId"]) for d in reply.data["disclosures"]["nodes"]] == [
        ("Home care visits", str(partnership.grant_id))] * 2


async def test_a_staff_read_of_the_same_contract_names_no_grant_and_is_no_disclosure(
        tenant: Tenant, services: Services) -> None:
    """The twin: finance reads every contract by its role; its read names no grant and the accounting lists none."""
    partnership = await make_partnership(tenant, [*ALL_SCOPES, "contract:read"])
    contract = await active_contract(tenant, services, patient_id=partnership.granted,
                                     partnerId=str(partnership.partner_id))
    before = datetime.now(UTC)

    one = await tenant.call("finance", "query($id: ID!) { contract(id: $id) { id status } }", id=contract["id"])

    assert one.errors == [], one.errors
    [read] = [e for e in await tenant.audit_events(actor_id=tenant.staff_ids["finance"], resource_type="contract")
              if e.occurred_at >= before]
    assert (read.patient_id, read.policy_rule) == (partnership.granted, "finance, *, contract, read, allow")
    period = {"from": before.isoformat(), "to": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()}
    reply = await tenant.call("compliance_officer", DISCLOSURES, p=str(partnership.granted), **period)
    assert reply.errors == [] and reply.data["disclosures"]["nodes"] == []


# -- a partner's look at the tickets it opened names the grant too --------------------------------------------------

PARTNER_TICKET = """mutation($input: PartnerTicketCreateInput!) { partnerTicketCreate(input: $input) { id } }"""
TICKET_SCOPES = [*ALL_SCOPES, "ticket:create", "partner_ticket:read"]
PARTNER_TICKETS = "{ partnerTickets(first: 10) { nodes { id subject description status } } }"


async def test_a_partners_read_of_the_tickets_it_opened_names_its_grant(tenant: Tenant) -> None:
    """`partnerTickets` shows a partner what it reported about a granted patient and where the ticket stands: a
    read of the patient's ticket, recorded with the role's rule alone, so listed in the accounting of disclosures
    without grant or purpose. Now it names the grant the file is open under, as the ticket's creation did."""
    partnership = await make_partnership(tenant, TICKET_SCOPES)
    made = await partnership.call(PARTNER_TICKET, input={"patientId": str(partnership.granted), "category": "COMPLAINT",
                                                         "subject": "Fell at home", "description": "Bruised hip"})
    assert made.errors == [], made.errors
    before = datetime.now(UTC)

    listed = await partnership.call(PARTNER_TICKETS)

    assert [n["subject"] for n in listed.data["partnerTickets"]["nodes"]] == ["Fell at home"]
    [read] = [e for e in await partnership.events(resource_type="ticket", action="read") if e.occurred_at >= before]
    assert read.patient_id == partnership.granted
    assert read.policy_rule.startswith(f"partner_grant {partnership.grant_id}; ")
    assert "Fell at home" not in str(read.__dict__) and "Bruised" not in str(read.__dict__)
    period = {"from": before.isoformat(), "to": (datetime.now(UTC) + timedelta(minutes=1)).isoformat()}
    reply = await tenant.call("compliance_officer", DISCLOSURES, p=str(partnership.granted), **period)
    assert [(d["purpose"], d["grantId"]) for d in reply.data["disclosures"]["nodes"]] == [
        ("Home care visits", str(partnership.grant_id))]


async def test_once_the_grant_is_revoked_a_partners_look_at_its_ticket_names_none(tenant: Tenant) -> None:
    """The twin: a partner follows its reports after the grant ended; no grant is named then."""
    from tests.partners import GRANT_REVOKE
    partnership = await make_partnership(tenant, TICKET_SCOPES)
    made = await partnership.call(PARTNER_TICKET, input={"patientId": str(partnership.granted), "category": "COMPLAINT",
                                                         "subject": "Fell at home"})
    assert made.errors == [], made.errors
    assert (await tenant.call("nurse", GRANT_REVOKE, id=str(partnership.grant_id))).errors == []
    before = datetime.now(UTC)

    listed = await partnership.call(PARTNER_TICKETS)

    assert [n["subject"] for n in listed.data["partnerTickets"]["nodes"]] == ["Fell at home"]
    [read] = [e for e in await partnership.events(resource_type="ticket", action="read") if e.occurred_at >= before]
    assert "partner_grant" not in read.policy_rule


# -- a refused merge is on the trail of both files it named ---------------------------------------------------------

MERGE = """mutation($s: ID!, $d: ID!) { patientMerge(survivorId: $s, duplicateId: $d) { survivor { id } } }"""


async def test_a_refused_merge_is_on_both_files_trail(tenant: Tenant) -> None:
    """A merge is on the trail of both files; its refusal (a role without `patient: merge`) named the duplicate alone,
    so the survivor's access report did not show that someone tried to merge another file into it. Now the one
    refusal names both (its subjects), and each file's trail holds it."""
    survivor, duplicate = await make_patient(tenant), await make_patient(tenant)

    reply = await tenant.call("nurse", MERGE, s=str(survivor), d=str(duplicate))

    assert reply.codes == ["FORBIDDEN"] and reply.data["patientMerge"] is None
    [denial] = await tenant.audit_events(outcome="denied")
    assert (denial.action, denial.reason, denial.actor_id) == ("update", "forbidden", tenant.staff_ids["nurse"])
    assert sorted(denial.subjects.split()) == sorted([f"{duplicate}/{duplicate}", f"{survivor}/{survivor}"])
    assert await tenant.audit_events(outcome="allowed", action="update") == []
    for pid in (survivor, duplicate):
        reply = await tenant.call("compliance_officer", DISCLOSED, filter={"patient": str(pid), "outcome": "DENIED"})
        assert [(e["action"], e["reason"]) for e in reply.data["auditEvents"]["nodes"]] == [("UPDATE", "forbidden")]


async def test_a_refused_merge_names_no_file_that_is_not_the_institutions(tenant: Tenant,
                                                                          other_tenant: Tenant) -> None:
    """The twin: an id of another institution's file, or of none, is recorded as the id asked for, naming no file
    (as a refused look-up does), so no other institution's patient enters this trail's per-patient index."""
    survivor, elsewhere, nowhere = await make_patient(tenant), await make_patient(other_tenant), uuid.uuid4()

    reply = await tenant.call("nurse", MERGE, s=str(survivor), d=str(elsewhere))
    again = await tenant.call("nurse", MERGE, s=str(nowhere), d=str(survivor))

    assert reply.codes == again.codes == ["FORBIDDEN"]
    denials = await tenant.audit_events(outcome="denied")
    assert sorted(" ".join(sorted(e.subjects.split())) for e in denials) == sorted([
        " ".join(sorted([f"{elsewhere}/-", f"{survivor}/{survivor}"])),
        " ".join(sorted([f"{nowhere}/-", f"{survivor}/{survivor}"]))])
    assert await other_tenant.audit_events(outcome="denied") == []
    reply = await tenant.call("compliance_officer", DISCLOSED, filter={"patient": str(elsewhere)})
    assert reply.data["auditEvents"]["nodes"] == []


async def test_a_partners_refused_merge_names_no_file(tenant: Tenant) -> None:
    """A partner reads its own trail (`partnerAccessLog`): its refusal names no file, so the log tells it nothing of
    which ids are the institution's files (as a refused look-up of a file, `access.find_patient`)."""
    partnership = await make_partnership(tenant)

    reply = await partnership.call(MERGE, s=str(partnership.granted), d=str(partnership.other))

    assert reply.codes == ["FORBIDDEN"]
    [denial] = await partnership.events(outcome="denied")
    assert sorted(denial.subjects.split()) == sorted([f"{partnership.granted}/-", f"{partnership.other}/-"])


# -- a message about an appointment discloses the appointment's fields its text fills in --------------------------

APPOINTMENT_FIELDS = ["Appointment.slotStart", "Patient.fullName", "Patient.phone", "Schedule.clinician"]


async def _booked_and_reminded(tenant: Tenant, services: Services) -> uuid.UUID:
    """A patient who takes SMS, booked through the API on a clinician's schedule; the confirmation and the reminder
    (due the day before) sent by the outbox through the logging gateway (the sender development runs with)."""
    pid = await make_patient(tenant, fullName=NAME, phone=PHONE, preferredLanguage="en", contactConsent=True,
                             contactChannels=["SMS"])
    slot = datetime(2030, 3, 14, 1, 30, tzinfo=UTC)  # 09:30 in Shanghai
    reply = await tenant.call("front_desk", BOOK, input=booking(await make_schedule(tenant), pid, slot.isoformat()))
    assert reply.errors == [], reply.errors
    await communication.deliver_due(services, logging_senders(), now=slot - timedelta(hours=20))
    sent = await Communication.filter(patient_id=pid).values_list("cause", "status", "channel")
    assert sorted(sent) == [("appointment_confirmation", "sent", "sms"), ("appointment_reminder", "sent", "sms")]
    return pid


async def test_an_appointment_reminder_discloses_the_time_and_clinician_it_tells(tenant: Tenant,
                                                                                 services: Services) -> None:
    """The built-in reminder tells the appointment's date and time and its clinician's name with the patient's: the
    `disclose` record named the name and the phone alone, so the trail said less left the institution than did."""
    pid = await _booked_and_reminded(tenant, services)

    disclosed = await _disclosures(tenant, pid)  # the confirmation's and the reminder's
    assert len(disclosed) == 2 and "2030" not in str(disclosed) and "09:30" not in str(disclosed)
    for record in disclosed:
        assert sorted(record["fieldNames"]) == APPOINTMENT_FIELDS
        assert sorted(record["fieldsRead"]) == ["appointment.slot_start", "full_name", "phone", "schedule.clinician"]
        assert sorted(record["fieldClasses"]) == ["CONTACT", "IDENTITY"]


async def test_an_appointment_text_without_its_time_discloses_none_of_the_appointments_fields(
        tenant: Tenant, services: Services) -> None:
    """The twin: an institution's own reminder that names neither the time nor the clinician hands the gateway the
    name and the phone only; one that names the place and department discloses those (the schedule's)."""
    reply = await tenant.call("admin", TEMPLATE_SET, input={
        "cause": "APPOINTMENT_REMINDER", "channel": "SMS", "language": "EN",
        "body": "{patient_name}, a reminder: you have an appointment soon. {institution_name}"})
    assert reply.errors == [], reply.errors

    pid = await _booked_and_reminded(tenant, services)

    own, built_in = sorted(await _disclosures(tenant, pid), key=lambda record: len(record["fieldNames"]))
    assert sorted(built_in["fieldNames"]) == APPOINTMENT_FIELDS  # the confirmation's text is still the built-in one
    assert sorted(own["fieldNames"]) == ["Patient.fullName", "Patient.phone"]


async def test_an_appointment_text_naming_the_place_and_department_discloses_them(tenant: Tenant,
                                                                                  services: Services) -> None:
    reply = await tenant.call("admin", TEMPLATE_SET, input={
        "cause": "APPOINTMENT_REMINDER", "channel": "SMS", "language": "EN",
        "body": "See you at {place}, {department_name}."})
    assert reply.errors == [], reply.errors

    pid = await _booked_and_reminded(tenant, services)

    own = [r for r in await _disclosures(tenant, pid) if "Patient.fullName" not in r["fieldNames"]]
    assert [sorted(r["fieldNames"]) for r in own] == [["Patient.phone", "Schedule.department", "Schedule.name"]]
    assert sorted(own[0]["fieldClasses"]) == ["CONTACT", "IDENTITY"]


# -- a greeting discloses what its day tells: a birthday the birth date, a holiday nothing of the file -------------

BIRTHDAY = datetime(2031, 10, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai, on a day greeted as a holiday too
CALENDAR = """mutation($input: BusinessCalendarInput!) { businessCalendarSet(input: $input) { levels { level } } }"""


async def _greetings_told(tenant: Tenant, services: Services) -> dict[str, list[str]]:
    """A patient born on the day who takes SMS and greetings, greeted by the calendar's sweep (set up through the API)
    and sent by the logging sender: the fields each greeting's `disclose` record names, by its cause."""
    pid = await make_patient(tenant, fullName=NAME, phone=PHONE, preferredLanguage="en", birthDate="1960-10-01",
                             contactConsent=True, contactChannels=["SMS"], contactPurposes=["CARE", "GREETING"])
    await reminder.sweep_institution(await Institution.get(id=tenant.id), BIRTHDAY - timedelta(hours=2))
    await communication.deliver_due(services, logging_senders(), now=BIRTHDAY)

    causes = dict(await Communication.filter(patient_id=pid, status="sent").values_list("id", "cause"))
    disclosed = await _disclosures(tenant, pid)
    assert "1960" not in str(disclosed)
    return {causes[uuid.UUID(r["resourceId"])]: sorted(r["fieldNames"]) for r in disclosed}


async def _holidays(tenant: Tenant) -> None:
    reply = await tenant.call("admin", CALENDAR, input={
        "week": [{"weekday": d, "intervals": [{"start": "08:00", "end": "17:00"}]} for d in range(1, 6)],
        "holidays": ["2031-10-01", "2031-10-02"]})
    assert reply.errors == [], reply.errors


async def _own_text(tenant: Tenant, cause: str, body: str, channel: str = "SMS") -> None:
    reply = await tenant.call("admin", TEMPLATE_SET, input={"cause": cause, "channel": channel, "language": "EN",
                                                            "subject": "Hello", "body": body})
    assert reply.errors == [], reply.errors


async def test_a_birthday_greeting_discloses_the_birth_date_its_day_tells_and_a_holidays_none(
        tenant: Tenant, services: Services) -> None:
    """"Happy birthday" sent on the day tells the day and month of birth, though the built-in text has no `{date}`:
    its record named the name and the phone alone. The twin: the holiday greeting of the same day names no birth
    date, even in an institution's own text that fills in `{date}` (the day it is sent)."""
    await _holidays(tenant)
    await _own_text(tenant, "HOLIDAY_GREETING", "{patient_name}, happy {holiday_name} on {date}! {unsubscribe_url}")

    assert await _greetings_told(tenant, services) == {
        "birthday_greeting": ["Patient.birthDate", "Patient.fullName", "Patient.phone"],
        "holiday_greeting": ["Patient.fullName", "Patient.phone"]}


async def test_an_institutions_own_birthday_text_discloses_the_birth_date_with_or_without_its_date(
        tenant: Tenant, services: Services) -> None:
    """The birthday entry of ``SLOT_FIELDS``: an institution's own text that fills in `{date}` (the birthday of this
    year) names the birth date, once; one that leaves `{date}` and the name out still names it, the day telling it."""
    await _own_text(tenant, "BIRTHDAY_GREETING", "{patient_name}, happy birthday on {date}! {unsubscribe_url}")
    assert await _greetings_told(tenant, services) == {
        "birthday_greeting": ["Patient.birthDate", "Patient.fullName", "Patient.phone"]}

    await _own_text(tenant, "BIRTHDAY_GREETING", "Happy birthday from all of us! {unsubscribe_url}")
    assert await _greetings_told(tenant, services) == {"birthday_greeting": ["Patient.birthDate", "Patient.phone"]}


# -- a contract's signature reminder discloses the contract's number and the version's day its text tells ---------


async def _signature_told(tenant: Tenant, services: Services) -> list[str]:
    """A client who takes e-mail, sent a contract through the API that the institution signed and they did not: the
    fields the `disclose` record of the reminder to sign (7 days on, sent by the logging sender) names."""
    pid = await make_patient(tenant, fullName=NAME, preferredLanguage="en", contactConsent=True,
                             contactChannels=["EMAIL"], contactPurposes=["CARE"],
                             email=f"c{uuid.uuid4().hex[:8]}@example.org")
    contract = await contracts.sent(tenant, pid)
    await contracts.sign(tenant, contract, "INSTITUTION")
    moment = datetime.fromisoformat(contract["versions"][0]["sentAt"]) + contracts.contract_reminder.UNSIGNED_AFTER
    await contracts.sweep(moment)
    [row] = await Communication.filter(patient_id=pid, cause="contract_signature")
    await communication.deliver_due(services, logging_senders(), now=max(row.due_at, moment))

    [disclosed] = await _disclosures(tenant, pid)
    assert contract["number"] not in str(disclosed)
    return sorted(disclosed["fieldNames"])


async def test_a_contract_signature_reminder_discloses_the_number_and_the_day_its_text_tells(
        tenant: Tenant, services: Services) -> None:
    """The contract-signature entry of ``SLOT_FIELDS``: the built-in text tells the contract's number (no day); an
    institution's own text with `{date}` tells the version's effective day too; one without either slot, neither."""
    assert await _signature_told(tenant, services) == ["Contract.number", "Patient.email", "Patient.fullName"]

    await _own_text(tenant, "CONTRACT_SIGNATURE", "{patient_name}, contract {contract_number} from {date} awaits "
                                                  "your signature.", channel="ANY")
    assert await _signature_told(tenant, services) == ["Contract.number", "ContractVersion.effectiveOn",
                                                       "Patient.email", "Patient.fullName"]

    await _own_text(tenant, "CONTRACT_SIGNATURE", "{patient_name}, a document awaits your signature.", channel="ANY")
    assert await _signature_told(tenant, services) == ["Patient.email", "Patient.fullName"]
