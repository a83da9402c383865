"""A patient's family members and emergency contacts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.fields.relational import BackwardFKRelation
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action
from audit.reads import ReadLog
from core.errors import BadUserInput, CareloopError, Conflict, Forbidden
from core.ids import uuid7
from core.validation import Problems, clean_text, normalize_phone, one_of
from models import Contact, Patient
from models.contact import RELATIONSHIPS
from resolvers import access, writes
from resolvers.access import ContactView, PatientView
from resolvers.context import Context

_TEXT_LIMITS = {"name": 100, "notes": 500}
# A contact's fields whose read is audited (``access.read_contact_field``); id, patientId and version are not.
CONTACT_FIELDS = frozenset({"name", "relationship", "phone", "is_emergency", "may_receive_information", "notes",
                            "updated_at"})
# What a contact row read in part holds besides the columns its fields read: its id, institution and patient (its
# view's, and what its sealed columns are opened under)
ROW_COLUMNS = ("id", "institution_id", "patient_id")
REFERENCED = "contact_referenced"  # refused: other records name the contact (extensions.reason, audit reason)
# A file holds at most this many contacts (found in review: Patient.contacts, on a page of up to 100 files, had no
# bound). A bound on writes, not on the list: read whole, it costs the hottest page no statement. contactCreate
# refuses one more (BAD_USER_INPUT, reason ``item_count``); a merge keeps both files' contacts, so a survivor may
# hold more, and takes no new one until it holds fewer.
MAX_CONTACTS = 50
ITEM_COUNT = "item_count"  # refused: the file holds MAX_CONTACTS (extensions.reason, audit reason)


async def of_patient(ctx: Context, view: PatientView) -> list[ContactView]:
    contacts = await ctx.require_loaders().contacts_by_patient.load(view.row.id)
    return [ContactView(contact, view) for contact in contacts]


async def of_patients(ctx: Context, views: Sequence[PatientView], columns: tuple[str, ...] | None = None
                      ) -> list[list[ContactView]]:
    """``of_patient`` of each of ``views``, in one statement outside the request's loaders (a batched
    completion's: see ``schema.compiled.fast``); ``columns``: rows with only those (``ROW_COLUMNS`` among them),
    None: whole rows."""
    found = await ctx.require_loaders().contacts_once([view.row.id for view in views], columns)
    return [[ContactView(contact, view) for contact in rows] for view, rows in zip(views, found, strict=True)]


async def create(ctx: Context, patient_id: uuid.UUID | None, data: dict[str, Any],
                 returned: frozenset[str] = frozenset()) -> ContactView:
    """Add a contact; ``returned`` names the contact's fields the caller's selection reads back, whose read
    record is appended with the write (one statement) rather than after it."""
    decision = await access.authorize(ctx, "contact", "create", action=Action.CREATE, resource_type="contact",
                                      patient_id=patient_id)
    # the file's row with only what its view needs: a contact is sealed under its own id, not the patient's columns
    view = await access.find_patient(ctx, patient_id, action=Action.CREATE, field="patientId",
                                     columns=access.view_columns(()))
    await _require_contact_class(ctx, view, Action.CREATE, "create")
    values = _normalize(data)
    for required in ("name", "relationship"):
        if values.get(required) is None:
            raise BadUserInput(f"{required}: is required.", field=required)
    contact_id = uuid7()
    row = Contact(id=contact_id, institution_id=ctx.institution_id, patient_id=view.row.id,
                  **_columns(ctx, contact_id, values))
    read_back = _read_back(ctx, view, returned)
    # The row, its record and the read of what the caller reads back in one statement on PostgreSQL (one round
    # trip, atomic without BEGIN/COMMIT), which also locks the file: nothing written if it was merged meanwhile, or
    # if it holds MAX_CONTACTS contacts, counted once locked.
    sql, params = writes.insert_on_open_file(row, fewer_than=MAX_CONTACTS)
    written = await writer.append_with(sql, params, [
        access.write_record(ctx, Action.CREATE, "contact", contact_id, patient_id=view.row.id,
                            fields=frozenset(values), decision=decision),
        *read_back.records(ctx.institution_id, ctx.actor, ctx.request)])
    if not written:
        raise await _refuse_unwritten(ctx, view.row.id)
    ctx.reads.mark_recorded(read_back)
    return ContactView(row, view)  # the row as written: no need to look it up again


async def update(ctx: Context, contact_id: uuid.UUID | None, data: dict[str, Any], version: int | None = None,
                 returned: frozenset[str] = frozenset()) -> ContactView:
    """Change a contact over the version the caller read (stale: CONFLICT, nothing written); ``returned`` as for
    ``create``."""
    if not data:
        raise BadUserInput("input: give at least one field to change.", field="input")
    decision = await access.authorize(ctx, "contact", "update", action=Action.UPDATE, resource_type="contact",
                                      resource_id=contact_id)
    view = await _find(ctx, contact_id, Action.UPDATE)
    await _require_contact_class(ctx, view.patient, Action.UPDATE, "update", view.row.id)
    values = _normalize(data)
    for required, field_name in (("name", "name"), ("relationship", "relationship"),
                                 ("is_emergency", "isEmergency"), ("may_receive_information", "mayReceiveInformation")):
        if required in values and values[required] is None:
            raise BadUserInput(f"{field_name}: must not be null.", field=field_name)
    read_back = _read_back(ctx, view.patient, returned)
    file = view.patient.row.id
    try:
        row = await writes.write_over_version(view.row, version, "contact", _columns(ctx, view.row.id, values), [
            access.write_record(ctx, Action.UPDATE, "contact", view.row.id, patient_id=file,
                                fields=frozenset(values), decision=decision),
            *read_back.records(ctx.institution_id, ctx.actor, ctx.request)], on_file=file)
    except writes.MovedOffFile:
        # the file merged since the contact was found, which moved it with its version to the survivor: the change
        # goes there if the caller reaches it there, as it would once found again (``access.following_survivor``)
        return await update(ctx, contact_id, data, version, returned)
    ctx.reads.mark_recorded(read_back)
    return ContactView(row, view.patient)  # the row as written: no need to look it up again


async def _refuse_unwritten(ctx: Context, patient_id: uuid.UUID) -> CareloopError:
    """Nothing was written: the file was merged meanwhile, or it holds MAX_CONTACTS contacts. The statement tells
    neither apart; this read, on a refusal only, does. The refusal on the trail, naming the file."""
    if await Patient.filter(id=patient_id, status=access.MERGED).exists():
        return await access.refuse_merged(ctx, Action.CREATE, patient_id)
    await access.deny(ctx, Action.CREATE, "contact", None, patient_id, reason=ITEM_COUNT)
    return BadUserInput(f"patientId: a patient has at most {MAX_CONTACTS} contacts; remove one before adding "
                        "another.", field="patientId", reason=ITEM_COUNT)


def _read_back(ctx: Context, patient: PatientView, returned: frozenset[str]) -> ReadLog:
    """The read of the contact's fields the caller's selection reads back, to append with the write."""
    log = ReadLog()
    for name in sorted(returned & CONTACT_FIELDS):
        access.note_contact_read(ctx, log, patient, name)
    return log


async def delete(ctx: Context, contact_id: uuid.UUID | None) -> uuid.UUID:
    """Delete a contact no other record names. One that messages (queued or sent), survey invitations,
    tickets or contracts name is kept with them (the database restricts it): CONFLICT, reason
    ``contact_referenced``, the refusal on the trail and nothing written."""
    decision = await access.authorize(ctx, "contact", "delete", action=Action.DELETE, resource_type="contact",
                                      resource_id=contact_id)
    view = await _find(ctx, contact_id, Action.DELETE)
    await _require_contact_class(ctx, view.patient, Action.DELETE, "delete", view.row.id)
    if await _referenced(ctx, view.row.id):
        raise await _refuse_referenced(ctx, view)
    file = view.patient.row.id
    try:
        async with in_transaction():
            # only while the contact is on the file found, as update writes it (``write_over_version(on_file=)``)
            if await Contact.filter(id=view.row.id, institution_id=ctx.institution_id, patient_id=file).delete():
                await writer.append([access.write_record(ctx, Action.DELETE, "contact", view.row.id,
                                                         patient_id=file, decision=decision)])
                return view.row.id
    except IntegrityError:  # a record came to name the contact after the check (a message queued meanwhile)
        raise await _refuse_referenced(ctx, view) from None
    # Not deleted: a merge since moved the contact to the survivor (found in review: deleted there without asking,
    # recorded on the merged file), or it was deleted meanwhile: found again, or NOT_FOUND, as update does.
    return await delete(ctx, contact_id)


async def _referenced(ctx: Context, contact_id: uuid.UUID) -> bool:
    """Whether a record of the institution names the contact: one statement per referencing table, every
    foreign key to ``contact`` found on the models (messages, survey invitations, tickets, contracts and
    their signatures), so a new one is never forgotten. Stops at the first found."""
    meta = Contact._meta
    for name in sorted(meta.backward_fk_fields | meta.backward_o2o_fields):
        relation = meta.fields_map[name]
        if not isinstance(relation, BackwardFKRelation):  # a one-to-one's backward relation is one too
            continue
        naming = {relation.relation_field: contact_id}
        if await relation.related_model.filter(institution_id=ctx.institution_id, **naming).exists():
            return True
    return False


async def _refuse_referenced(ctx: Context, view: ContactView) -> Conflict:
    """The refusal on the trail (before any transaction opens, or after its rollback) and its error."""
    await access.deny(ctx, Action.DELETE, "contact", view.row.id, view.patient.row.id, reason=REFERENCED)
    return Conflict("id: messages, survey invitations, tickets or contracts name this contact, so it is kept with "
                    "them. To stop contacting them, clear mayReceiveInformation (or their phone) instead.",
                    field="id", reason=REFERENCED)


async def _find(ctx: Context, contact_id: uuid.UUID | None, action: Action) -> ContactView:
    """A contact whose patient is in the caller's scope; otherwise NOT_FOUND."""
    row = None if contact_id is None else await Contact.get_or_none(id=contact_id, institution_id=ctx.institution_id)
    patients = access.checked_patients(ctx)  # with the checks views reads: no statement more
    patient = None
    if row is not None and patients is not None:
        patient = await patients.get_or_none(id=row.patient_id)
    if row is None or patient is None:
        raise await access.not_found(ctx, action, "contact", contact_id)
    return ContactView(row, (await access.views(ctx, [patient]))[0])


async def _require_contact_class(ctx: Context, view: PatientView, action: Action, act: str,
                                 contact_id: uuid.UUID | None = None) -> None:
    """The file's contact class read, and a role of the caller allowed to ``act`` on contacts reaching the file
    (found in review: a support agent, who reads every file's contacts, who was also a nurse of department B, added,
    changed and deleted the contacts of every department's patients); otherwise FORBIDDEN, recorded."""
    if "contact" not in view.classes:  # the refusal names the class, as a refused read of it does
        await access.deny(ctx, action, "contact", None, view.row.id, reason="forbidden",
                          field_classes=frozenset({"contact"}))
        raise Forbidden()
    await access.require_section_reached(ctx, view, "contact", act=act, resource_type="contact",
                                         resource_id=contact_id, action=action)


def _normalize(data: dict[str, Any]) -> dict[str, Any]:
    """Validated values; every invalid field reported at once (``core.validation.Problems``)."""
    problems = Problems()
    out = problems.each(data, lambda name, value: None if value is None else _normalize_one(name, value))
    problems.check()
    return out


def _normalize_one(name: str, value: Any) -> Any:
    if name in _TEXT_LIMITS:
        return clean_text(value, field=name, max_length=_TEXT_LIMITS[name], min_length=1)
    if name == "phone":
        return normalize_phone(value, field="phone")
    if name == "relationship":
        return one_of(value, RELATIONSHIPS, "relationship")
    return value


def _columns(ctx: Context, contact_id: uuid.UUID, values: dict[str, Any]) -> dict[str, Any]:
    columns = dict(values)
    for name in ("phone", "notes"):
        if name in values:
            columns[name] = access.seal(ctx, "contact", name, contact_id, values[name])
    if "phone" in values:
        columns["phone_bidx"] = access.blind_index(ctx, "phone", values["phone"])
    return columns
