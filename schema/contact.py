"""Family members and emergency contacts of a patient."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from functools import lru_cache
from typing import Annotated, Any, cast

import strawberry

from core.validation import camel_case
from resolvers import access
from resolvers import contact as contacts
from resolvers.access import ContactView
from resolvers.context import Context
from schema.common import NULL_KEEPS, FieldSource, Info, Version, by_value, provided, uuid_of
from schema.selection import columns_read, selected_fields


@strawberry.enum(description="How a contact is related to the patient.")
class Relationship(Enum):
    SPOUSE = strawberry.enum_value("spouse", description="The patient's husband, wife or partner.")
    PARENT = strawberry.enum_value("parent", description="The patient's mother or father.")
    CHILD = strawberry.enum_value("child", description="The patient's son or daughter.")
    SIBLING = strawberry.enum_value("sibling", description="The patient's brother or sister.")
    GUARDIAN = strawberry.enum_value("guardian", description="The patient's legal guardian.")
    FRIEND = strawberry.enum_value("friend", description="A friend of the patient.")
    OTHER = strawberry.enum_value("other", description="Another relation (a carer, a neighbour...).")


_RELATIONSHIP = by_value(Relationship)


class ContactSource(FieldSource):
    """What a ``Contact`` resolves from (see ``FieldSource``)."""

    __slots__ = ()
    fields = contacts.CONTACT_FIELDS

    def read(self, name: str) -> Any:
        value = access.read_contact_field(self.ctx, self.view, name)
        if name != "relationship":
            return value
        return _RELATIONSHIP(value)


# The columns each Contact field reads off its row (besides contacts.ROW_COLUMNS)
_READS: dict[str, tuple[str, ...]] = {"__typename": (), "id": (), "patientId": (), "version": ("version",),
                                      **{camel_case(name): (name,) for name in contacts.CONTACT_FIELDS}}


@lru_cache(maxsize=128)  # a plan's selection: the same few sets, asked on every request
def contact_columns(selected: frozenset[str]) -> tuple[str, ...] | None:
    """The columns reading the Contact fields ``selected`` (GraphQL names) needs; None (whole rows) when one is
    not known here."""
    columns = columns_read(selected, _READS)
    return None if columns is None else tuple(sorted({*contacts.ROW_COLUMNS, *columns}))


def contact_node(ctx: Context, view: ContactView) -> Contact:
    return cast(Contact, ContactSource(ctx, view))


def contact_nodes(ctx: Context, views: list[ContactView]) -> list[Contact]:
    return [contact_node(ctx, view) for view in views]


@strawberry.type(description="A family member or emergency contact of a patient. Reading one is audited.")
class Contact:
    view: strawberry.Private[ContactView]

    @strawberry.field(description="The contact's id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="The patient this contact belongs to.")
    def patient_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.patient.row.id))

    name: str = strawberry.field(description="Full name.")
    relationship: Relationship = strawberry.field(description="Relation to the patient.")
    phone: str | None = strawberry.field(description="Phone, E.164. Encrypted at rest; decrypted when "
                                                          "asked for. Null: no phone on record.")
    is_emergency: bool = strawberry.field(description="Call this contact in an emergency.")
    may_receive_information: bool = strawberry.field(
        description="Whether the patient allows telling this contact about their care.")
    notes: str | None = strawberry.field(description="Free notes (encrypted at rest); null: none.")
    updated_at: datetime = strawberry.field(description="Last change.")

    @strawberry.field(description="Pass back as `version` when you change it.")
    def version(self) -> int:
        return int(self.view.row.version)


@strawberry.input(description="A new contact of a patient.")
class ContactCreateInput:
    name: str = strawberry.field(description="Full name, 1-100 characters.")
    relationship: Relationship = strawberry.field(description="Relation to the patient.")
    phone: str | None = strawberry.field(default=None, description="E.164 (+8613800138000) or a mainland mobile.")
    is_emergency: bool = strawberry.field(default=False, description="Call this contact in an emergency.")
    may_receive_information: bool = strawberry.field(default=False,
                                                     description="Whether the patient allows telling this contact "
                                                                 "about their care (messages to a contact need it).")
    notes: str | None = strawberry.field(default=None, description="Free notes, at most 500 characters. Encrypted.")


@strawberry.input(description="Changes to a contact; fields left out stay as they are; null clears the phone and "
                             "the notes and leaves the other fields (which are never empty) as they are.")
class ContactUpdateInput:
    name: str | None = strawberry.field(default=strawberry.UNSET, metadata=NULL_KEEPS,
                                        description="Full name, 1-100 characters. Null leaves it as it is.")
    relationship: Relationship | None = strawberry.field(default=strawberry.UNSET,
                                                         metadata=NULL_KEEPS,
                                                         description="Relation to the patient. Null leaves it as it "
                                                                     "is.")
    phone: str | None = strawberry.field(default=strawberry.UNSET,
                                         description="E.164 or a mainland mobile; null: no phone.")
    is_emergency: bool | None = strawberry.field(default=strawberry.UNSET,
                                                 metadata=NULL_KEEPS,
                                                 description="Call this contact in an emergency. Null leaves it as "
                                                             "it is.")
    may_receive_information: bool | None = strawberry.field(default=strawberry.UNSET,
                                                            description="Whether the patient allows telling this "
                                                                        "contact about their care. Null leaves it "
                                                                        "as it is.", metadata=NULL_KEEPS)
    notes: str | None = strawberry.field(default=strawberry.UNSET,
                                         description="Free notes, at most 500 characters; null clears them.")


_CONTACT_ID = Annotated[strawberry.ID, strawberry.argument(description="The contact's id (NOT_FOUND when missing "
                                                                        "or its patient is outside your reach).")]


@strawberry.type
class ContactMutation:
    @strawberry.mutation(description="Add a family member or emergency contact to a patient's file. A file holds at "
                                      f"most {contacts.MAX_CONTACTS}: one more is BAD_USER_INPUT (reason item_count), "
                                      "nothing written; remove one first.")
    async def contact_create(
        self, info: Info,
        patient_id: Annotated[strawberry.ID, strawberry.argument(description="The patient, in your reach.")],
        input: Annotated[ContactCreateInput, strawberry.argument(description="The contact.")],
    ) -> Contact | None:
        view = await contacts.create(info.context, uuid_of(patient_id, "patientId"), provided(input),
                                     returned=selected_fields(info))
        return contact_node(info.context, view)

    @strawberry.mutation(description="Change a contact. Pass the version you read: a stale one answers CONFLICT.")
    async def contact_update(
        self, info: Info, id: _CONTACT_ID,
        input: Annotated[ContactUpdateInput, strawberry.argument(description="The changes.")],
        version: Version = None,
    ) -> Contact | None:
        view = await contacts.update(info.context, uuid_of(id), provided(input), version,
                                     returned=selected_fields(info))
        return contact_node(info.context, view)

    @strawberry.mutation(description="Remove a contact from a patient's file; returns its id. CONFLICT (reason "
                                      "contact_referenced) while messages, survey invitations, tickets or "
                                      "contracts name the contact: clear mayReceiveInformation instead.")
    async def contact_delete(self, info: Info, id: _CONTACT_ID) -> strawberry.ID | None:
        return strawberry.ID(str(await contacts.delete(info.context, uuid_of(id))))
