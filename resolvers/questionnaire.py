"""Survey instruments (FHIR Questionnaire): the institution's questionnaires, their versions and templates.

A questionnaire's versions share a ``key``. A version with a response is never changed again: editing it
makes the next version, a draft, which replaces the old one when it is activated (the old one is retired
then), so every figure can say which version it comes from. A version without responses is edited in
place, compare-and-set on its ``revision``, but for its anonymity once it has invitations (see ``_sent``). One
version per key is active: activating one retires the one that was, and one copy per template is in use. Only the
key's newest version is edited. Questionnaires are the institution's, in no department: admins and department heads
keep them (questionnaire: create, update), staff who take answers read them (questionnaire: read). Organisational
text, in clear; every read and write on the audit trail.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from audit import writer
from audit.events import Action
from core import questionnaire as definition
from core import questionnaire_fhir as fhir
from core.errors import ILLEGAL_TRANSITION, BadUserInput, Conflict, InvalidInput
from core.ids import uuid7
from core.validation import Problems, one_of
from models import Institution, Questionnaire, QuestionnaireResponse, SurveyInvitation
from models.questionnaire import QUESTIONNAIRE_STATUSES, RESPONDENTS, SUBJECTS
from policies.guard import Decision
from resolvers import access, pagination
from resolvers import survey as surveys
from resolvers import survey_report as reports
from resolvers.context import Context
from resolvers.questionnaire_templates import TEMPLATES, Template

CURSOR = "questionnaire"
MAX_TITLE = 200
MAX_PURPOSE = 1000
DEFINITION = ("items", "scoring")
COLUMNS = ("title", "purpose", "respondent", "subject", "anonymous", "items", "scoring")
DEFAULTS = {"purpose": {}, "respondent": "patient", "subject": "visit", "anonymous": False}


def _now() -> datetime:
    return datetime.now(UTC)


# -- reading ---------------------------------------------------------------------------------


async def page(ctx: Context, *, status: str | None, key: uuid.UUID | None, first: int,
               after: str | None, count: bool = False) -> pagination.Page[Questionnaire]:
    """The institution's questionnaires (of one status, the versions of one key), in creation order."""
    decision = await access.authorize(ctx, "questionnaire", "read", action=Action.READ, resource_type="questionnaire")
    first = pagination.check_page_size(first, ctx.services.settings.limits.max_page_size)
    query = Questionnaire.filter(institution_id=ctx.institution_id)
    if status is not None:
        query = query.filter(status=one_of(status, QUESTIONNAIRE_STATUSES, "status"))
    if key is not None:
        query = query.filter(key=key)
    page = await pagination.by_id(query, first=first, after=after, kind=CURSOR, count=count)
    ctx.reads.note("questionnaire", None, None, rule=decision.rule)
    return page


async def one(ctx: Context, questionnaire_id: uuid.UUID | None) -> Questionnaire:
    decision = await access.authorize(ctx, "questionnaire", "read", action=Action.READ,
                                      resource_type="questionnaire", resource_id=questionnaire_id)
    row = await _find(ctx, questionnaire_id, Action.READ)
    ctx.reads.note("questionnaire", row.id, None, rule=decision.rule)
    return row


async def templates(ctx: Context) -> list[Template]:
    """The shipped templates (the same for every institution)."""
    decision = await access.authorize(ctx, "questionnaire", "read", action=Action.READ,
                                      resource_type="questionnaire_template")
    ctx.reads.note("questionnaire_template", None, None, rule=decision.rule)
    return list(TEMPLATES.values())


async def author_id(ctx: Context, row: Questionnaire) -> uuid.UUID | None:
    """Who wrote this version: for those who manage questionnaires (``_require_manager``)."""
    await _require_manager(ctx, row)
    return row.author_id


async def _require_manager(ctx: Context, row: Questionnaire) -> None:
    """A version's author and response count need ``questionnaire: read``: a patient or a rating doctor reaches the
    version through an invitation to answer it, which opens its items, not how it is run (found in review: both
    read them). FORBIDDEN on the field, the refusal on the trail."""
    await access.authorize(ctx, "questionnaire", "read", action=Action.READ, resource_type="questionnaire",
                           resource_id=row.id)


async def response_count(ctx: Context, row: Questionnaire) -> int:
    """Responses to this version; of a version whose responses are anonymous (``survey_report.names_nobody``), those
    the list shows: of a closed month (counted live, it told when an answer came) and of a cell (department and
    month) of at least min_cell (the total minus the report's shown cells gave the small ones' count, found in
    review). One grouped statement for a page of questionnaires, and the survey settings when an anonymous version
    is among them. For managers only (``_require_manager``)."""
    await _require_manager(ctx, row)

    async def batch(versions: Sequence[tuple[uuid.UUID, bool]]) -> list[int]:
        # Whether a version names nobody is read off its row, as loaded: a version with a response is never changed
        # again, and one without counts 0 whatever its flag.
        ids, nameless = [i for i, _ in versions], {i for i, anonymous in versions if anonymous}
        live, least = (await reports.live_month(ctx), await reports.min_cell(ctx)) if nameless else ("", 0)
        cells = await QuestionnaireResponse.filter(institution_id=ctx.institution_id, questionnaire_id__in=ids) \
            .annotate(n=Count("id")).group_by("questionnaire_id", "department_id", "month") \
            .values_list("questionnaire_id", "department_id", "month", "n")
        counts: dict[uuid.UUID, int] = {}
        for qid, _, month, n in cells:
            version = _uuid(qid)
            if version not in nameless or reports.released_cell(month, int(n), live, least):
                counts[version] = counts.get(version, 0) + int(n)
        return [counts.get(i, 0) for i in ids]

    return int(await ctx.require_loaders().made("questionnaire_responses", batch).load(
        (row.id, reports.names_nobody(row.anonymous, row.respondent))))


async def export_fhir(ctx: Context, questionnaire_id: uuid.UUID | None) -> str:
    """One version as an R4 Questionnaire resource (JSON text)."""
    row = await one(ctx, questionnaire_id)
    return json.dumps(fhir.to_fhir(_columns(row) | {"id": row.id, "key": row.key, "version": row.version,
                                                    "status": row.status}), ensure_ascii=False)


# -- writing ---------------------------------------------------------------------------------


async def create(ctx: Context, data: dict[str, Any]) -> Questionnaire:
    """A draft, version 1 of a new key."""
    decision = await access.authorize(ctx, "questionnaire", "create", action=Action.CREATE,
                                      resource_type="questionnaire")
    values = _values(DEFAULTS | data, whole=True)
    return await _insert(ctx, decision, values, status="draft")


async def import_fhir(ctx: Context, text: str) -> Questionnaire:
    """A draft from an R4 Questionnaire; what careloop cannot represent is refused (BAD_USER_INPUT on ``json``)."""
    decision = await access.authorize(ctx, "questionnaire", "create", action=Action.CREATE,
                                      resource_type="questionnaire")
    data = fhir.from_fhir(fhir.parse(text))
    try:
        values = _values(DEFAULTS | data, whole=True)
    except InvalidInput as error:  # the same checks as a draft typed in, named inside the JSON
        raise InvalidInput([(f"json.{path}", reason, message) for path, reason, message in error.problems]) from None
    return await _insert(ctx, decision, values, status="draft")


async def adopt(ctx: Context, code: str) -> Questionnaire:
    """The institution's active copy of a shipped template; one live copy (draft or active) per template, looked
    for under ``_lock_templates`` (as activating a copy does)."""
    decision = await access.authorize(ctx, "questionnaire", "create", action=Action.CREATE,
                                      resource_type="questionnaire")
    template = TEMPLATES[one_of(code, TEMPLATES, "template")]
    values = _values({"title": template.title, "purpose": template.purpose, "respondent": template.respondent,
                      "subject": template.subject, "anonymous": template.anonymous, "items": template.items,
                      "scoring": template.scoring}, whole=True)
    async with in_transaction():
        # Looked for under the templates' lock (found in review: looked for before, two adopts at once both found
        # none and made two live copies)
        await _lock_templates(ctx)
        if await _live_copy(ctx, template.code):
            raise Conflict("template: the institution already has this template in use; edit that one.",
                           field="template", reason="template_in_use")
        return await _create_row(ctx, decision, values, status="active", template=template.code, key=uuid7(),
                                 version=1)


async def update(ctx: Context, questionnaire_id: uuid.UUID | None, data: dict[str, Any],
                 revision: int) -> tuple[Questionnaire, bool]:
    """Edit the key's newest version: in place while it has no response (compare-and-set on ``revision``) and, for a
    change of its anonymity, no invitation either (``_sent``); else as the next version, a draft. Answers the version
    written and whether it is a new one."""
    decision = await access.authorize(ctx, "questionnaire", "update", action=Action.UPDATE,
                                      resource_type="questionnaire", resource_id=questionnaire_id)
    if not data:  # after the rights (found in review: before them, one without any got no FORBIDDEN, no audit row)
        raise BadUserInput("input: give at least one field to change.", field="input")
    changes = _values(data, whole=False)  # the input's shape first; with the version's own fields below
    row = await _find(ctx, questionnaire_id, Action.UPDATE)
    merged = _values(_columns(row) | changes, whole=True)  # items and scoring are checked together
    changes = {name: merged[name] for name in changes}
    await _check_editable(ctx, row, revision)
    try:
        async with in_transaction():
            # The row locked, then its responses counted: an answer saved before this lock makes this edit the
            # next version (an answer that locks the row too, as answering does, waits for the edit).
            # FOR NO KEY UPDATE: invitations and responses referencing the row (key-share locks) are not blocked,
            # which would deadlock against their transactions holding the audit chain's head
            locked = await Questionnaire.filter(id=row.id, institution_id=ctx.institution_id).select_for_update(
                no_key=True).first()
            if locked is None or locked.revision != revision or locked.status == "retired":
                raise _stale()
            if await QuestionnaireResponse.exists(institution_id=ctx.institution_id, questionnaire_id=row.id) or (
                    changes.get("anonymous", locked.anonymous) != locked.anonymous and await _sent(ctx, row.id)):
                return await _create_row(ctx, decision, merged, status="draft", template=row.template,
                                         key=row.key, version=row.version + 1), True
            await Questionnaire.filter(id=row.id, institution_id=ctx.institution_id).update(
                **changes, revision=revision + 1, updated_at=_now())
            await writer.append([access.write_record(ctx, Action.UPDATE, "questionnaire", row.id,
                                                     fields=frozenset(changes), decision=decision)])
    except IntegrityError:  # another edit made the next version a moment ago
        raise _stale() from None
    return await Questionnaire.get(id=row.id, institution_id=ctx.institution_id), False


async def _sent(ctx: Context, questionnaire_id: uuid.UUID) -> bool:
    """Whether the version has invitations, looked for in the invitations' turn (``survey.take_turn``), so one being
    made meanwhile is either seen or made after this edit. Its anonymity is then fixed: the patients were shown it
    so, and their answers keep what they were shown (found in review: edited in place from anonymous to identified,
    a patient who had opened the anonymous form gave an answer that named them); the edit is the next version."""
    await surveys.take_turn(ctx.institution_id)
    return await SurveyInvitation.exists(institution_id=ctx.institution_id, questionnaire_id=questionnaire_id)


async def activate(ctx: Context, questionnaire_id: uuid.UUID | None, revision: int | None = None) -> Questionnaire:
    """Make this version the key's active one; the version active until now is retired. ``revision``: the one
    read (stale: CONFLICT, nothing written); every version whose status changes gets the next revision. A template's
    copy is not put back in use while another copy of the template is (CONFLICT)."""
    decision = await access.authorize(ctx, "questionnaire", "update", action=Action.UPDATE,
                                      resource_type="questionnaire", resource_id=questionnaire_id)
    row = await _find(ctx, questionnaire_id, Action.UPDATE)
    if row.status == "active":
        raise Conflict("id: this version is active already.", field="id", reason=ILLEGAL_TRANSITION)
    if revision is not None and revision != row.revision:
        raise _stale()
    async with in_transaction():
        if row.template is not None:  # a template's copy: one live copy per template, as adopting keeps it
            await _lock_templates(ctx)
        # the key's versions, locked: two activations of one key run one after the other
        versions = await Questionnaire.filter(institution_id=ctx.institution_id, key=row.key).select_for_update(
            no_key=True)
        current = next(v for v in versions if v.id == row.id)
        if current.status == "active":
            raise Conflict("id: this version is active already.", field="id", reason=ILLEGAL_TRANSITION)
        if revision is not None and revision != current.revision:
            raise _stale()
        if current.template is not None and await _live_copy(ctx, current.template, besides=current.key):
            # found in review: a retired copy was put back in use beside the copy adopted since
            raise Conflict("id: another copy of this template is in use; retire it first.", field="id",
                           reason=ILLEGAL_TRANSITION)
        retired = [v.id for v in versions if v.status == "active"]
        now = _now()
        if retired:
            await Questionnaire.filter(institution_id=ctx.institution_id, id__in=retired).update(
                status="retired", revision=F("revision") + 1, updated_at=now)
        await Questionnaire.filter(institution_id=ctx.institution_id, id=row.id).update(
            status="active", revision=current.revision + 1, updated_at=now)
        await writer.append([access.write_record(ctx, Action.UPDATE, "questionnaire", v, fields=frozenset({"status"}),
                                                 decision=decision) for v in (*retired, row.id)])
    return await Questionnaire.get(id=row.id, institution_id=ctx.institution_id)


async def retire(ctx: Context, questionnaire_id: uuid.UUID | None, revision: int | None = None) -> Questionnaire:
    """No more invitations to this version; its responses and figures stay. ``revision``: the one read (stale:
    CONFLICT, nothing written); retiring moves it to the next."""
    decision = await access.authorize(ctx, "questionnaire", "update", action=Action.UPDATE,
                                      resource_type="questionnaire", resource_id=questionnaire_id)
    row = await _find(ctx, questionnaire_id, Action.UPDATE)
    if row.status == "retired":
        raise _retired()
    if revision is not None and revision != row.revision:
        raise _stale()
    async with in_transaction():
        locked = await Questionnaire.filter(id=row.id, institution_id=ctx.institution_id).select_for_update(
            no_key=True).first()  # FOR NO KEY UPDATE, as an edit takes it
        if locked is None or locked.status == "retired":
            raise _retired()
        if revision is not None and revision != locked.revision:
            raise _stale()
        await Questionnaire.filter(id=row.id, institution_id=ctx.institution_id).update(
            status="retired", revision=locked.revision + 1, updated_at=_now())
        await writer.append([access.write_record(ctx, Action.UPDATE, "questionnaire", row.id,
                                                 fields=frozenset({"status"}), decision=decision)])
    return await Questionnaire.get(id=row.id, institution_id=ctx.institution_id)


async def _insert(ctx: Context, decision: Decision, values: dict[str, Any], *, status: str,
                  template: str | None = None) -> Questionnaire:
    """Version 1 of a new questionnaire, in its own transaction."""
    async with in_transaction():
        return await _create_row(ctx, decision, values, status=status, template=template, key=uuid7(), version=1)


async def _create_row(ctx: Context, decision: Decision, values: dict[str, Any], *, status: str,
                      template: str | None, key: uuid.UUID, version: int) -> Questionnaire:
    """A version and its record, inside the caller's transaction."""
    row = await Questionnaire.create(id=uuid7(), institution_id=ctx.institution_id, key=key, version=version,
                                     status=status, template=template, author_id=ctx.actor.id, **values)
    await writer.append([access.write_record(ctx, Action.CREATE, "questionnaire", row.id,
                                             fields=frozenset(values) | {"version", "status"}, decision=decision)])
    return row


async def _lock_templates(ctx: Context) -> None:
    """Inside the caller's transaction, what adopting a template and activating a template's copy both take before
    looking for a live copy: the institution's row, FOR NO KEY UPDATE (rows referencing it are still written
    meanwhile), so the two look and write one after the other. No unique index can say "one live copy": a copy's
    next version, a draft, is live beside its active one."""
    await Institution.filter(id=ctx.institution_id).select_for_update(no_key=True).only("id").first()


async def _live_copy(ctx: Context, template: str, *, besides: uuid.UUID | None = None) -> bool:
    """Whether a copy of the template (of another key than ``besides``) is in use, a draft or active."""
    live = Questionnaire.filter(institution_id=ctx.institution_id, template=template, status__in=("draft", "active"))
    return await (live.exclude(key=besides) if besides is not None else live).exists()


async def _find(ctx: Context, questionnaire_id: uuid.UUID | None, action: Action) -> Questionnaire:
    return await access.find_in_institution(ctx, Questionnaire, questionnaire_id, action=action,
                                            resource_type="questionnaire")


async def _check_editable(ctx: Context, row: Questionnaire, revision: int) -> None:
    if row.status == "retired":
        raise _retired()
    if await Questionnaire.exists(institution_id=ctx.institution_id, key=row.key, version__gt=row.version):
        raise Conflict("id: a newer version of this questionnaire exists; edit that one.", field="id",
                       reason="newer_version_exists")
    if revision != row.revision:
        raise _stale()


def _stale() -> Conflict:
    return Conflict("revision: the questionnaire changed since you read it; read it again.", field="revision")


def _retired() -> Conflict:
    return Conflict("id: the questionnaire is retired.", field="id", reason=ILLEGAL_TRANSITION)


def _columns(row: Questionnaire) -> dict[str, Any]:
    return {name: getattr(row, name) for name in COLUMNS}


def _values(data: dict[str, Any], *, whole: bool) -> dict[str, Any]:
    """Columns from the API's fields, checked, every problem at once (in the columns' order); ``whole``: a complete
    questionnaire. The definition is checked as one (items and scoring: its first fault) when both are there."""
    problems = Problems()
    out: dict[str, Any] = {}
    for name in sorted(data, key=lambda name: COLUMNS.index(name) if name in COLUMNS else len(COLUMNS)):
        with problems.collect(name):
            out[name] = _value(name, data[name])
    if whole:
        for required in ("title", *DEFINITION):
            if required not in data:
                problems.add(required, "required", "is required.")
    if all(name in out for name in DEFINITION):
        with problems.collect("items"):
            out["items"], out["scoring"] = definition.clean_definition(out["items"], out["scoring"])
    problems.check()
    return out


def _value(name: str, value: Any) -> Any:
    if value is None and name != "purpose":
        raise BadUserInput(f"{name}: must not be null.", field=name, reason="required")
    if name == "title":
        return definition.check_texts(value, "title", MAX_TITLE)
    if name == "purpose":
        return definition.check_texts(value, "purpose", MAX_PURPOSE) if value else {}
    if name == "respondent":
        return one_of(value, RESPONDENTS, "respondent")
    if name == "subject":
        return one_of(value, SUBJECTS, "subject")
    if name == "anonymous":
        if not isinstance(value, bool):
            raise BadUserInput("anonymous: must be true or false.", field="anonymous")
        return value
    if name in DEFINITION:
        return value
    raise BadUserInput(f"{name}: cannot be set here.", field=name)


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
