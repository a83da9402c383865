"""The institution's service catalogue (FHIR ChargeItemDefinition): the codes visits record procedures with,
what each service is and how it is delivered, and its price versions.

Items are organisational, not patient data: reading the catalogue needs ``service_item: read`` and is not
recorded (as before); every write is. Prices are commercial terms (``contract.terms``): reading one needs
``contract.terms: read`` (a caller without it gets FORBIDDEN at the price's field, the refusal noted) and
adding a price version ``contract.terms: update``.

Price versions only grow at their end: a version takes effect strictly after the latest one (number = the
next), in the item's one currency. A version may be dated in the past (a price recorded late) or in the
future (a scheduled change), and several future versions may be queued, each after the last; a version is
never changed or removed, so a contract keeps the one it was priced with.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import date
from typing import Any, cast

from tortoise.exceptions import IntegrityError
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action, Outcome
from core import money
from core.errors import BadUserInput, Conflict
from core.ids import uuid7
from core.principal import STAFF
from core.validation import Problems, camel_case, check_year, clean_text, one_of
from models import Institution, ServiceItem, ServiceItemPrice
from models.service_item import FREQUENCIES, UNITS
from resolvers import access, pagination
from resolvers.context import Context
from resolvers.versioning import bumped

MAX_ITEMS = 500  # the unpaged ``serviceItems`` list (deprecated) stops here
ITEM_CURSOR = "service_item.code"
MAX_PRICE_VERSIONS = 100  # per item: a new price every month for eight years; keeps batched reads bounded
NAME_LIMIT = 100
DESCRIPTION_LIMIT = 2_000
STANDARD_LIMIT = 4_000
CODE_LIMIT = 32
PRICE_CURSOR = "service_item_price"
TERMS = "contract.terms"
_UPDATABLE = ("name", "description", "standard", "unit", "frequencies")


# -- reading the catalogue -----------------------------------------------------------------


async def catalogue(ctx: Context, *, include_retired: bool = False) -> list[ServiceItem]:
    """The catalogue by code, at most MAX_ITEMS (the deprecated unpaged list)."""
    await access.authorize(ctx, "service_item", "read", action=Action.READ, resource_type="service_item")
    return list(await _items(ctx, include_retired).order_by("code").limit(MAX_ITEMS))


async def catalogue_page(ctx: Context, *, include_retired: bool = False, first: int,
                         after: str | None, count: bool = False) -> pagination.Page[ServiceItem]:
    """The catalogue by code, a page at a time, in one statement: a code is unique in the institution and never
    changes, so the cursor holds it."""
    await access.authorize(ctx, "service_item", "read", action=Action.READ, resource_type="service_item")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    query = _items(ctx, include_retired)
    total = await pagination.count_of(query, count)
    if after:  # "" is no cursor: the first page, as null (every list alike)
        query = query.filter(code__gt=pagination.decode_text(ITEM_CURSOR, after))
    rows = await query.order_by("code").limit(first + 1)
    return pagination.page_of(rows[:first], len(rows) > first, ITEM_CURSOR, lambda row: row.code, total)


def _items(ctx: Context, include_retired: bool) -> QuerySet[ServiceItem]:
    query = ServiceItem.filter(institution_id=ctx.institution_id)
    return query if include_retired else query.filter(active=True)


async def get(ctx: Context, item_id: uuid.UUID | None) -> ServiceItem:
    """One item of the caller's institution (retired ones too); another institution's is NOT_FOUND."""
    await access.authorize(ctx, "service_item", "read", action=Action.READ, resource_type="service_item",
                           resource_id=item_id)
    return await _find(ctx, item_id, Action.READ)


def frequencies_of(item: ServiceItem) -> list[str]:
    """The item's frequency options, in the order of FREQUENCIES."""
    return [f for f in item.frequencies.split(",") if f]


# -- prices: the functions other modules call (no authorization, no audit: the caller does both) --------


async def price_on(institution_id: uuid.UUID, item_id: uuid.UUID, on: date) -> ServiceItemPrice | None:
    """The price version of the institution's item in force on ``on`` (the newest with effective_from <= on);
    None when the item has none yet (or is not the institution's). One statement."""
    return await ServiceItemPrice.filter(institution_id=institution_id, item_id=item_id,
                                         effective_from__lte=on).order_by("-effective_from").first()


async def prices_on(institution_id: uuid.UUID, item_ids: Collection[uuid.UUID],
                    on: date) -> dict[uuid.UUID, ServiceItemPrice]:
    """``price_on`` for many items in one statement: item id -> the version in force; items with no price in
    force on that date (or not the institution's) are absent."""
    if not item_ids:
        return {}
    rows = await ServiceItemPrice.filter(institution_id=institution_id, item_id__in=list(set(item_ids)),
                                         effective_from__lte=on).order_by("item_id", "-effective_from")
    found: dict[uuid.UUID, ServiceItemPrice] = {}
    for row in rows:
        found.setdefault(row.item_id, row)  # the first of each item is its newest up to the date
    return found


# -- prices: through the API --------------------------------------------------------------


def require_terms(ctx: Context) -> None:
    """Prices are commercial terms: without ``contract.terms: read`` the field is FORBIDDEN and the refusal noted
    (once per operation, however many items a list shows), never recorded as a read."""
    if not ctx.decide(TERMS, "read").allowed:
        ctx.reads.note("service_item", None, None, field_class="terms", outcome=Outcome.DENIED,
                       reason="forbidden_field")
        raise access.permission_refused(ctx, TERMS)


async def price_of_item_on(ctx: Context, item: ServiceItem, on: date) -> ServiceItemPrice | None:
    """An item's price in force on a date, batched across a request: a list of items costs one statement per
    distinct date asked."""
    require_terms(ctx)

    async def load(keys: Sequence[tuple[uuid.UUID, date]]) -> list[ServiceItemPrice | None]:
        by_date: dict[date, list[uuid.UUID]] = defaultdict(list)
        for item_id, day in keys:
            by_date[day].append(item_id)
        found = {day: await prices_on(ctx.institution_id, ids, day) for day, ids in by_date.items()}
        return [found[day].get(item_id) for item_id, day in keys]

    loader = ctx.require_loaders().made("service_item.price_on", load)
    return cast(ServiceItemPrice | None, await loader.load((item.id, on)))


async def price_history(ctx: Context, item: ServiceItem, *, first: int, after: str | None,
                        count: bool = False) -> pagination.Page[ServiceItemPrice]:
    """An item's price versions, newest first. An item holds at most MAX_PRICE_VERSIONS versions, so the versions
    of a list of items load in one statement whatever the pages asked, and any page (and the count of the
    versions, ``count``) is cut from them, as a ticket's timeline is."""
    require_terms(ctx)
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    before = pagination.decode_int(PRICE_CURSOR, after) if after else None  # "": the first page, as null

    async def load(item_ids: Sequence[uuid.UUID]) -> list[list[ServiceItemPrice]]:
        rows: dict[uuid.UUID, list[ServiceItemPrice]] = defaultdict(list)
        query = ServiceItemPrice.filter(institution_id=ctx.institution_id, item_id__in=list(set(item_ids)))
        for row in await query.order_by("item_id", "-number"):
            rows[row.item_id].append(row)
        return [rows[item_id] for item_id in item_ids]

    versions = cast(list[ServiceItemPrice],
                    await ctx.require_loaders().made("service_item.price_history", load).load(item.id))
    rows = [row for row in versions if before is None or row.number < before][:first + 1]
    return pagination.page_of(rows[:first], len(rows) > first, PRICE_CURSOR, key=lambda row: row.number,
                              total=len(versions) if count else None)


async def add_price(ctx: Context, item_id: uuid.UUID | None, amount: str, currency: str,
                    effective_from: date) -> ServiceItemPrice:
    """A new price version of an item, in force from ``effective_from`` (strictly after the latest version's
    date) in the item's currency. Errors name "price.amount", "price.currency", "effectiveFrom", "itemId"."""
    decision = await access.authorize(ctx, TERMS, "update", action=Action.CREATE, resource_type="service_item_price",
                                      resource_id=item_id)
    problems = Problems()  # the price's shape first, then how it follows the item's versions, all at once
    with problems.collect("price"):
        unit_price, code = money.parse_money(amount, currency, field="price")
    with problems.collect("effectiveFrom"):
        check_year(effective_from, "effectiveFrom")  # contracts are priced on their dates (2000-2199)
    problems.check()
    item = await _find(ctx, item_id, Action.CREATE, field="itemId")
    latest = await ServiceItemPrice.filter(institution_id=ctx.institution_id, item_id=item.id).order_by(
        "-number").first()
    if latest is not None:
        _check_follows(problems, latest, code, effective_from)
        problems.check()
    number = 1 if latest is None else latest.number + 1
    price_id = uuid7()
    try:
        async with in_transaction():
            row = await ServiceItemPrice.create(id=price_id, institution_id=ctx.institution_id, item_id=item.id,
                                                number=number, unit_price=unit_price, currency=code,
                                                effective_from=effective_from, created_by_id=_staff_id(ctx))
            await writer.append([access.write_record(
                ctx, Action.CREATE, "service_item_price", price_id,
                fields=frozenset({"item_id", "number", "unit_price", "currency", "effective_from"}),
                decision=decision)])
    except IntegrityError:  # another version took this number or date a moment ago
        raise Conflict("itemId: a price version was added since you read the item; read it again.",
                       field="itemId") from None
    return row


# -- writing the catalogue ----------------------------------------------------------------


async def create(ctx: Context, code: str, name: str, data: dict[str, Any] | None = None) -> ServiceItem:
    """A new catalogue item; ``data`` may carry description, standard, unit and frequencies (defaults: a visit,
    per visit)."""
    decision = await access.authorize(ctx, "service_item", "create", action=Action.CREATE,
                                      resource_type="service_item")
    problems = Problems()  # every problem of the arguments at once
    with problems.collect("code"):
        code = _code(code)
    values = problems.each({"name": name, **(data or {})}, _value)
    problems.check()
    try:
        async with in_transaction():
            # counted with the institution's row locked, so two creates count one after the other (found in review:
            # counted before the transaction, concurrent creates passed the bound together). FOR NO KEY UPDATE: rows
            # referencing the institution are still written meanwhile.
            await Institution.filter(id=ctx.institution_id).select_for_update(no_key=True).only("id").first()
            if await ServiceItem.filter(institution_id=ctx.institution_id).count() >= MAX_ITEMS:
                raise BadUserInput(f"code: a catalogue holds at most {MAX_ITEMS} items.", field="code",
                                   reason="item_count")
            item = await ServiceItem.create(id=uuid7(), institution_id=ctx.institution_id, code=code, **values)
            await writer.append([access.write_record(ctx, Action.CREATE, "service_item", item.id,
                                                     fields=frozenset({"code", *values}), decision=decision)])
    except IntegrityError:
        raise BadUserInput("code: already in the catalogue.", field="code") from None
    return item


async def update(ctx: Context, item_id: uuid.UUID | None, data: dict[str, Any], expected_version: int) -> ServiceItem:
    """Change an item's name, description, standard, unit or frequencies over the version the caller read (a
    stale one is CONFLICT). The code never changes: visits and follow-up rules record it."""
    decision = await access.authorize(ctx, "service_item", "update", action=Action.UPDATE,
                                      resource_type="service_item", resource_id=item_id)
    item = await _find(ctx, item_id, Action.UPDATE)
    if not data:
        raise BadUserInput("input: give at least one field to change.", field="input")
    problems = Problems()
    values = problems.each(data, _value)
    problems.check()
    async with in_transaction():
        changed = await ServiceItem.filter(id=item.id, institution_id=ctx.institution_id,
                                           version=expected_version).update(**values, version=bumped())
        if changed != 1:
            raise _stale()
        await writer.append([access.write_record(ctx, Action.UPDATE, "service_item", item.id,
                                                 fields=frozenset(values), decision=decision)])
    for name, value in values.items():
        setattr(item, name, value)
    item.version = expected_version + 1
    return item


async def set_active(ctx: Context, item_id: uuid.UUID | None, active: bool) -> ServiceItem:
    """Retire an item (visits keep their codes) or bring it back; a new version of the item. It takes no version:
    an edit committed since the item was read is kept, not a CONFLICT (found in review), and the item answered as
    it now is."""
    decision = await access.authorize(ctx, "service_item", "update", action=Action.UPDATE,
                                      resource_type="service_item", resource_id=item_id)
    item = await _find(ctx, item_id, Action.UPDATE)
    async with in_transaction():
        await ServiceItem.filter(id=item.id, institution_id=ctx.institution_id).update(active=active,
                                                                                       version=bumped())
        await writer.append([access.write_record(ctx, Action.UPDATE, "service_item", item.id,
                                                 fields=frozenset({"active"}), decision=decision)])
    return await ServiceItem.get(id=item.id, institution_id=ctx.institution_id)


# -- helpers ------------------------------------------------------------------------------


async def _find(ctx: Context, item_id: uuid.UUID | None, action: Action, field: str = "id") -> ServiceItem:
    return await access.find_in_institution(ctx, ServiceItem, item_id, action=action, resource_type="service_item",
                                            field=field)


def _stale() -> Conflict:
    return Conflict("expectedVersion: the item changed since you read it; read it again.", field="expectedVersion")


def _staff_id(ctx: Context) -> uuid.UUID | None:
    principal = ctx.require_principal()
    return principal.user_id if principal.kind == STAFF else None


def _code(value: str) -> str:
    code = value.strip()
    if not code.isascii():  # before upper(): "ß".upper() is "SS"
        code = ""
    code = code.upper()
    if not code or len(code) > CODE_LIMIT or not code.replace("-", "").replace(".", "").isalnum():
        raise BadUserInput(f"code: letters, digits, dots and hyphens, at most {CODE_LIMIT}.", field="code")
    return code


def _check_follows(problems: Problems, latest: ServiceItemPrice, currency: str, effective_from: date) -> None:
    """A new price version is in the item's currency, after its latest version, within the versions' bound."""
    if currency != latest.currency:
        problems.add("price.currency", "currency_mismatch", f"currency mismatch, the item is priced in "
                                                            f"{latest.currency}.")
    if effective_from <= latest.effective_from:
        problems.add("effectiveFrom", "invalid", f"must be after the latest price version's date "
                                                 f"({latest.effective_from.isoformat()}).")
    if latest.number >= MAX_PRICE_VERSIONS:
        problems.add("itemId", "invalid", f"an item holds at most {MAX_PRICE_VERSIONS} price versions; retire it "
                                          f"and add a new code.")


def _value(name: str, value: Any) -> Any:
    field = camel_case(name)
    if name not in _UPDATABLE:
        raise BadUserInput(f"{field}: cannot be set here.", field=field)
    if value is None and name in ("name", "unit", "frequencies"):
        raise BadUserInput(f"{field}: must not be null.", field=field, reason="required")
    if name == "name":
        return clean_text(value, field=field, max_length=NAME_LIMIT, min_length=1)
    if name in ("description", "standard"):
        limit = DESCRIPTION_LIMIT if name == "description" else STANDARD_LIMIT
        return (None if value is None else clean_text(value, field=field, max_length=limit)) or None
    if name == "unit":
        return one_of(value, UNITS, field)
    chosen = {one_of(f, FREQUENCIES, field) for f in value}
    if not chosen:
        raise BadUserInput(f"{field}: give at least one frequency.", field=field, reason="required")
    return ",".join(f for f in FREQUENCIES if f in chosen)
