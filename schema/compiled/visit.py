"""The plan entries of a patient's visits (the root ``visits`` history and the single ``visit``): the visit's
fields read under the classes of its patient's file (``plan.journey``), its patient as the patient plan reads it,
the page's fields as the schema types read them. The visit's department, clinician, staff and codes (loaded per
visit) are not compiled: a selection with them runs the generic path."""

from __future__ import annotations

from policies.fields import VISIT_FIELD_CLASS
from schema.compiled.plan import Compiled, journey, readers_of
from schema.visit import _CONVERT, Visit, VisitConnection, VisitEdge, VisitSource

TYPES: dict[str, Compiled] = {
    **journey(Visit, VisitSource, "visit", VISIT_FIELD_CLASS, _CONVERT),
    **readers_of(VisitEdge),
    **readers_of(VisitConnection),
}
ROOTS: dict[type, str] = {VisitConnection: "VisitConnection", VisitSource: "Visit"}
