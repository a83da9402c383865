"""The plan entries of the follow-up worklist (bench W5): its tasks' fields read under the classes of their
patient's file (``plan.journey``), the task's patient as the patient plan reads it, the page's fields as the
schema types read them. The task's owner, department, rule and attempts (loaded per task) are not compiled: a
selection with them runs the generic path."""

from __future__ import annotations

from policies.fields import FOLLOW_UP_FIELD_CLASS
from schema.compiled.plan import Compiled, journey, readers_of
from schema.follow_up import _CONVERT, FollowUpTask, FollowUpTaskEdge, FollowUpWorklist, TaskSource

TYPES: dict[str, Compiled] = {
    **journey(FollowUpTask, TaskSource, "follow_up_task", FOLLOW_UP_FIELD_CLASS, _CONVERT),
    **readers_of(FollowUpTaskEdge),
    **readers_of(FollowUpWorklist),
}
ROOTS: dict[type, str] = {FollowUpWorklist: "FollowUpWorklist"}
