"""The institution's catalogue of procedures and services: the codes visits record procedures with."""

from __future__ import annotations

import uuid

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action
from core.errors import BadUserInput
from core.ids import uuid7
from core.validation import clean_text
from models import ServiceItem
from resolvers import access
from resolvers.context import Context

MAX_ITEMS = 500


async def catalogue(ctx: Context, *, include_retired: bool = False) -> list[ServiceItem]:
    await access.authorize(ctx, "service_item", "read", action=Action.READ, resource_type="service_item")
    query = ServiceItem.filter(institution_id=ctx.institution_id)
    if not include_retired:
        query = query.filter(active=True)
    return list(await query.order_by("code").limit(MAX_ITEMS))


async def create(ctx: Context, code: str, name: str) -> ServiceItem:
    decision = await access.authorize(ctx, "service_item", "create", action=Action.CREATE,
                                      resource_type="service_item")
    code = code.strip().upper()
    if not code or len(code) > 32 or not code.replace("-", "").replace(".", "").isalnum():
        raise BadUserInput("code: letters, digits, dots and hyphens, at most 32.", field="code")
    name = clean_text(name, field="name", max_length=100, min_length=1)
    if await ServiceItem.filter(institution_id=ctx.institution_id).count() >= MAX_ITEMS:
        raise BadUserInput(f"code: a catalogue holds at most {MAX_ITEMS} items.", field="code")
    try:
        async with in_transaction():
            item = await ServiceItem.create(id=uuid7(), institution_id=ctx.institution_id, code=code, name=name)
            await writer.append([access.write_record(ctx, Action.CREATE, "service_item", item.id,
                                                     fields=frozenset({"code", "name"}), decision=decision)])
    except IntegrityError:
        raise BadUserInput("code: already in the catalogue.", field="code") from None
    return item


async def set_active(ctx: Context, item_id: uuid.UUID | None, active: bool) -> ServiceItem:
    """Retire an item (visits keep their codes) or bring it back."""
    decision = await access.authorize(ctx, "service_item", "update", action=Action.UPDATE,
                                      resource_type="service_item", resource_id=item_id)
    item = None if item_id is None else await ServiceItem.get_or_none(id=item_id, institution_id=ctx.institution_id)
    if item is None:
        raise await access.not_found(ctx, Action.UPDATE, "service_item", item_id)
    async with in_transaction():
        await ServiceItem.filter(id=item.id).update(active=active)
        await writer.append([access.write_record(ctx, Action.UPDATE, "service_item", item.id,
                                                 fields=frozenset({"active"}), decision=decision)])
    item.active = active
    return item
