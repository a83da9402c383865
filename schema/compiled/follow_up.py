"""The plan entries of the follow-up worklist (bench W5): its tasks' fields read under the classes of their
patient's file (``access.open_journey_field`` once ``access.require_class`` allowed the class, on the task's
patient), the task's patient as the patient plan reads it, the page's fields as the schema types read them. The
task's owner, department, rule and attempts (loaded per task) are not compiled: a selection with them runs the
generic path."""

from __future__ import annotations

from typing import Any

from policies.fields import FOLLOW_UP_FIELD_CLASS
from resolvers import access
from schema.compiled.plan import Compiled, guarded, readers_of, with_patient
from schema.follow_up import _CONVERT, FollowUpTask, FollowUpTaskEdge, FollowUpWorklist, TaskSource


def _open(source: TaskSource, name: str) -> Any:
    view = source.view
    return access.open_journey_field(source.ctx, view.patient, "follow_up_task", view.row, name)


TYPES: dict[str, Compiled] = {
    **with_patient(readers_of(FollowUpTask, guarded(TaskSource.fields, FOLLOW_UP_FIELD_CLASS, _open, _CONVERT)),
                   lambda source: source.view.patient),
    **readers_of(FollowUpTaskEdge),
    **readers_of(FollowUpWorklist),
}
ROOTS: dict[type, str] = {FollowUpWorklist: "FollowUpWorklist"}
