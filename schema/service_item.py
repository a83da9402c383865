"""The institution's service catalogue (FHIR ChargeItemDefinition) and exact money.

Money and MoneyInput are the API's one way to carry an amount (contracts use them too): decimal strings and
integer minor units, never floats. Prices are commercial terms: readable with ``contract.terms: read`` only.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from core import money
from resolvers import service_item as service_items
from schema.common import (
    CURSOR,
    DEFAULT_PAGE_SIZE,
    EDGES,
    NODES,
    PAGE_INFO,
    TOTAL_COUNT,
    After,
    First,
    Info,
    PageInfo,
    asks_total,
    provided,
    uuid_of,
)

if TYPE_CHECKING:
    from models import ServiceItem as ServiceItemRow
    from models import ServiceItemPrice as ServiceItemPriceRow
    from resolvers.pagination import Page


@strawberry.type(description="An exact amount of money. Never a float: the amount is a decimal string with all of the "
                             "currency's decimals and minorUnits the same amount as a whole number of minor units "
                             "(cents, fen), also a string so JavaScript keeps it exact.")
class Money:
    amount: str = strawberry.field(description="The exact decimal amount with the currency's decimals, e.g. "
                                               "\"1234.50\" (CNY) or \"1200\" (JPY).")
    currency: str = strawberry.field(description="The ISO 4217 currency code, e.g. CNY.")
    minor_units: str = strawberry.field(description="The amount in minor units as an integer in a string, e.g. "
                                                    "\"123450\" for 1234.50 CNY.")

    @classmethod
    def of(cls, minor: int, currency: str) -> Money:
        return cls(amount=money.format_amount(minor, currency), currency=currency, minor_units=str(minor))


@strawberry.input(description="An exact amount of money as sent by a client: a decimal string, never a float.")
class MoneyInput:
    amount: str = strawberry.field(description="A plain non-negative decimal with at most the currency's decimals, "
                                               "e.g. \"1234.50\"; no sign, exponent, spaces or separators. "
                                               "BAD_USER_INPUT otherwise, at most 10^12 minor units.")
    currency: str = strawberry.field(description="An ISO 4217 code in capitals (CNY, HKD, USD, EUR, JPY...); an "
                                                 "unknown code is BAD_USER_INPUT.")

    def parsed(self, field: str, *, allow_zero: bool = True) -> tuple[int, str]:
        """(minor units, currency), or BadUserInput at "<field>.amount" / "<field>.currency"."""
        return money.parse_money(self.amount, self.currency, field=field, allow_zero=allow_zero)


@strawberry.enum(description="What one unit of a service item is: the unit its price is per and contracts count in.")
class ServiceUnit(Enum):
    VISIT = strawberry.enum_value("visit", description="One visit (a home nursing visit, a consultation).")
    HOUR = strawberry.enum_value("hour", description="One hour of service.")
    DAY = strawberry.enum_value("day", description="One day of care.")
    SESSION = strawberry.enum_value("session", description="One session (therapy, rehabilitation).")
    MONTH = strawberry.enum_value("month", description="One month (a monthly care package, a bed).")
    ITEM = strawberry.enum_value("item", description="One piece (a device, a supply).")


@strawberry.enum(description="How often a service can be scheduled (FHIR Timing, simplified); an item offers one or "
                             "more, and a contract item picks one of its item's.")
class ServiceFrequency(Enum):
    DAILY = strawberry.enum_value("daily", description="Every day.")
    WEEKLY = strawberry.enum_value("weekly", description="Every week.")
    PER_VISIT = strawberry.enum_value("per_visit", description="At each visit, as visits are booked.")
    MONTHLY = strawberry.enum_value("monthly", description="Every month.")


@strawberry.type(description="One price version of a catalogue item (commercial terms): the unit price in force from "
                             "effectiveFrom until the next version's date. Versions are never changed; a contract "
                             "keeps the version it was priced with.")
class ServiceItemPrice:
    row: strawberry.Private[Any]  # a ServiceItemPrice row
    id: strawberry.ID = strawberry.field(description="The price version's id.")
    number: int = strawberry.field(description="1 for the item's first price, one more for each later version.")
    effective_from: date = strawberry.field(description="The first day the price is in force (the institution's "
                                                        "local date).")
    created_at: datetime = strawberry.field(description="When the version was recorded.")

    @strawberry.field(description="The price of one unit of the item (FORBIDDEN without the right to read "
                                  "commercial terms).")
    def unit_price(self, info: Info) -> Money:
        service_items.require_terms(info.context)
        return Money.of(self.row.unit_price, self.row.currency)

    @classmethod
    def of(cls, row: ServiceItemPriceRow) -> ServiceItemPrice:
        return cls(row=row, id=strawberry.ID(str(row.id)), number=row.number, effective_from=row.effective_from,
                   created_at=row.created_at)


@strawberry.type(description="One price version of a page, with its cursor.")
class ServiceItemPriceEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: ServiceItemPrice = strawberry.field(description="The price version.")


@strawberry.type(description="A page of an item's price versions, newest first.")
class ServiceItemPriceConnection:
    edges: list[ServiceItemPriceEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int | None = strawberry.field(default=None, description=TOTAL_COUNT)

    @strawberry.field(description=NODES)
    def nodes(self) -> list[ServiceItemPrice]:
        return [edge.node for edge in self.edges]

    @classmethod
    def of(cls, page: Page[ServiceItemPriceRow]) -> ServiceItemPriceConnection:
        return cls(edges=[ServiceItemPriceEdge(cursor=cursor, node=ServiceItemPrice.of(row))
                          for cursor, row in page.items],
                   page_info=PageInfo.of(page), total_count=page.total)


@strawberry.type(description="A procedure or service of the institution's catalogue (FHIR ChargeItemDefinition): "
                             "orthodontics, an implant, a home nursing visit, bathing assistance... Visits record "
                             "procedures with these codes; contracts sell them at a price version. Everyone who "
                             "delivers a service sees what it is and its standard; prices need the right to read "
                             "commercial terms.")
class ServiceItem:
    row: strawberry.Private[Any]  # a ServiceItem row
    id: strawberry.ID = strawberry.field(description="The item's id.")
    code: str = strawberry.field(description="The institution's code for it (upper case; never changes).")
    name: str = strawberry.field(description="Its name, 1-100 characters.")
    active: bool = strawberry.field(description="False once retired: visits keep its code, new uses are refused.")
    description: str | None = strawberry.field(description="What the service is, up to 2,000 characters; "
                                                            "null: none given.")
    standard: str | None = strawberry.field(description="The service standard: what is delivered, how and by whom "
                                                        "(up to 4,000 characters); null: none given.")
    unit: ServiceUnit = strawberry.field(description="What one unit is: prices are per unit.")
    frequencies: list[ServiceFrequency] = strawberry.field(description="How often it can be scheduled (at least "
                                                                       "one).")
    version: int = strawberry.field(description="1 when created, one more for each change: pass it back as "
                                                "expectedVersion when you change the item.")

    @strawberry.field(description="The price version in force on a date (the newest with effectiveFrom on or "
                                  "before it); null when the item had no price yet. FORBIDDEN without the right to "
                                  "read commercial terms.")
    async def price_on(self, info: Info, on: Annotated[date, strawberry.argument(
            name="date", description="The day (the institution's local date).")]) -> ServiceItemPrice | None:
        row = await service_items.price_of_item_on(info.context, self.row, on)
        return None if row is None else ServiceItemPrice.of(row)

    @strawberry.field(description="The item's price versions, newest first (at most 100 per item). FORBIDDEN without "
                                  "the right to read commercial terms.")
    async def prices(
        self, info: Info,
        first: Annotated[int, strawberry.argument(description="How many versions the page holds: 1 to the server's "
                                                              "page limit; BAD_USER_INPUT outside.")] = 20,
        after: After = None,
    ) -> ServiceItemPriceConnection | None:
        return ServiceItemPriceConnection.of(
            await service_items.price_history(info.context, self.row, first=first, after=after,
                                              count=asks_total(info)))

    @classmethod
    def of(cls, row: ServiceItemRow) -> ServiceItem:
        return cls(row=row, id=strawberry.ID(str(row.id)), code=row.code, name=row.name, active=row.active,
                   description=row.description, standard=row.standard, unit=ServiceUnit(row.unit),
                   frequencies=[ServiceFrequency(f) for f in service_items.frequencies_of(row)],
                   version=row.version)


@strawberry.type(description="One catalogue item of a page, with its cursor.")
class ServiceItemEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: ServiceItem = strawberry.field(description="The item.")


@strawberry.type(description="A page of the service catalogue, by code.")
class ServiceItemConnection:
    edges: list[ServiceItemEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int | None = strawberry.field(default=None, description=TOTAL_COUNT)

    @strawberry.field(description=NODES)
    def nodes(self) -> list[ServiceItem]:
        return [edge.node for edge in self.edges]


@strawberry.input(description="Changes to a catalogue item: only the fields you send change (the code never does).")
class ServiceItemUpdateInput:
    name: str | None = strawberry.field(default=strawberry.UNSET, description="A new name, 1-100 characters; not "
                                                                               "null.")
    description: str | None = strawberry.field(default=strawberry.UNSET, description="What the service is, up to "
                                                                                      "2,000 characters; null or "
                                                                                      "blank clears it.")
    standard: str | None = strawberry.field(default=strawberry.UNSET, description="The service standard (what is "
                                                                                   "delivered, how, by whom), up "
                                                                                   "to 4,000 characters; null or "
                                                                                   "blank clears it.")
    unit: ServiceUnit | None = strawberry.field(default=strawberry.UNSET, description="What one unit is; not null.")
    frequencies: list[ServiceFrequency] | None = strawberry.field(
        default=strawberry.UNSET, description="How often it can be scheduled: at least one; not null.")


_INCLUDE_RETIRED = Annotated[bool, strawberry.argument(description="Also the retired items.")]
_ITEM_ID = Annotated[strawberry.ID, strawberry.argument(description="The item's id (NOT_FOUND when missing or "
                                                                  "another institution's).")]


@strawberry.type
class ServiceItemQuery:
    @strawberry.field(description="The service catalogue, by code (at most 500 items).",
                      deprecation_reason="Stops at 500 items: page through serviceItemsConnection.")
    async def service_items(self, info: Info, include_retired: _INCLUDE_RETIRED = False) -> list[ServiceItem]:
        rows = await service_items.catalogue(info.context, include_retired=include_retired)
        return [ServiceItem.of(row) for row in rows]

    @strawberry.field(description="The service catalogue, by code, a page at a time.")
    async def service_items_connection(self, info: Info, include_retired: _INCLUDE_RETIRED = False,
                                       first: First = DEFAULT_PAGE_SIZE,
                                       after: After = None) -> ServiceItemConnection | None:
        page = await service_items.catalogue_page(info.context, include_retired=include_retired, first=first,
                                                  after=after, count=asks_total(info))
        return ServiceItemConnection(
            edges=[ServiceItemEdge(cursor=cursor, node=ServiceItem.of(row)) for cursor, row in page.items],
            page_info=PageInfo.of(page), total_count=page.total)

    @strawberry.field(description="One item of the catalogue, retired or not.")
    async def service_item(self, info: Info, id: _ITEM_ID) -> ServiceItem | None:
        return ServiceItem.of(await service_items.get(info.context, uuid_of(id)))


@strawberry.type
class ServiceItemMutation:
    @strawberry.mutation(description="Add a procedure or service to the catalogue (admins, finance). A catalogue "
                                     "holds at most 500 items, retired ones included: one more is BAD_USER_INPUT, "
                                     "reason item_count.")
    async def service_item_create(
        self, info: Info,
        code: Annotated[str, strawberry.argument(description="Letters, digits, dots and hyphens, at most 32; stored "
                                                             "upper case, unique in the institution.")],
        name: Annotated[str, strawberry.argument(description="Its name, 1-100 characters.")],
        description: Annotated[str | None, strawberry.argument(description="What the service is, up to 2,000 "
                                                                           "characters.")] = None,
        standard: Annotated[str | None, strawberry.argument(description="The service standard: what is delivered, "
                                                                        "how and by whom (up to 4,000 "
                                                                        "characters).")] = None,
        unit: Annotated[ServiceUnit, strawberry.argument(description="What one unit is.")] = ServiceUnit.VISIT,
        frequencies: Annotated[list[ServiceFrequency] | None, strawberry.argument(
            description="How often it can be scheduled: at least one; null: PER_VISIT.")] = None,
    ) -> ServiceItem | None:
        data = {"description": description, "standard": standard, "unit": unit.value,
                "frequencies": ["per_visit"] if frequencies is None else [f.value for f in frequencies]}
        return ServiceItem.of(await service_items.create(info.context, code, name, data))

    @strawberry.mutation(description="Change an item's name, description, standard, unit or frequencies (admins, "
                                     "finance). Pass the version you read: a stale one answers CONFLICT.")
    async def service_item_update(
        self, info: Info, id: _ITEM_ID,
        input: Annotated[ServiceItemUpdateInput, strawberry.argument(description="The changes.")],
        expected_version: Annotated[int, strawberry.argument(description="The item's version you read: CONFLICT "
                                                                         "when it has changed since.")],
    ) -> ServiceItem | None:
        return ServiceItem.of(await service_items.update(info.context, uuid_of(id), provided(input), expected_version))

    @strawberry.mutation(description="Retire a catalogue item (visits keep their codes) or bring it back (admins, "
                                     "finance).")
    async def service_item_set_active(
        self, info: Info, id: _ITEM_ID,
        active: Annotated[bool, strawberry.argument(description="False retires the item, true brings it back.")],
    ) -> ServiceItem | None:
        return ServiceItem.of(await service_items.set_active(info.context, uuid_of(id), active))

    @strawberry.mutation(description="Add a price version to an item (admins, finance: the right to set commercial "
                                     "terms). It takes effect strictly after the item's latest version (a past date "
                                     "records a price late, a future one schedules a change; several future "
                                     "versions may be queued in date order) and is in the item's one currency "
                                     "(another is BAD_USER_INPUT, currency mismatch).")
    async def service_item_price_add(
        self, info: Info,
        item_id: Annotated[strawberry.ID, strawberry.argument(description="The item's id (NOT_FOUND when missing or "
                                                                          "another institution's).")],
        price: Annotated[MoneyInput, strawberry.argument(description="The unit price: an exact decimal, never "
                                                                     "negative.")],
        effective_from: Annotated[date, strawberry.argument(description="The first day it is in force (the "
                                                                        "institution's local date).")],
    ) -> ServiceItemPrice | None:
        row = await service_items.add_price(info.context, uuid_of(item_id, "itemId"), price.amount, price.currency,
                                            effective_from)
        return ServiceItemPrice.of(row)
