"""Follow-up (随访): the rules that turn a finished visit into calls, and the tasks they create.

A finished visit is matched against the institution's rules in force ("after a procedure in
department D: calls on day 1, 7 and 30"); each match creates one task per offset, due on that local
date in the institution's zone (moved to the next working day when the rule says so), owned by the
patient's responsible nurse or left in the department's pool. A task keeps the rule version it came
from. Deceased and archived patients are never called: nothing is created for them and their open
tasks are cancelled at once.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.expressions import Q, Subquery

from audit import writer
from audit.events import Action
from core.ids import uuid7
from models import CareTeamMember, FollowUpRule, FollowUpTask, Patient, RoleAssignment, Visit, VisitCode
from models.fields import tags_from_db, tags_to_db
from models.follow_up import OPEN_TASK_STATUSES
from policies.guard import Decision
from resolvers import access
from resolvers import institution as institutions
from resolvers import sla as slas
from resolvers.context import Context


@dataclass(frozen=True)
class DefaultRule:
    name: str
    visit_kind: str
    offsets_days: tuple[int, ...]


# The seeds' schedule: after surgery calls on day 1, 7 and 30; after outpatient treatment on day 3;
# after an inpatient stay on day 7 and 30.
DEFAULT_RULES = (
    DefaultRule("After surgery or a procedure", "procedure", (1, 7, 30)),
    DefaultRule("After outpatient treatment", "outpatient", (3,)),
    DefaultRule("After discharge from an inpatient stay", "inpatient", (7, 30)),
)
SYSTEM_DECISION = Decision(True, "follow-up rule")


async def ensure_default_rules(ctx: Context) -> None:
    """An institution without any rule gets the defaults once (inside the caller's transaction)."""
    if await FollowUpRule.exists(institution_id=ctx.institution_id):
        return
    for default in DEFAULT_RULES:
        rule = await FollowUpRule.create(
            id=uuid7(), institution_id=ctx.institution_id, rule_key=uuid.uuid4(), name=default.name,
            visit_kind=default.visit_kind, offsets_days=tags_to_db([str(d) for d in default.offsets_days]))
        await writer.append([access.write_record(ctx, Action.CREATE, "follow_up_rule", rule.id,
                                                 fields=frozenset({"name", "visit_kind", "offsets_days"}),
                                                 decision=SYSTEM_DECISION)])


def offsets(rule: FollowUpRule) -> list[int]:
    return sorted(int(d) for d in tags_from_db(rule.offsets_days))


async def on_visit_finished(ctx: Context, visit: Visit) -> list[FollowUpTask]:
    """The tasks the rules in force ask for after this visit (inside the visit's transaction)."""
    patient = await Patient.get(id=visit.patient_id, institution_id=ctx.institution_id)
    if patient.status != "active":
        return []
    await ensure_default_rules(ctx)
    rules = [rule for rule in await _rules_in_force(ctx, visit) if await _procedure_matches(ctx, rule, visit)]
    if not rules:
        return []
    zone = await institutions.zone(ctx.institution_id)
    business = (await slas.settings(ctx)).business
    finished_on = (visit.ended_at or datetime.now(UTC)).astimezone(zone).date()
    department_id = visit.department_id or patient.department_id
    owner_id = None
    tasks = []
    for rule in rules:
        if rule.assignee == "responsible_nurse" and owner_id is None:
            owner_id = await responsible_nurse(ctx, patient.id, department_id)
        for days in offsets(rule):
            due = finished_on + timedelta(days=days)
            if rule.skip_closed_days:
                due = business.working_day_from(due)
            tasks.append(FollowUpTask(
                id=uuid7(), institution_id=ctx.institution_id, patient_id=patient.id, visit_id=visit.id,
                rule_id=rule.id, due_on=due, department_id=department_id,
                owner_id=owner_id if rule.assignee == "responsible_nurse" else None))
    await FollowUpTask.bulk_create(tasks)
    await writer.append([access.write_record(ctx, Action.CREATE, "follow_up_task", task.id, patient_id=patient.id,
                                             fields=frozenset({"due_on", "owner", "rule"}), decision=SYSTEM_DECISION)
                         for task in tasks])
    return tasks


async def _rules_in_force(ctx: Context, visit: Visit) -> list[FollowUpRule]:
    query = FollowUpRule.filter(institution_id=ctx.institution_id, active=True)
    query = query.filter(Q(visit_kind__isnull=True) | Q(visit_kind=visit.kind))
    query = query.filter(Q(department_id__isnull=True) | Q(department_id=visit.department_id))
    return list(await query.order_by("id"))


async def _procedure_matches(ctx: Context, rule: FollowUpRule, visit: Visit) -> bool:
    if rule.procedure_code is None:
        return True
    digest = access.blind_index(ctx, "code", f"service|{rule.procedure_code}")
    return await VisitCode.exists(institution_id=ctx.institution_id, visit_id=visit.id, code_bidx=digest)


async def responsible_nurse(ctx: Context, patient_id: uuid.UUID, department_id: uuid.UUID | None) -> uuid.UUID | None:
    """The patient's care-team nurse (the first assigned); None leaves the task in the department's pool."""
    nurses = Subquery(RoleAssignment.filter(institution_id=ctx.institution_id, role="nurse").values("staff_id"))
    member = await (CareTeamMember.filter(institution_id=ctx.institution_id, patient_id=patient_id,
                                          staff_id__in=nurses)
                    .order_by("created_at").first())
    return None if member is None else member.staff_id


async def cancel_for_visit(ctx: Context, visit_id: uuid.UUID) -> int:
    """A cancelled visit (or a no-show) is followed up by nobody (inside the caller's transaction)."""
    return await _cancel(ctx, Q(visit_id=visit_id))


async def cancel_for_patient(ctx: Context, patient_id: uuid.UUID) -> int:
    """An archived or deceased patient is never called (inside the caller's transaction)."""
    return await _cancel(ctx, Q(patient_id=patient_id))


async def _cancel(ctx: Context, which: Q) -> int:
    open_tasks = FollowUpTask.filter(which, institution_id=ctx.institution_id, status__in=OPEN_TASK_STATUSES)
    rows = await open_tasks.values_list("id", "patient_id")
    if not rows:
        return 0
    await FollowUpTask.filter(id__in=[task_id for task_id, _ in rows]).update(
        status="cancelled", updated_at=datetime.now(UTC))
    await writer.append([access.write_record(ctx, Action.UPDATE, "follow_up_task", task_id, patient_id=patient_id,
                                             fields=frozenset({"status"}), decision=SYSTEM_DECISION)
                         for task_id, patient_id in rows])
    return len(rows)
