"""Answers to a questionnaire (FHIR QuestionnaireResponse), one row per answered item beside them.

Reports aggregate ``response_answer`` in SQL (means, counts per value, sums of squares) per questionnaire
version, department, clinician and month, so no report loads the responses into Python.

An anonymous response has no patient, visit, ticket or invitation, and only its month: nothing the API
can return leads back to the patient. An identified one names them. Free text is sealed.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.indexes import Index

from models.base import TenantModel
from models.fields import EncryptedField

if TYPE_CHECKING:
    from models.institution import Department
    from models.patient import Patient
    from models.questionnaire import Questionnaire
    from models.staff import Staff
    from models.survey import SurveyInvitation
    from models.ticket import Ticket
    from models.visit import Visit

RESPONSE_SOURCES = ("portal", "link", "phone", "paper", "staff")


class QuestionnaireResponse(TenantModel):
    questionnaire: fields.ForeignKeyRelation[Questionnaire] = fields.ForeignKeyField(
        "careloop.Questionnaire", related_name="responses", on_delete=fields.RESTRICT)
    invitation: fields.ForeignKeyNullableRelation[SurveyInvitation] = fields.ForeignKeyField(
        "careloop.SurveyInvitation", related_name="responses", null=True, unique=True, on_delete=fields.RESTRICT)
    patient: fields.ForeignKeyNullableRelation[Patient] = fields.ForeignKeyField(
        "careloop.Patient", related_name="questionnaire_responses", null=True, on_delete=fields.RESTRICT)
    visit: fields.ForeignKeyNullableRelation[Visit] = fields.ForeignKeyField(
        "careloop.Visit", related_name="questionnaire_responses", null=True, on_delete=fields.RESTRICT)
    ticket: fields.ForeignKeyNullableRelation[Ticket] = fields.ForeignKeyField(
        "careloop.Ticket", related_name="questionnaire_responses", null=True, on_delete=fields.RESTRICT)
    department: fields.ForeignKeyNullableRelation[Department] = fields.ForeignKeyField(
        "careloop.Department", related_name="questionnaire_responses", null=True, on_delete=fields.RESTRICT)
    clinician: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="responses_about", null=True, on_delete=fields.RESTRICT)
    entered_by: fields.ForeignKeyNullableRelation[Staff] = fields.ForeignKeyField(
        "careloop.Staff", related_name="responses_entered", null=True, on_delete=fields.RESTRICT)
    follow_up_ticket: fields.ForeignKeyNullableRelation[Ticket] = fields.ForeignKeyField(
        "careloop.Ticket", related_name="from_responses", null=True, on_delete=fields.RESTRICT)  # a low score's
    source = fields.CharField(max_length=8)
    month = fields.CharField(max_length=7)  # "2026-12", local: what reports group by
    score = fields.FloatField(null=True)  # as the questionnaire's scoring defines it, 0-100
    satisfied = fields.BooleanField(null=True)
    nps = fields.SmallIntField(null=True)  # the 0-10 answer of the NPS item
    csat = fields.SmallIntField(null=True)  # the 1-5 answer of the CSAT item
    low = fields.BooleanField(default=False)  # under the questionnaire's threshold: the loop is closed

    if TYPE_CHECKING:
        questionnaire_id: uuid.UUID
        invitation_id: uuid.UUID | None
        patient_id: uuid.UUID | None
        visit_id: uuid.UUID | None
        ticket_id: uuid.UUID | None
        department_id: uuid.UUID | None
        clinician_id: uuid.UUID | None
        entered_by_id: uuid.UUID | None
        follow_up_ticket_id: uuid.UUID | None

    class Meta:
        table = "questionnaire_response"
        # the last: ``questionnaireResponses``' page, newest first, read in its order (migration 0039;
        # tests/api/test_list_indexes.py)
        indexes = (Index(fields=("institution_id", "questionnaire_id", "department_id", "month")),
                   Index(fields=("institution_id", "patient_id")),
                   Index(fields=("institution_id", "id")))


class ResponseAnswer(TenantModel):
    """One item's answer: a number (Likert, 0-10, CSAT, yes = 1 / no = 0), a choice, or sealed text."""

    response: fields.ForeignKeyRelation[QuestionnaireResponse] = fields.ForeignKeyField(
        "careloop.QuestionnaireResponse", related_name="answers", on_delete=fields.RESTRICT)
    questionnaire: fields.ForeignKeyRelation[Questionnaire] = fields.ForeignKeyField(
        "careloop.Questionnaire", related_name="answers", on_delete=fields.RESTRICT)
    department: fields.ForeignKeyNullableRelation[Department] = fields.ForeignKeyField(
        "careloop.Department", related_name="response_answers", null=True, on_delete=fields.RESTRICT)
    month = fields.CharField(max_length=7)
    link_id = fields.CharField(max_length=40)
    number = fields.FloatField(null=True)
    choice = fields.CharField(max_length=40, null=True)  # one per row: a multiple choice has several rows
    text = EncryptedField(null=True)

    if TYPE_CHECKING:
        response_id: uuid.UUID
        questionnaire_id: uuid.UUID
        department_id: uuid.UUID | None

    class Meta:
        table = "response_answer"
        # Covers the reports' counts per value: read in GROUP BY order from the index alone, no table row
        # and no sort (resolvers.survey_report; bench R1).
        indexes = (Index(fields=("institution_id", "questionnaire_id", "department_id", "month", "link_id", "number",
                                 "choice")),
                   Index(fields=("institution_id", "response_id")))
