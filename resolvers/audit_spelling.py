"""The audit trail's stored codes in the API's spelling, for machines (``audit_words`` says them to people).

The trail keeps what it wrote, covered by its hash: a resource type (``follow_up_task``), a column
(``special_needs``, ``contact.phone``) and a reason (``forbidden_field``) as stored. The API speaks GraphQL's
names: a type's name (``FollowUpTask``), a field as a schema coordinate, ``Type.field`` (``Patient.specialNeeds``,
``Contact.phone``), a code as its enum values and error codes are (``FORBIDDEN_FIELD``). Spelled when an event is
shown, from the row already read: never stored, never a query of its own.
"""

from __future__ import annotations

import re
from functools import lru_cache

from audit.events import Action
from core.validation import camel_case

# Columns whose API field has another name: the record it points to, not its id.
_API_FIELDS = {("patient", "department_id"): "department"}
# Events whose bare field names are the patient file's although they name another kind of record: a consent to be
# contacted (its record is the file), a message's address handed to its gateway (the patient's phone or e-mail).
_OF_THE_FILE = {"contact_consent"}
# Kinds whose GraphQL type is not the stored kind in CamelCase (found in review: named Improvement, Attachment and
# SlaPolicy, no type of the schema, a filter by the type's name found none of their events).
_API_TYPES = {"improvement": "ImprovementItem", "attachment": "TicketAttachment", "sla_policy": "SlaLevel"}
_STORED_TYPES = {name: kind for kind, name in _API_TYPES.items()}
_WORD = re.compile(r"[^0-9A-Za-z]+")
_CAPITAL = re.compile(r"(?<=[0-9a-z])(?=[A-Z])")


def type_name(resource_type: str) -> str:
    """``follow_up_task`` -> ``FollowUpTask``: the name of the record's GraphQL type where the API has one (a kind
    it has no type for, ``request``, ``session``, is spelled the same way: ``Request``, ``Session``)."""
    return _API_TYPES.get(resource_type) or "".join(part[:1].upper() + part[1:] for part in resource_type.split("_"))


def resource_type_of(name: str) -> str:
    """The stored resource type of a type's name (``FollowUpTask`` -> ``follow_up_task``): ``type_name``'s inverse,
    for a filter given in the API's spelling."""
    return _STORED_TYPES.get(name) or _CAPITAL.sub("_", name).lower()


@lru_cache(maxsize=4096)  # a trail names a few hundred fields; a detail's value (a period) varies, hence the bound
def field_name(resource_type: str, action: str, stored: str) -> str:
    """A name of ``fields_read`` as the API names the field: ``Type.field``. A column of the event's own record
    (``special_needs`` on a patient's) is its type's; ``table.column`` (``contact.phone``, ``visit.summary``, read
    on the patient's file) is that table's type's. A system event's detail (an export's ``format:csv``, a merge's
    ``visit:3``) names no field: it stays ``key:value``, its key in camelCase."""
    key, colon, value = stored.partition(":")
    if colon:
        return f"{camel_case(key)}:{value}"
    table, dot, column = stored.partition(".")
    if not dot:
        table, column = _owner(resource_type, action), stored
    return f"{type_name(table)}.{_API_FIELDS.get((table, column)) or camel_case(column)}"


def _owner(resource_type: str, action: str) -> str:
    """The record a bare field name of an event belongs to."""
    return "patient" if resource_type in _OF_THE_FILE or action == Action.DISCLOSE else resource_type


def reason_code(reason: str) -> str:
    """``forbidden_field`` -> ``FORBIDDEN_FIELD``, as the API spells codes; empty for no reason."""
    return _WORD.sub("_", reason).strip("_").upper()
