"""Reading the trail by patient: the events about a patient are those its per-patient index names.

An event about several patients (a page of patient reads) names them in ``subjects``, not ``patient_id``;
``AuditPatientIndex`` holds one row per event and patient, so a patient's events are found by index, not by
scanning subject lists.
"""

from __future__ import annotations

import uuid

from tortoise.expressions import Q, Subquery

from models import AuditPatientIndex


def about_patient(institution_id: uuid.UUID, patient_id: uuid.UUID) -> Q:
    """The condition on ``AuditEvent`` rows of the institution that are about the patient."""
    sequence_numbers = AuditPatientIndex.filter(institution_id=institution_id, patient_id=patient_id).values("seq")
    return Q(institution_id=institution_id) & Q(seq__in=Subquery(sequence_numbers))


def about_record(record_id: uuid.UUID) -> Q:
    """The condition on ``AuditEvent`` rows about one record: named alone, or among an event's subjects."""
    return Q(resource_id=record_id) | Q(subjects__contains=f"{record_id}/")
