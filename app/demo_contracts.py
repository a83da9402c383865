"""The demo institution's home-care contracts (issue 15), through careloop's own resolvers.

The story: finance keeps a catalogue of home-care services (each with its standard, unit, frequencies and price;
two prices rose 120 days ago, so the contracts signed before keep the old ones). Over the past year the clinic
signed service contracts with its home-care clients, one in every state a contract takes:
- DRAFT: prepared by the front desk two days ago, starting in two weeks;
- SENT: the portal's demo patient's contract, sent nine days ago and signed by the institution: the client's
  signature awaits in the portal (and the reminder sweep finds it unsigned after seven days);
- ACTIVE: since the first of the month three months ago, signed by the institution, the client, a guarantor when
  the client has a contact, and the care partner that delivers the bathing; the nurse's home-care visits carry the
  items' codes, a few short of what was contracted (delivered against contracted shows the shortfall);
- ACTIVE with a signed amendment: version 2 (two nursing visits a week, rehabilitation added) in force since the
  first of last month, the nursing kept at the price signed in version 1;
- ACTIVE and ending in 45 days (the report's "expiring", the 60-day reminder);
- SUSPENDED forty days ago (the 30-day reminder);
- TERMINATED twenty days ago;
- EXPIRED: a term that ended 35 days ago, ended by the expiry sweep the next night;
- RENEWED: a term that ended 16 days ago whose next term (contractRenew) was signed before, and that next term,
  ACTIVE.
As in ``app.demo_appointments``, the past is replayed: each step runs with the contract resolvers' clock set to its
moment (dates relative to today in the institution's zone, so the story is the same whenever it is told). Fewer
patients than contracts: the patients are taken in turn.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from app.demo_clock import clocked
from models import Contact, ContractVersion, Patient, Staff
from resolvers import contract as contracts
from resolvers import contract_report as reports
from resolvers import contract_signature as signatures
from resolvers import institution as institutions
from resolvers import service_item as service_items
from resolvers import visit as visits
from resolvers.context import Context, Services

# The resolvers whose clock the story sets (each reads the present through its module's ``_now``).
CLOCKED = (contracts, signatures)
CURRENCY = "CNY"
PRICE_CHANGE_DAYS = 120  # the catalogue's prices rose this many days ago
RIGHTS_DUTIES = (
    "The institution delivers the contracted services to the standards stated, by qualified staff or its care "
    "partner, at the agreed times, and tells the client in advance of any change. The client (or the guarantor) "
    "pays each billing period in advance, gives access to the home at the agreed times and tells the institution "
    "of any absence two days ahead. Both parties keep to the contract; either may end it with the notice stated.")

# code, name, standard, unit, frequencies, price (and the price since the rise, if it rose)
CATALOGUE = (
    ("HC-NURSE", "居家护理上门服务 Home nursing visit",
     "A registered nurse at home: vital signs, medication check, wound and skin care; 60 minutes.", "visit",
     ("weekly", "per_visit"), "180.00", "198.00"),
    ("HC-BATH", "助浴服务 Assisted bathing",
     "Two trained carers: safe transfer, bathing and skin check with the client's own products; 45 minutes.",
     "session", ("weekly", "per_visit"), "120.00", "135.00"),
    ("HC-REHAB", "康复训练 Rehabilitation session",
     "A rehabilitation therapist: exercises to the therapy plan, mobility aids checked; 45 minutes.", "session",
     ("weekly", "per_visit"), "150.00", None),
    ("HC-MEAL", "助餐配送 Meal delivery",
     "A hot lunch to the dietary needs on file, delivered between 11:00 and 12:30.", "day", ("daily", "monthly"),
     "25.00", None),
    ("HC-CHECK", "月度健康评估 Monthly health review",
     "A nurse's review at home: weight, blood pressure, fall risk and the care plan; 90 minutes.", "visit",
     ("monthly",), "300.00", None),
)


@dataclass
class Story:
    finance: Context
    desk: Context
    nurse: Context
    zone: ZoneInfo
    now: datetime
    items: dict[str, uuid.UUID]  # code -> catalogue item

    @property
    def today(self) -> date:
        return self.now.astimezone(self.zone).date()

    def day(self, offset: int) -> date:
        return self.today + timedelta(days=offset)

    def at(self, day: date, hour: int = 10, minute: int = 0) -> datetime:
        """A local moment, never after now (today's steps run at most at the present)."""
        return min(datetime.combine(day, time(hour, minute), self.zone).astimezone(UTC), self.now)

    def month_start(self, back: int) -> date:
        """The first day of the month ``back`` months before this one."""
        return reports.add_months(self.today.replace(day=1), -back)

    def lines(self, *wanted: tuple[str, int, str] | tuple[str, int, str, bool]) -> list[dict[str, Any]]:
        return [{"service_item_id": self.items[w[0]], "quantity": w[1], "frequency": w[2],
                 "delivered_by_partner": bool(w[3]) if len(w) > 3 else False} for w in wanted]


async def seed(services: Services, *, acting_as: Callable[[Services, Staff, str, frozenset[uuid.UUID]],
                                                          Awaitable[Context]],
               staff: dict[str, Staff], nurse: Context, desk: Context, patient_ids: list[uuid.UUID],
               partner_id: uuid.UUID | None = None, now: datetime | None = None) -> None:
    """The catalogue and the contracts of the story. ``staff``: the demo accounts by role (finance runs the
    contracts); ``nurse``: who delivers (reaches every department); ``partner_id``: the care partner, granted the
    first patients' files, delivering the bathing of the active contract; ``now``: the present it is told at."""
    finance = await acting_as(services, staff["finance"], "finance", frozenset())
    story = Story(finance, desk, nurse, await institutions.zone(finance.institution_id), now or datetime.now(UTC),
                  {})
    await _catalogue(story)
    if not patient_ids:
        return
    patients = [patient_ids[k % len(patient_ids)] for k in range(10)]  # the portal's demo patient first
    # In the order they were drawn up, so that their numbers run with the calendar.
    await _expired(services, story, patients[6])
    renewing = await _first_term(story, patients[7])
    await _ending_soon(story, patients[8])
    await _terminated(story, patients[5])
    await _amended(story, patients[3])
    await _suspended(story, patients[4])
    await _active_with_deliveries(story, patients[2], partner_id)
    await _renewed(services, story, renewing)
    await _sent(story, patients[0])
    await _draft(story, patients[1])


# -- the catalogue ---------------------------------------------------------------------------------------------


async def _catalogue(story: Story) -> None:
    """Five home-care services; the nursing and bathing prices rose ``PRICE_CHANGE_DAYS`` ago."""
    first = story.day(-3 * 365)
    for code, name, standard, unit, frequencies, price, risen in CATALOGUE:
        item = await service_items.create(story.finance, code, name, {
            "description": name.split(" ", 1)[1], "standard": standard, "unit": unit,
            "frequencies": list(frequencies)})
        await service_items.add_price(story.finance, item.id, price, CURRENCY, first)
        if risen is not None:
            await service_items.add_price(story.finance, item.id, risen, CURRENCY, story.day(-PRICE_CHANGE_DAYS))
        story.items[code] = item.id


# -- one contract in each state --------------------------------------------------------------------------------


async def _create(story: Story, ctx: Context, patient_id: uuid.UUID, start: date, end: date,
                  items: list[dict[str, Any]], **more: Any) -> uuid.UUID:
    data = {"patient_id": patient_id, "title": "居家养老服务合同 Home care service agreement", "currency": CURRENCY,
            "start_on": start, "end_on": end, "billing_period": "monthly", "notice_days": 30,
            "rights_duties": RIGHTS_DUTIES, "items": items, **more}
    if ctx is story.finance and "deposit" not in data:
        data["deposit"] = {"amount": "2000.00", "currency": CURRENCY}
    return (await contracts.create(ctx, data)).row.id


async def _send(story: Story, contract_id: uuid.UUID) -> ContractVersion:
    view = await contracts.get(story.finance, contract_id)
    await signatures.send(story.finance, contract_id, view.row.version)
    return await ContractVersion.filter(contract_id=contract_id, status="sent").get()


async def _sign(story: Story, contract_id: uuid.UUID, version: ContractVersion, *parties: str,
                guarantor: uuid.UUID | None = None) -> None:
    """Signatures recorded by staff: the institution's by finance, the others in person, witnessed."""
    for party in parties:
        await signatures.sign(story.finance if party in ("institution", "partner") else story.desk, {
            "contract_id": contract_id, "version_number": version.number, "party": party, "method": "in_person",
            "document_sha256": version.document_sha256, "contact_id": guarantor if party == "guarantor" else None})


async def _signed(story: Story, patient_id: uuid.UUID, start: date, end: date, items: list[dict[str, Any]], *,
                  signed_on: date, **more: Any) -> uuid.UUID:
    """Drafted, sent and signed by both parties (and the partner when named) on ``signed_on``: ACTIVE."""
    with clocked(CLOCKED, story.at(signed_on, 9)):
        contract_id = await _create(story, story.finance, patient_id, start, end, items, **more)
    with clocked(CLOCKED, story.at(signed_on, 10)):
        version = await _send(story, contract_id)
    with clocked(CLOCKED, story.at(signed_on, 11)):
        parties = ("institution", "client") + (("partner",) if more.get("partner_id") else ())
        await _sign(story, contract_id, version, *parties)
    return contract_id


async def _draft(story: Story, patient_id: uuid.UUID) -> None:
    with clocked(CLOCKED, story.at(story.day(-2), 15)):
        await _create(story, story.desk, patient_id, story.day(14), story.day(14 + 364),
                      story.lines(("HC-NURSE", 4, "weekly"), ("HC-MEAL", 30, "daily")))


async def _sent(story: Story, patient_id: uuid.UUID) -> None:
    start = story.day(5)
    with clocked(CLOCKED, story.at(story.day(-10), 14)):
        contract_id = await _create(story, story.finance, patient_id, start, start + timedelta(days=364),
                                    story.lines(("HC-NURSE", 4, "weekly"), ("HC-CHECK", 1, "monthly")),
                                    clauses="Keys with the neighbour in flat 302; call before each visit.")
    with clocked(CLOCKED, story.at(story.day(-9), 10)):
        version = await _send(story, contract_id)
        await _sign(story, contract_id, version, "institution")


async def _active_with_deliveries(story: Story, patient_id: uuid.UUID, partner_id: uuid.UUID | None) -> None:
    """Weekly nursing (4 a month) and bathing (4 a month, by the partner): delivered 4, 3, 4 and 4, 4, 2 in the
    three months behind, and this month's visits so far."""
    start = story.month_start(3)
    items = story.lines(("HC-NURSE", 4, "weekly"), ("HC-BATH", 4, "weekly", partner_id is not None))
    contact = await Contact.filter(institution_id=story.finance.institution_id, patient_id=patient_id
                                   ).order_by("id").first()
    more: dict[str, Any] = {"guarantor_contact_id": contact.id if contact else None, "partner_id": partner_id}
    with clocked(CLOCKED, story.at(start - timedelta(days=6), 9)):
        contract_id = await _create(story, story.finance, patient_id, start, start + timedelta(days=364), items,
                                    **more)
    with clocked(CLOCKED, story.at(start - timedelta(days=6), 10)):
        version = await _send(story, contract_id)
    with clocked(CLOCKED, story.at(start - timedelta(days=5), 10)):
        parties = ["institution", "client"] + (["guarantor"] if contact else []) + (["partner"] if partner_id else [])
        await _sign(story, contract_id, version, *parties, guarantor=contact.id if contact else None)
    delivered = {"HC-NURSE": (4, 3, 4, 4), "HC-BATH": (4, 4, 2, 4)}  # months back 3, 2, 1, this month so far
    for code, counts in delivered.items():
        for back, count in zip((3, 2, 1, 0), counts, strict=True):
            month = story.month_start(back)
            for week in range(count):
                await _visit(story, patient_id, code, month + timedelta(days=2 + 7 * week + (code == "HC-BATH")))


async def _visit(story: Story, patient_id: uuid.UUID, code: str, day: date) -> None:
    """A finished home-care visit carrying the item's code, done (not in the future)."""
    if day >= story.today:
        return
    ended = datetime.combine(day, time(11), story.zone).astimezone(UTC)
    department_id = (await Patient.get(id=patient_id)).department_id
    view = await visits.create(story.nurse, {
        "patient_id": patient_id, "kind": "home_care", "status": "finished", "department_id": department_id,
        "started_at": ended - timedelta(hours=1), "ended_at": ended, "reason": "Home care as contracted",
        "summary": "Delivered to the service standard"})
    await visits.add_code(story.nurse, view.row.id, {"kind": "procedure", "code": code, "status": "done"})


async def _amended(story: Story, patient_id: uuid.UUID) -> None:
    """Signed five months ago (nursing at the old price); an amendment in force since the first of last month:
    two nursing visits a week (kept at the signed price) and rehabilitation (at today's catalogue price)."""
    start = story.month_start(5)
    contract_id = await _signed(story, patient_id, start, start + timedelta(days=364),
                                story.lines(("HC-NURSE", 4, "weekly")), signed_on=start - timedelta(days=3))
    effective = story.month_start(1)
    asked = effective - timedelta(days=10)
    with clocked(CLOCKED, story.at(asked, 15)):
        view = await contracts.get(story.finance, contract_id)
        await contracts.amend(story.finance, contract_id, {
            "effective_on": effective, "change_summary": "Two nursing visits a week and weekly rehabilitation "
                                                         "sessions, at the family's request.",
            "items": story.lines(("HC-NURSE", 8, "weekly"), ("HC-REHAB", 4, "weekly"))}, view.row.version)
        version = await _send(story, contract_id)
    with clocked(CLOCKED, story.at(asked + timedelta(days=3), 11)):
        await _sign(story, contract_id, version, "institution", "client")
    for week in range(4):
        await _visit(story, patient_id, "HC-REHAB", effective + timedelta(days=1 + 7 * week))
        for extra in (0, 3):
            await _visit(story, patient_id, "HC-NURSE", effective + timedelta(days=7 * week + extra))


async def _ending_soon(story: Story, patient_id: uuid.UUID) -> None:
    end = story.day(45)
    await _signed(story, patient_id, end - timedelta(days=364), end, story.lines(("HC-CHECK", 1, "monthly")),
                  signed_on=end - timedelta(days=368))


async def _suspended(story: Story, patient_id: uuid.UUID) -> None:
    start = story.month_start(4)
    contract_id = await _signed(story, patient_id, start, start + timedelta(days=364),
                                story.lines(("HC-NURSE", 4, "weekly"), ("HC-CHECK", 1, "monthly")),
                                signed_on=start - timedelta(days=2))
    with clocked(CLOCKED, story.at(story.day(-40), 16)):
        view = await contracts.get(story.finance, contract_id)
        await contracts.transition(story.finance, contract_id, "suspend", reason="Client staying with family in "
                                   "another city for two months", expected_version=view.row.version)


async def _terminated(story: Story, patient_id: uuid.UUID) -> None:
    start = story.month_start(6)
    contract_id = await _signed(story, patient_id, start, start + timedelta(days=364),
                                story.lines(("HC-BATH", 4, "weekly")), signed_on=start - timedelta(days=4))
    with clocked(CLOCKED, story.at(story.day(-20), 11)):
        view = await contracts.get(story.finance, contract_id)
        await contracts.transition(story.finance, contract_id, "terminate", reason="Client moved to another city",
                                   expected_version=view.row.version)


async def _expired(services: Services, story: Story, patient_id: uuid.UUID) -> None:
    """A term that ended 35 days ago without a renewal: the expiry sweep ended it the next night."""
    ended = story.day(-35)
    await _signed(story, patient_id, ended - timedelta(days=364), ended, story.lines(("HC-MEAL", 30, "daily")),
                  signed_on=ended - timedelta(days=370))
    await contracts.expire_due(services.keyring, story.at(ended + timedelta(days=1), 0, 30))


async def _first_term(story: Story, patient_id: uuid.UUID) -> uuid.UUID:
    """A term that ended 16 days ago (renewed: see ``_renewed``)."""
    end = story.day(-16)
    return await _signed(story, patient_id, end - timedelta(days=364), end,
                         story.lines(("HC-CHECK", 1, "monthly"), ("HC-MEAL", 30, "daily")),
                         signed_on=end - timedelta(days=366))


async def _renewed(services: Services, story: Story, first: uuid.UUID) -> None:
    """The next term opened (contractRenew) 45 days ago at the catalogue's prices of its start, signed 40 days ago:
    ACTIVE; the first term became RENEWED when the expiry sweep ran the night after its end."""
    with clocked(CLOCKED, story.at(story.day(-45), 10)):
        first_end = (await contracts.get(story.finance, first)).row.end_on
        renewal = await contracts.renew(story.finance, first, {"end_on": first_end + timedelta(days=365)})
        version = await _send(story, renewal.row.id)
    with clocked(CLOCKED, story.at(story.day(-40), 10)):
        await _sign(story, renewal.row.id, version, "institution", "client")
    await contracts.expire_due(services.keyring, story.at(first_end + timedelta(days=1), 0, 30))
