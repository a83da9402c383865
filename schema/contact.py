"""Family members and emergency contacts of a patient."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, cast

import strawberry

from resolvers import access
from resolvers import contact as contacts
from resolvers.access import ContactView
from resolvers.context import Context
from schema.common import FieldSource, Info, provided, uuid_of


@strawberry.enum(description="How a contact is related to the patient.")
class Relationship(Enum):
    SPOUSE = "spouse"
    PARENT = "parent"
    CHILD = "child"
    SIBLING = "sibling"
    GUARDIAN = "guardian"
    FRIEND = "friend"
    OTHER = "other"


class ContactSource(FieldSource):
    """What a ``Contact`` resolves from (see ``FieldSource``)."""

    __slots__ = ()
    fields = frozenset({"name", "relationship", "phone", "is_emergency", "may_receive_information", "notes",
                        "updated_at"})

    def read(self, name: str) -> Any:
        value = access.read_contact_field(self.ctx, self.view, name)
        return Relationship(value) if name == "relationship" else value


def contact_node(ctx: Context, view: ContactView) -> Contact:
    return cast(Contact, ContactSource(ctx, view))


@strawberry.type(description="A family member or emergency contact of a patient. Reading one is audited.")
class Contact:
    view: strawberry.Private[ContactView]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="The patient this contact belongs to.")
    def patient_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.patient.row.id))

    name: str = strawberry.field(description="Full name.")
    relationship: Relationship = strawberry.field(description="Relation to the patient.")
    phone: str | None = strawberry.field(description="Phone, E.164. Encrypted at rest; decrypted when asked for.")
    is_emergency: bool = strawberry.field(description="Call this contact in an emergency.")
    may_receive_information: bool = strawberry.field(
        description="Whether the patient allows telling this contact about their care.")
    notes: str | None = strawberry.field(description="Free notes (encrypted at rest).")
    updated_at: datetime = strawberry.field(description="Last change.")


@strawberry.input(description="A new contact of a patient.")
class ContactCreateInput:
    name: str
    relationship: Relationship
    phone: str | None = strawberry.field(default=None, description="E.164 (+8613800138000) or a mainland mobile.")
    is_emergency: bool = False
    may_receive_information: bool = False
    notes: str | None = None


@strawberry.input(description="Changes to a contact; fields left out stay as they are, null clears.")
class ContactUpdateInput:
    name: str | None = strawberry.UNSET
    relationship: Relationship | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    is_emergency: bool | None = strawberry.UNSET
    may_receive_information: bool | None = strawberry.UNSET
    notes: str | None = strawberry.UNSET


@strawberry.type
class ContactMutation:
    @strawberry.mutation(description="Add a family member or emergency contact to a patient's file.")
    async def contact_create(self, info: Info, patient_id: strawberry.ID, input: ContactCreateInput) -> Contact | None:
        view = await contacts.create(info.context, uuid_of(patient_id, "patientId"), provided(input))
        return contact_node(info.context, view)

    @strawberry.mutation(description="Change a contact.")
    async def contact_update(self, info: Info, id: strawberry.ID, input: ContactUpdateInput) -> Contact | None:
        return contact_node(info.context, await contacts.update(info.context, uuid_of(id), provided(input)))

    @strawberry.mutation(description="Remove a contact from a patient's file; returns its id.")
    async def contact_delete(self, info: Info, id: strawberry.ID) -> strawberry.ID | None:
        return strawberry.ID(str(await contacts.delete(info.context, uuid_of(id))))
