"""What the signed-in principal may do (``me { permissions }``), for a UI to shape its screens."""

from __future__ import annotations

from enum import Enum

import strawberry

from resolvers import permission as permissions
from resolvers.context import Context


@strawberry.enum(description="A class of a patient's fields: each is read and updated under its own permission.")
class PatientFieldClass(Enum):
    IDENTITY = strawberry.enum_value("identity", description="Name, sex, birth date, occupation, national id, "
                                                             "status, department, dates.")
    CONTACT = strawberry.enum_value("contact", description="Address, phones, e-mail, preferred channel and "
                                                           "language, contact consent.")
    CLINICAL = strawberry.enum_value("clinical", description="Medical history, diagnoses, allergies, current "
                                                             "medication; the clinical part of visits, plans and "
                                                             "follow-up.")
    NEEDS = strawberry.enum_value("needs", description="Diet and activity preferences, special needs.")
    INTERNAL = strawberry.enum_value("internal", description="Staff-only labels (segments, tags): never shown to "
                                                             "the patient or a partner.")


@strawberry.type(description="Whether you may read and update one class of a patient's fields, on the files "
                             "within your reach (a nurse: her care team's and her departments' patients; a "
                             "patient: their own file; a partner: the patients granted to it).")
class PatientFieldPermission:
    field_class: PatientFieldClass = strawberry.field(
        description="The class of the patient's fields this line is about (see PatientFieldClass for the fields of "
                    "each).")
    read: bool = strawberry.field(description="Whether fields of this class come back; when false they answer "
                                              "null with a FORBIDDEN error.")
    update: bool = strawberry.field(description="Whether patientUpdate (or, for a patient, the self-service "
                                                "update) accepts fields of this class.")


@strawberry.type(description="What you may do, computed from the same policy and decisions the server applies to "
                             "each request (a partner's token scopes narrow it). A UI hides what is not allowed; "
                             "the server still decides every request, and a record outside your reach still "
                             "answers NOT_FOUND.")
class Permissions:
    allowed: list[str] = strawberry.field(description="The (object, action) pairs of the policy you are allowed, "
                                                      "named `object:action` as token scopes are (`ticket:update`, "
                                                      "`patient:create`, `patient.clinical:read`), sorted. A pair "
                                                      "not listed is denied.")
    patient_fields: list[PatientFieldPermission] = strawberry.field(description="Each class of a patient's "
                                                                               "fields: whether you may read and "
                                                                               "update it.")


def of(ctx: Context) -> Permissions:
    found = permissions.of(ctx)
    return Permissions(
        allowed=list(found.allowed),
        patient_fields=[PatientFieldPermission(field_class=PatientFieldClass(p.field_class), read=p.read,
                                               update=p.update) for p in found.patient_fields])
