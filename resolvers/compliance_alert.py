"""Compliance alerts: the sweep that tells an institution's compliance officers, through the staff notification
outbox, of what needs their eyes without their asking.

- an access anomaly: a staff member who read far more distinct patient files in a (UTC) day than the median of
  the colleagues holding the same role (``ANOMALY_FACTOR`` times it, and at least ``ANOMALY_MINIMUM`` files),
  reported the next day, once per staff member and day;
- a break-glass access still unreviewed ``UNREVIEWED_AFTER`` after it was opened, once per access.

One notification per alert, keyed by what it is about (the outbox's unique key), so a sweep run twice, or on two
nodes at once, schedules it once. The outbox delivers it to the institution's active compliance officers at the
time of sending, or its admins when it has none (``resolvers.notification.recipients``); its text names ids only
(a staff member's, an access's), never patient data.
"""

from __future__ import annotations

import statistics
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from tortoise.expressions import Subquery
from tortoise.functions import Count
from tortoise.queryset import QuerySet

from audit import writer
from models import AuditEvent, AuditPatientIndex, EmergencyAccess, Notification, RoleAssignment

ANOMALY_FACTOR = 3.0  # as accessAnomalies' default
ANOMALY_MINIMUM = 20
UNREVIEWED_AFTER = timedelta(hours=24)
KEYS_PER_STATEMENT = 10_000  # alert keys a statement names: well under both databases' 32,767 parameters
ANOMALY = "compliance.anomaly"
BREAK_GLASS = "compliance.break_glass"
KINDS = (ANOMALY, BREAK_GLASS)
OFFICER = "compliance_officer"
# A compliance officer's looks at one file's trail (its events, disclosures, access report): on the file's record,
# yet they read who dealt with the file, not the file.
TRAIL_LOOKS = ("audit_event", "audit_report", "disclosure")
TEXT = {  # ids only: the officer opens accessAnomalies or the review queue for the rest
    ANOMALY: "Access anomaly: staff member {subject} read unusually many patient files on {day} (UTC); "
             "see accessAnomalies.",
    BREAK_GLASS: "Break-glass access {subject} is still unreviewed after 24 hours; review it in emergencyAccesses.",
}


@dataclass(frozen=True)
class Anomaly:
    """A staff member who read far more distinct files than the role's median in a period."""

    institution_id: uuid.UUID
    staff_id: uuid.UUID
    role: str
    patients_read: int
    role_median: float
    peers: int


async def sweep(now: datetime | None = None) -> int:
    """Schedule the alerts due at ``now`` in every institution; returns how many were new."""
    moment = now or datetime.now(UTC)
    day = day_of(moment)
    since = datetime.combine(day, time(), tzinfo=UTC)
    alerts = [(a.institution_id, f"{ANOMALY}:{a.staff_id}:{day.isoformat()}", ANOMALY)
              for a in await anomalies(since, since + timedelta(days=1))]
    overdue = EmergencyAccess.filter(reviewed_at__isnull=True, created_at__lte=moment - UNREVIEWED_AFTER)
    alerts += [(uuid.UUID(str(institution)), f"{BREAK_GLASS}:{grant}", BREAK_GLASS)
               for institution, grant in await overdue.values_list("institution_id", "id")]
    return await _schedule(alerts, moment)


async def anomalies(since: datetime, until: datetime, *, factor: float = ANOMALY_FACTOR,
                    minimum: int = ANOMALY_MINIMUM, institution_id: uuid.UUID | None = None) -> list[Anomaly]:
    """Staff who read more distinct patient files in [since, until) than ``factor`` times the median of the
    colleagues holding the same role (the active ones, and those deactivated since who read files in the period,
    themselves included, and those whose role was revoked since), and at least ``minimum``: of one institution, or
    of every one. Looks at a file's trail are not file reads (``TRAIL_LOOKS``). Four statements whatever the number
    of institutions and staff (after sealing what waits in the inbox), and where someone read ``minimum`` files or
    more, one to find the looks at trails and one per institution where some were taken."""
    await (writer.seal(institution_id) if institution_id is not None else writer.seal_pending(older_than=0))
    reads = AuditPatientIndex.filter(actor_kind="staff", action="read", outcome="allowed",
                                     occurred_at__gte=since, occurred_at__lt=until)
    if institution_id is not None:
        reads = reads.filter(institution_id=institution_id)
    patients_read = await _files_read(reads)
    if not any(n >= minimum for n in patients_read.values()):
        return []
    patients_read = await _without_trail_looks(reads, patients_read, minimum, since, until)
    if not any(n >= minimum for n in patients_read.values()):
        return []
    institutions = sorted({inst for inst, _ in patients_read})
    holders: dict[tuple[str, str], list[str]] = defaultdict(list)
    admins: list[uuid.UUID] = []
    # The active holders of each role, and those deactivated since who read files in the period (found in review:
    # an account that read far more than its peers and was deactivated afterwards dropped out of the report).
    for inst, staff_id, role, active in await RoleAssignment.filter(institution_id__in=institutions).values_list(
            "institution_id", "staff_id", "role", "staff__is_active"):
        if active or (str(inst), str(staff_id)) in patients_read:
            holders[(str(inst), str(role))].append(str(staff_id))
        if role == "admin":
            admins.append(uuid.UUID(str(staff_id)))
    for inst, staff_id, role in await _revoked_since(since, patients_read, minimum, admins):
        if staff_id not in holders[(inst, role)]:
            holders[(inst, role)].append(staff_id)
    found = []
    for (inst, role), staff_ids in sorted(holders.items()):
        median = statistics.median(patients_read.get((inst, s), 0) for s in staff_ids)
        for staff_id in sorted(staff_ids):
            n = patients_read.get((inst, staff_id), 0)
            if n >= minimum and n > factor * max(median, 1.0):
                found.append(Anomaly(uuid.UUID(inst), uuid.UUID(staff_id), role, n, float(median), len(staff_ids)))
    return found


async def _files_read(reads: QuerySet[AuditPatientIndex]) -> dict[tuple[str, str], int]:
    """The distinct files each (institution, staff member) of ``reads`` read."""
    counted = await reads.annotate(n=Count("patient_id", distinct=True)).group_by(
        "institution_id", "actor_id").values_list("institution_id", "actor_id", "n")
    return {(str(inst), str(actor)): int(n) for inst, actor, n in counted}


async def _without_trail_looks(reads: QuerySet[AuditPatientIndex], patients_read: dict[tuple[str, str], int],
                               minimum: int, since: datetime, until: datetime) -> dict[tuple[str, str], int]:
    """``patients_read`` with the readers who looked at files' trails counted again without those looks (found in
    review: an officer investigating 21 files in a day stood out and alerted the others). The index holds no
    resource type, so the trail is asked, in the institutions where someone reached ``minimum`` only, and each
    institution where looks were taken is counted again, its looks excluded by their sequence numbers (unique
    within an institution only, so one institution at a time)."""
    institutions = sorted({uuid.UUID(inst) for (inst, _), n in patients_read.items() if n >= minimum})
    looks = AuditEvent.filter(institution_id__in=institutions, actor_kind="staff", action="read", outcome="allowed",
                              resource_type__in=TRAIL_LOOKS, occurred_at__gte=since, occurred_at__lt=until)
    lookers: dict[uuid.UUID, set[str]] = defaultdict(set)
    for inst, actor in await looks.distinct().values_list("institution_id", "actor_id"):
        lookers[uuid.UUID(str(inst))].add(str(actor))
    counted = dict(patients_read)
    for inst, actors in sorted(lookers.items()):
        for actor in actors:
            counted.pop((str(inst), actor), None)  # a reader of trails alone reads no file
        its_looks = looks.filter(institution_id=inst).values("seq")
        counted.update(await _files_read(reads.filter(institution_id=inst, actor_id__in=sorted(actors)).exclude(
            seq__in=Subquery(its_looks))))
    return counted


async def _revoked_since(since: datetime, patients_read: dict[tuple[str, str], int], minimum: int,
                         admins: list[uuid.UUID]) -> list[tuple[str, str, str]]:
    """(institution, staff, role) of each role revoked since ``since`` from someone who read at least ``minimum``
    files: a role held in the period, though no longer (found re-reading the notes: a nurse taken off the ward, or
    stopped for it, after reading far more files than her peers dropped out of the report). Each revocation is on
    the trail, its role the record's one field (``resolvers.staff.revoke_role``), its actor an admin: the admins'
    events are what is read (the trail's index by actor), not the whole period's. No statement when nobody read
    that many."""
    if not admins or not any(n >= minimum for n in patients_read.values()):
        return []
    revoked = await AuditEvent.filter(
        institution_id__in=sorted({uuid.UUID(inst) for inst, _ in patients_read}), actor_id__in=sorted(set(admins)),
        resource_type="role", action="delete", outcome="allowed", occurred_at__gte=since,
    ).values_list("institution_id", "resource_id", "fields_read")
    return [(str(inst), str(staff), str(role)) for inst, staff, role in revoked
            if patients_read.get((str(inst), str(staff)), 0) >= minimum]


def subject(key: str) -> uuid.UUID | None:
    """The staff member an anomaly alert's key names (``compliance.anomaly:<staff>:<day>``): not told of it when the
    alert goes to the admins (``resolvers.notification.recipients``)."""
    kind, _, rest = key.partition(":")
    return uuid.UUID(rest.split(":")[0]) if kind == ANOMALY else None


def text(kind: str, key: str) -> str:
    """The alert's words, from its key (``kind:subject[:day]``): ids and a date, nothing of a patient."""
    _, subject, *rest = key.split(":")
    return TEXT[kind].format(subject=subject, day=rest[0] if rest else "")


def is_compliance(kind: str) -> bool:
    return kind in KINDS


async def _schedule(alerts: Iterable[tuple[uuid.UUID, str, str]], moment: datetime) -> int:
    wanted = {key: (institution, kind) for institution, key, kind in alerts}
    if not wanted:
        return 0
    # A statement takes at most 32,767 parameters on either database, and every break-glass access left unreviewed
    # in any institution is wanted on every sweep (found in review: past that many, the sweep failed every time and
    # no institution heard of anything any more): the keys already scheduled are looked up KEYS_PER_STATEMENT at a
    # time.
    ordered = sorted(wanted)
    known: set[str] = set()
    for start in range(0, len(ordered), KEYS_PER_STATEMENT):
        known.update(str(key) for key in await Notification.filter(
            key__in=ordered[start:start + KEYS_PER_STATEMENT]).values_list("key", flat=True))
    fresh = [Notification(institution_id=institution, key=key, kind=kind, due_at=moment)
             for key, (institution, kind) in sorted(wanted.items()) if key not in known]
    if fresh:  # another node may have been first: the unique key keeps one
        await Notification.bulk_create(fresh, ignore_conflicts=True)
    return len(fresh)


def day_of(moment: datetime) -> date:
    """The UTC day whose anomalies a sweep at ``moment`` reports: the day before."""
    return moment.astimezone(UTC).date() - timedelta(days=1)
