"""The escalation outbox: scheduled with the change that causes it, delivered at least once.

A level-1 ticket notifies its department's heads when a pending target (first response or
resolution) reaches 80 % of its time and again when it is breached, at that exact moment. The
notification rows are written in the same transaction as the ticket change, so a crash or a
restart loses none; a unique key per (ticket, target, stage) means recomputing a ticket's SLA
moves or cancels a pending notification but never sends one twice. Delivery locks one row at
a time (``SKIP LOCKED`` on PostgreSQL, so several workers share the work) and marks it sent in
the same transaction: a crash between sending and committing sends it again (at least once). The
claiming, retrying and the delivery loop are ``resolvers.outbox``'s, shared with the message outbox.

Messages carry the ticket's id, level, stage and due time: never its text or the patient's data. The due time in
the text is the institution's local time with its UTC offset, "2026-12-06 18:30 (UTC+08:00)": the heads read it where
they work (found in review: it was UTC), and the offset tells apart the hour repeated when daylight saving ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol

from tortoise.exceptions import DoesNotExist
from tortoise.expressions import F
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from models import DepartmentMembership, Notification, RoleAssignment, Ticket
from models.ticket import OPEN_STATUSES
from resolvers import compliance_alert, institution, outbox

ESCALATED_LEVEL = 1
CONTRACT_TEXT = {  # ids and the case only: never terms or the client's data
    "contract.expiry.60": "Contract {id} ends within 60 days: renew it or let it end.",
    "contract.expiry.30": "Contract {id} ends within 30 days: renew it or let it end.",
    "contract.unsigned": "Contract {id} has a version sent for signature and still unsigned after 7 days.",
    "contract.suspended": "Contract {id} has been suspended for 30 days or more.",
}
CONTRACT_STAFF = ("finance", "admin")  # who hears of contracts: the finance staff, else the admins
COMPLIANCE_STAFF = (compliance_alert.OFFICER, "admin")  # of compliance alerts: the officers, else the admins
RETRY_AFTER = timedelta(minutes=1)
MAX_ATTEMPTS = 10


@dataclass(frozen=True)
class Message:
    notification_id: uuid.UUID
    institution_id: uuid.UUID
    kind: str  # ticket.response.at_risk, ticket.response.breached, ticket.resolution.at_risk, ...
    ticket_id: uuid.UUID | None
    recipients: Sequence[uuid.UUID]  # staff ids
    due_at: datetime
    contract_id: uuid.UUID | None = None
    key: str = ""  # the outbox key: a compliance alert's text names its subject from it
    zone: tzinfo = UTC  # the institution's: the text gives the due time in it


    @property
    def text(self) -> str:
        if compliance_alert.is_compliance(self.kind):
            return compliance_alert.text(self.kind, self.key)
        if self.contract_id is not None:
            return CONTRACT_TEXT.get(self.kind, "Contract {id} needs attention.").format(id=self.contract_id)
        stage = "is at risk of missing" if self.kind.endswith("at_risk") else "has missed"
        target = "first response" if ".response." in self.kind else "resolution"
        return f"Level-1 ticket {self.ticket_id} {stage} its {target} target, due {local_time(self.due_at, self.zone)}."


def local_time(moment: datetime, zone: tzinfo) -> str:
    """"2026-12-06 18:30 (UTC+08:00)": the minute as the clocks there show it (the seconds dropped, so a due time
    never reads later than it is), and always the offset, which no staff member has to know and which tells the
    two 02:30 of the night daylight saving ends apart ("(UTC+02:00)", then "(UTC+01:00)")."""
    local = moment.astimezone(zone)
    offset = local.utcoffset() or timedelta(0)
    hours, minutes = divmod(abs(int(offset.total_seconds())) // 60, 60)
    return f"{local:%Y-%m-%d %H:%M} (UTC{'-' if offset < timedelta(0) else '+'}{hours:02d}:{minutes:02d})"


class Sender(Protocol):
    async def send(self, message: Message) -> None: ...


# -- scheduling ----------------------------------------------------------------------------


def _wanted(ticket: Ticket) -> dict[str, datetime]:
    if ticket.level != ESCALATED_LEVEL or ticket.status not in OPEN_STATUSES:
        return {}
    wanted: dict[str, datetime] = {}
    for target, stopped, at_risk, due in (
        ("response", ticket.first_responded_at, ticket.response_at_risk_at, ticket.response_due_at),
        ("resolution", ticket.resolved_at, ticket.resolution_at_risk_at, ticket.resolution_due_at),
    ):
        if stopped is None:
            for stage, when in (("at_risk", at_risk), ("breached", due)):
                if when is not None:
                    wanted[f"ticket.{target}.{stage}"] = when
    return wanted


async def schedule_escalations(ticket: Ticket) -> None:
    """Bring a ticket's pending escalations in line with its due times (inside the caller's
    transaction; the caller wakes the deliverer once it has committed)."""
    await schedule_escalations_of([ticket])


async def schedule_escalations_of(tickets: Sequence[Ticket]) -> None:
    """``schedule_escalations`` for several tickets in at most four statements, however many they are: their rows read
    in one, those to move (or schedule again) moved in one, those no longer wanted cancelled in one, the missing ones
    created in one. A row sent once stays as sent: a breach is escalated exactly once.

    The rows are read locked, in id order: one the deliverer holds (``claim_one``) is read once it is sent, and left
    as sent, its due time as it was sent at (found in review: read unlocked as pending, a resolve then cancelled the
    row just sent, the record said both, and a change of targets moved its due time); the deliverer skips the rows
    held here (``SKIP LOCKED``) and claims only those not cancelled. So a row is sent or cancelled, never both. The
    ticket locks of every caller come first, so two schedulings of one ticket never take these locks at once."""
    wanted = {ticket.id: _wanted(ticket) for ticket in tickets}
    if not wanted:
        return
    now = datetime.now(UTC)
    known: dict[uuid.UUID, dict[str, Notification]] = {ticket_id: {} for ticket_id in wanted}
    for row in await Notification.filter(ticket_id__in=list(wanted)).order_by("id").select_for_update():
        known[row.ticket_id][row.kind] = row  # type: ignore[index]  # never null: filtered on it
    moved: list[Notification] = []
    cancelled: list[uuid.UUID] = []
    for ticket_id, rows in known.items():
        for kind, row in rows.items():
            if row.sent_at is not None:
                continue
            due = wanted[ticket_id].get(kind)
            if due is not None and (row.due_at != due or row.cancelled_at is not None):
                row.due_at, row.cancelled_at = due, None
                moved.append(row)
            elif due is None and row.cancelled_at is None:
                cancelled.append(row.id)
    if moved:
        await Notification.bulk_update(moved, fields=("due_at", "cancelled_at"))
    if cancelled:  # never one sent (read locked, above); the condition says so to whoever reads this statement
        await Notification.filter(id__in=cancelled, sent_at=None).update(cancelled_at=now)
    fresh = [Notification(institution_id=ticket.institution_id, key=f"{ticket.id}:{kind}", kind=kind,
                          ticket_id=ticket.id, due_at=when)
             for ticket in tickets for kind, when in wanted[ticket.id].items() if kind not in known[ticket.id]]
    if fresh:
        await Notification.bulk_create(fresh)


# -- delivery ------------------------------------------------------------------------------


def _pending() -> QuerySet[Notification]:
    return Notification.filter(sent_at=None, cancelled_at=None, attempts__lt=MAX_ATTEMPTS)


async def next_due() -> datetime | None:
    return await outbox.next_due(_pending())


async def deliver_due(sender: Sender, now: datetime | None = None) -> int:
    """Send everything due by ``now``, one notification per transaction; returns how many were sent."""
    sent = 0
    zones: dict[uuid.UUID, tzinfo] = {}  # each institution's read once a run, not once a notification
    while True:
        moment = now or datetime.now(UTC)
        async with in_transaction():
            row = await outbox.claim_one(_pending(), moment)
            if row is None:
                return sent
            message = Message(row.id, row.institution_id, row.kind, row.ticket_id, await recipients(row), row.due_at,
                              row.contract_id, row.key, await _zone(row.institution_id, zones))
            try:
                await sender.send(message)
            except Exception as exc:  # a failing sender must not stop the others: retry later
                await Notification.filter(id=row.id).update(
                    attempts=F("attempts") + 1, last_error=type(exc).__name__[:200],
                    due_at=moment + outbox.backoff(row.attempts + 1, first=RETRY_AFTER))
                continue
            await Notification.filter(id=row.id).update(sent_at=moment, attempts=F("attempts") + 1)
            sent += 1


async def _zone(institution_id: uuid.UUID, zones: dict[uuid.UUID, tzinfo]) -> tzinfo:
    """The institution's time zone, kept in ``zones``; UTC, named as such in the text, should the institution be gone:
    the message still goes out."""
    if institution_id not in zones:
        try:
            zones[institution_id] = await institution.zone(institution_id)
        except DoesNotExist:
            zones[institution_id] = UTC
    return zones[institution_id]


async def recipients(row: Notification) -> list[uuid.UUID]:
    """A ticket's: the active heads of its department at the time of sending (of every department without one), else
    the active admins.
    A contract's: the institution's active finance staff, else its active admins. A compliance alert's: the
    institution's active compliance officers, else its active admins (but the staff member it is about)."""
    if compliance_alert.is_compliance(row.kind):
        return await _first_holders(row.institution_id, COMPLIANCE_STAFF, but=compliance_alert.subject(row.key))
    if row.contract_id is not None:
        return await _first_holders(row.institution_id, CONTRACT_STAFF)
    ticket = await Ticket.get_or_none(id=row.ticket_id)
    heads = RoleAssignment.filter(institution_id=row.institution_id, role="department_head", staff__is_active=True)
    if ticket is not None and ticket.department_id is not None:  # else every department head
        members = DepartmentMembership.filter(institution_id=row.institution_id, department_id=ticket.department_id)
        heads = heads.filter(staff_id__in=await members.values_list("staff_id", flat=True))
    told = set(await heads.values_list("staff_id", flat=True))
    if not told:  # no active head (one left, none appointed yet): the admins, who appoint one (found in review: nobody)
        return await _first_holders(row.institution_id, ("admin",))
    return sorted(uuid.UUID(str(s)) for s in told)


async def _first_holders(institution_id: uuid.UUID, roles: tuple[str, ...], *,
                         but: uuid.UUID | None = None) -> list[uuid.UUID]:
    """The active holders of the first of ``roles`` that has any (``but`` left out): who is told when the role a
    notice is meant for has nobody (no finance staff, no compliance officer, a department without a head)."""
    for role in roles:
        holders = {uuid.UUID(str(s)) for s in await RoleAssignment.filter(
            institution_id=institution_id, role=role, staff__is_active=True).values_list("staff_id", flat=True)}
        holders.discard(but)
        if holders:
            return sorted(holders)
    return []
