"""The plan entries of the patient list and the single patient (with their contacts): the patient's fields read
under their classes (``access.open_patient_field`` once ``access.require_class`` allowed the class), its
contacts awaited as their resolver or completed in batch (``Batch``: its check, then a page's contacts in one
load), the connection's and the contacts' fields as the schema types read them."""

from __future__ import annotations

from typing import Any

from policies.fields import PATIENT_FIELD_CLASS
from resolvers import access
from schema.common import PageInfo
from schema.compiled.plan import Batch, Compiled, guarded, readers_of, with_patient
from schema.contact import Contact, ContactSource
from schema.patient import (
    _CONVERT,
    Patient,
    PatientConnection,
    PatientEdge,
    PatientSource,
    contacts_asked,
    contacts_checked,
    contacts_of_page,
)


def _open(source: PatientSource, name: str) -> Any:
    return access.open_patient_field(source.ctx, source.view, name)


TYPES: dict[str, Compiled] = {
    **with_patient(readers_of(Patient, guarded(PatientSource.fields, PATIENT_FIELD_CLASS, _open, _CONVERT),
                              loads=("contacts",),
                              batches={"contacts": Batch(contacts_checked, contacts_of_page, contacts_asked)}),
                   lambda source: source.view),
    **readers_of(Contact),
    **readers_of(PatientConnection),
    **readers_of(PatientEdge),
    **readers_of(PageInfo),
}
# The root fields' results completed from a plan, and the type each is completed as
ROOTS: dict[type, str] = {PatientConnection: "PatientConnection", PatientSource: "Patient"}
# The same for a mutation's result: the contact contactCreate and contactUpdate wrote
WRITTEN: dict[type, str] = {ContactSource: "Contact"}
