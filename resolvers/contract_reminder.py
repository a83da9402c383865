"""Reminders a contract's calendar brings, to staff (the notification outbox) and to the client (the messages).

A sweep (run every few minutes by the app's worker, safe to run as often as wanted) finds, in each institution's
local dates:
- expiry and renewal: an active or suspended contract whose term ends in 60 days, and again in 30 (from that day
  on until the end: a sweep that first sees a contract inside 30 days sends only the 30-day one), unless its next
  term is already being prepared (a renewal not terminated);
- a version (the original or an amendment) sent for signature and still unsigned after ``UNSIGNED_AFTER``;
- a contract suspended for ``SUSPENDED_AFTER`` or longer.
None of a client whose file is closed (archived, deceased): a death ends the contracts and an archive waits for them,
but files closed before that exist.
Staff get a notification (``resolvers.notification`` names the recipients when it is delivered: the institution's
finance staff, else its admins). The client gets a message through the consent gate for the expiry and unsigned
cases, but not:
- of an expiry when the version in force renews itself (the message would tell them the service ends);
- of an unsigned version the client has signed already (someone else's signature is missing: staff's business).
Keys name the contract, the case and its threshold with the end date (an amendment that moves the end reminds
anew), the version, or the moment of the suspension; so a repeated sweep, or two workers at once, schedule
nothing twice. Each reminder is written in its own transaction with the contract's row locked and checked
unchanged since it was found (else the next sweep looks again). Messages carry the contract's number and a date,
never its terms or the client's health.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from tortoise.transactions import in_transaction

from models import Contract, ContractSignature, ContractVersion, Institution, Notification, Patient
from resolvers import access
from resolvers import communication as communications
from resolvers import contract as contracts

EXPIRY_DAYS = (60, 30)  # days before the end of the term (its last day), farthest first
UNSIGNED_AFTER = timedelta(days=7)
SUSPENDED_AFTER = timedelta(days=30)
SEND_AT = time(9)  # local time of the client's message, as the calendar's other reminders
RUNNING = ("active", "suspended")
SIGNING = ("draft", "sent", "active", "suspended")  # a contract whose sent version may still be signed
CLOSED = ("archived", "deceased")  # files whose contracts are reminded of nothing: nobody is cared for under them
BATCH = 500  # keys, contracts, versions or patients a statement names
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T = TypeVar("T")


@dataclass(frozen=True)
class Reminder:
    """One reminder the sweep found due: ``kind`` for staff, ``cause`` (if any) for the client."""

    contract: Contract
    kind: str  # contract.expiry.60, contract.expiry.30, contract.unsigned, contract.suspended
    key: str
    cause: str | None
    variables: dict[str, str]


def _now() -> datetime:
    return datetime.now(UTC)


async def sweep(now: datetime | None = None) -> int:
    """Schedule what falls due in every institution; returns how many reminders were scheduled."""
    moment = now or _now()
    zones = {uuid.UUID(str(i)): ZoneInfo(str(z)) for i, z in await Institution.all().values_list("id", "time_zone")}
    found: list[Reminder] = [*await _expiring(moment, zones), *await _unsigned(moment), *await _suspended(moment)]
    if not found:
        return 0
    known: set[str] = set()
    for keys in _chunks([r.key for r in found], BATCH):
        known |= {str(k) for k in await Notification.filter(key__in=keys).values_list("key", flat=True)}
    fresh = [r for r in found if r.key not in known]
    if not fresh:
        return 0
    names: dict[uuid.UUID, str] = {}
    closed: set[uuid.UUID] = set()
    for patient_ids in _chunks(list({r.contract.patient_id for r in fresh}), BATCH):
        for i, n, status in await Patient.filter(id__in=patient_ids).values_list("id", "full_name", "status"):
            names[uuid.UUID(str(i))] = str(n)
            if status in CLOSED:
                closed.add(uuid.UUID(str(i)))
    scheduled = 0
    for reminder in fresh:
        if reminder.contract.patient_id in closed:
            continue  # a closed file's contract (closed before a death ended them and an archive waited for them)
        contract = reminder.contract
        async with in_transaction():  # one reminder a transaction, under the contract's lock
            # The client's file held before the contract, as a merge locks it before it moves the contract: the
            # other way round, the message's wait for the file deadlocked with a merge at that moment (found in
            # review). A file merged since: the contract, read again under its lock, names the survivor.
            await access.current_files([contract.patient_id])
            locked = await Contract.filter(id=contract.id, institution_id=contract.institution_id
                                           ).select_for_update().first()
            if locked is None or locked.version != contract.version:
                continue  # changed since it was found: the next sweep looks again
            if await Notification.filter(institution_id=contract.institution_id, key=reminder.key).exists():
                continue  # another worker was first
            await Notification.create(institution_id=contract.institution_id, key=reminder.key, kind=reminder.kind,
                                      contract_id=contract.id, due_at=moment)
            if reminder.cause is not None:
                zone = zones[contract.institution_id]
                send_at = max(datetime.combine(moment.astimezone(zone).date(), SEND_AT, tzinfo=zone), moment)
                await communications.schedule(
                    contract.institution_id, key=reminder.key, cause=reminder.cause, patient_id=locked.patient_id,
                    due_at=send_at.astimezone(UTC),
                    variables={"patient_name": names.get(contract.patient_id, ""), **reminder.variables})
        scheduled += 1
    return scheduled


async def _expiring(now: datetime, zones: dict[uuid.UUID, ZoneInfo]) -> list[Reminder]:
    utc_today = now.astimezone(UTC).date()  # a local date is within a day of it: exact dates are checked below
    rows = await Contract.filter(status__in=RUNNING, end_on__gte=utc_today - timedelta(days=1),
                                 end_on__lte=utc_today + timedelta(days=max(EXPIRY_DAYS) + 1))
    due: list[tuple[Contract, int]] = []
    for row in rows:
        left = (row.end_on - now.astimezone(zones[row.institution_id]).date()).days
        within = [days for days in EXPIRY_DAYS if 0 <= left <= days]
        if within:
            due.append((row, min(within)))  # the nearest threshold: one found late skips the farther one
    renewing: set[uuid.UUID] = set()
    renews_itself: set[uuid.UUID] = set()
    for batch in _chunks(due, BATCH):  # a statement names at most a batch of contracts (32,767 parameters at most)
        ids = [row.id for row, _ in batch]
        renewing |= {uuid.UUID(str(i)) for i in await Contract.filter(renewal_of_id__in=ids).exclude(
            status__in=contracts.ENDED_EARLY).values_list("renewal_of_id", flat=True)}
        renews_itself |= await _renewing_itself([row for row, _ in batch])
    return [Reminder(row, f"contract.expiry.{days}", _key(row.id, f"expiry:{row.end_on.isoformat()}:{days}"),
                     None if row.id in renews_itself else "contract_expiry",
                     {"contract_number": row.number, "date": row.end_on.isoformat()})
            for row, days in due if row.id not in renewing]


async def _renewing_itself(rows: list[Contract]) -> set[uuid.UUID]:
    """The contracts whose version in force at the end of the term renews itself automatically (that version alone
    loaded, a row each, in one statement, and of it whether it renews itself: found in review, the whole row, long
    texts and all)."""
    in_force = await contracts.in_force_at_end([row.id for row in rows], columns=("auto_renew",))
    return {contract_id for contract_id, version in in_force.items() if version.auto_renew}


# What the unsigned reminder reads of a sent version: which contract and version, and the date its message names (found
# in review: the whole row, long texts and all).
UNSIGNED_COLUMNS = ("id", "contract_id", "number", "effective_on")


async def _unsigned(now: datetime) -> list[Reminder]:
    versions = await ContractVersion.filter(status="sent", sent_at__lte=now - UNSIGNED_AFTER).only(*UNSIGNED_COLUMNS)
    rows: dict[uuid.UUID, Contract] = {}
    client_signed: set[uuid.UUID] = set()
    for batch in _chunks(versions, BATCH):  # a statement names at most a batch of ids (32,767 parameters at most)
        rows |= {c.id: c for c in await Contract.filter(id__in=list({v.contract_id for v in batch}),
                                                        status__in=SIGNING)}
        client_signed |= {uuid.UUID(str(v)) for v in await ContractSignature.filter(
            contract_version_id__in=[v.id for v in batch], party="client").values_list("contract_version_id",
                                                                                       flat=True)}
    return [Reminder(rows[v.contract_id], "contract.unsigned", _key(v.contract_id, f"unsigned:{v.number}"),
                     None if v.id in client_signed else "contract_signature",
                     {"contract_number": rows[v.contract_id].number, "date": v.effective_on.isoformat()})
            for v in versions if v.contract_id in rows]


async def _suspended(now: datetime) -> list[Reminder]:
    rows = await Contract.filter(status="suspended", suspended_at__lte=now - SUSPENDED_AFTER)
    return [Reminder(row, "contract.suspended", _key(row.id, f"suspended:{_stamp(row.suspended_at)}"), None, {})
            for row in rows]


def _stamp(moment: datetime | None) -> str:
    """A suspension's moment in a key: each suspension (a contract may be resumed and suspended again) is its own."""
    return "" if moment is None else str((moment - EPOCH) // timedelta(microseconds=1))


def _chunks(items: list[T], size: int) -> Iterable[list[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _key(contract_id: uuid.UUID, what: str) -> str:
    """A reminder's key (notification and message): under the contract's prefix, which its end cancels."""
    return f"{communications.cause_prefix('contract', contract_id)}{what}"
