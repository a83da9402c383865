"""Message templates: what each message to patients says, per cause, channel and language.

Slots are ``{variable}`` with one of the variables listed on ``MessageTemplateConnection.variables``
(names, dates, times, places, the institution's name and phone, the unsubscribe link): a template
with any other slot, such as ``{diagnosis}``, is refused (BAD_USER_INPUT), because a message is read
on a lock screen and passes through a gateway.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry

from resolvers import message_template as templates
from resolvers.message_template import Preview, Template
from resolvers.pagination import Page
from schema.common import DEFAULT_PAGE_SIZE, TOTAL_COUNT, First, Info, PageInfo, Version, asks_total


@strawberry.enum(description="Why a message is sent to a patient: the cause a template is for.")
class TemplateCause(Enum):
    APPOINTMENT_CONFIRMATION = strawberry.enum_value("appointment_confirmation",
                                                     description="An appointment was booked.")
    APPOINTMENT_REMINDER = strawberry.enum_value("appointment_reminder",
                                                 description="An appointment is coming (default 24 hours before).")
    APPOINTMENT_CHANGE = strawberry.enum_value("appointment_change", description="An appointment was moved.")
    APPOINTMENT_CANCELLATION = strawberry.enum_value("appointment_cancellation",
                                                     description="An appointment was cancelled.")
    REVISIT_REMINDER = strawberry.enum_value("revisit_reminder",
                                             description="A re-visit is due (from after-visit instructions).")
    PENDING_TREATMENT_REMINDER = strawberry.enum_value("pending_treatment_reminder",
                                                       description="A planned treatment is not booked yet.")
    FOLLOW_UP_ANNOUNCEMENT = strawberry.enum_value("follow_up_announcement",
                                                   description="A follow-up call is coming.")
    SURVEY_INVITATION = strawberry.enum_value("survey_invitation", description="An invitation to a survey.")
    CONTRACT_EXPIRY = strawberry.enum_value("contract_expiry", description="A service contract's term ends soon (60 "
                                                                      "and 30 days before).")
    CONTRACT_SIGNATURE = strawberry.enum_value("contract_signature",
                                               description="A contract version sent to the client is still "
                                                           "unsigned after a week.")
    BIRTHDAY_GREETING = strawberry.enum_value("birthday_greeting",
                                              description="A birthday greeting (greetings purpose).")
    HOLIDAY_GREETING = strawberry.enum_value("holiday_greeting",
                                             description="A holiday greeting (greetings purpose).")
    CAMPAIGN = strawberry.enum_value("campaign", description="A campaign or newsletter (campaigns purpose).")


@strawberry.enum(description="The channel a template is for; ANY serves every channel without its own.")
class TemplateChannel(Enum):
    ANY = strawberry.enum_value("any", description="Every channel without a template of its own.")
    SMS = strawberry.enum_value("sms", description="Text message (at most 500 characters).")
    EMAIL = strawberry.enum_value("email", description="E-mail (the subject is its subject line).")
    WECHAT = strawberry.enum_value("wechat", description="WeChat message.")
    APP = strawberry.enum_value("app", description="Notification in the patient app.")


@strawberry.enum(description="A template's language. Patients whose language has no template get Chinese.")
class TemplateLanguage(Enum):
    ZH_CN = strawberry.enum_value("zh-CN", description="Simplified Chinese (the fallback).")
    EN = strawberry.enum_value("en", description="English.")


@strawberry.type(description="A template in force: the institution's own, or a built-in default it has not "
                             "replaced.")
class MessageTemplate:
    cause: TemplateCause = strawberry.field(description="What the messages it writes are sent for.")
    channel: TemplateChannel = strawberry.field(description="The channel it serves (defaults serve ANY).")
    language: TemplateLanguage = strawberry.field(description="The language it is written in: a patient whose "
                                                              "language has none gets the ZH_CN one.")
    subject: str = strawberry.field(description="The subject line (e-mail); may hold slots.")
    body: str = strawberry.field(description="The text with its {variable} slots.")
    is_default: bool = strawberry.field(description="True: the built-in default; false: the institution's own.")
    version: int = strawberry.field(description="0 for a default (never written, or reset), 1 when first "
                                                "written, one more on each change and reset: a key's versions "
                                                "never repeat, so one read before a reset stays stale. Pass it "
                                                "back to messageTemplateSet.")
    updated_at: datetime | None = strawberry.field(description="When the institution last wrote it (null: a "
                                                               "default).")

    @classmethod
    def of(cls, found: Template) -> MessageTemplate:
        return cls(cause=TemplateCause(found.cause), channel=TemplateChannel(found.channel),
                   language=TemplateLanguage(found.language), subject=found.subject, body=found.body,
                   is_default=found.is_default, version=found.version, updated_at=found.updated_at)


@strawberry.type(description="A template and its cursor.")
class MessageTemplateEdge:
    cursor: str = strawberry.field(description="Pass as `after` for the templates after this one.")
    node: MessageTemplate = strawberry.field(description="The template.")


@strawberry.type(description="A page of templates in force, by cause, language and channel.")
class MessageTemplateConnection:
    edges: list[MessageTemplateEdge] = strawberry.field(description="The templates of this page.")
    page_info: PageInfo = strawberry.field(description="Whether more follow.")
    total_count: int | None = strawberry.field(default=None, description=TOTAL_COUNT)

    @strawberry.field(description="The templates of this page.")
    def nodes(self) -> list[MessageTemplate]:
        return [edge.node for edge in self.edges]

    @strawberry.field(description="The variables a template may use, each written {name}.")
    def variables(self) -> list[str]:
        return list(templates.VARIABLES)


@strawberry.type(description="A template rendered with sample values (never a patient's data) and the "
                             "institution's own name and phone.")
class MessageTemplatePreview:
    template: MessageTemplate = strawberry.field(description="The template rendered (a draft when one was given: "
                                                            "then of the channel asked for, with the version to "
                                                            "pass to messageTemplateSet).")
    subject: str = strawberry.field(description="The subject as a patient would read it.")
    body: str = strawberry.field(description="The text as a patient would read it.")
    length: int = strawberry.field(description="The rendered text's length in characters.")
    sms_parts: int = strawberry.field(description="How many text messages it takes (70 Chinese or 160 plain "
                                                  "characters in one; longer ones are split).")

    @classmethod
    def of(cls, found: Preview) -> MessageTemplatePreview:
        return cls(template=MessageTemplate.of(found.template), subject=found.subject, body=found.body,
                   length=len(found.body), sms_parts=templates.sms_parts(found.body))


@strawberry.input(description="A template to write for a cause, channel and language: it replaces the one in force "
                              "there.")
class MessageTemplateInput:
    cause: TemplateCause = strawberry.field(description="What it is sent for.")
    channel: TemplateChannel = strawberry.field(description="ANY, or one channel that gets its own text.")
    language: TemplateLanguage = strawberry.field(description="The language it is written in; patients of that "
                                                              "language get it.")
    subject: str = strawberry.field(default="", description="The subject line (e-mail), at most 200 characters.")
    body: str = strawberry.field(description="The text: at most 1,000 characters (500 for SMS, and for ANY, which "
                                             "is the text message wherever there is no SMS template), only the "
                                             "listed {variable} slots; greetings and campaigns must carry "
                                             "{unsubscribe_url}.")


def _key(cause: TemplateCause, channel: TemplateChannel, language: TemplateLanguage) -> tuple[str, str, str]:
    return str(cause.value), str(channel.value), str(language.value)


def connection(page: Page[Template]) -> MessageTemplateConnection:
    return MessageTemplateConnection(
        edges=[MessageTemplateEdge(cursor=cursor, node=MessageTemplate.of(found)) for cursor, found in page.items],
        page_info=PageInfo.of(page), total_count=page.total)


@strawberry.type
class MessageTemplateQuery:
    @strawberry.field(description="The templates in force: the institution's own and the defaults it has not "
                                  "replaced (admins, department heads). 1 to 100 a page.")
    async def message_templates(
            self, info: Info,
            cause: Annotated[TemplateCause | None, strawberry.argument(description="Only this cause's.")] = None,
            first: First = DEFAULT_PAGE_SIZE,
            after: Annotated[str | None, strawberry.argument(description="The cursor to continue after.")] = None,
    ) -> MessageTemplateConnection:
        page = await templates.templates(info.context, cause=None if cause is None else str(cause.value), first=first,
                                         after=after, count=asks_total(info))
        return connection(page)

    @strawberry.field(description="The template in force for a cause, channel and language (or a draft of it) "
                                  "rendered with sample values: check it before you save it (admins, department "
                                  "heads).")
    async def message_template_preview(
            self, info: Info,
            cause: Annotated[TemplateCause, strawberry.argument(description="What it is sent for.")],
            channel: Annotated[TemplateChannel, strawberry.argument(
                description="The channel whose template to render (ANY: the text every channel without its own "
                            "uses).")],
            language: Annotated[TemplateLanguage, strawberry.argument(
                description="The language whose template to render.")],
            subject: Annotated[str | None, strawberry.argument(
                description="A draft subject to render instead (checked like a saved one).")] = None,
            body: Annotated[str | None, strawberry.argument(
                description="A draft text to render instead (checked like a saved one).")] = None,
    ) -> MessageTemplatePreview:
        found = await templates.preview(info.context, *_key(cause, channel, language), subject, body)
        return MessageTemplatePreview.of(found)


@strawberry.type
class MessageTemplateMutation:
    @strawberry.mutation(description="Write the institution's template for a cause, channel and language (admins). "
                                     "Pass the version you read (0 for a default): a stale one is a CONFLICT.")
    async def message_template_set(
            self, info: Info,
            input: Annotated[MessageTemplateInput, strawberry.argument(description="The template.")],
            version: Annotated[int | None, strawberry.argument(
                description="The version you read; leave it out to write regardless.")] = None,
    ) -> MessageTemplate | None:
        found = await templates.set_template(info.context, *_key(input.cause, input.channel, input.language),
                                             input.subject, input.body, version)
        return MessageTemplate.of(found)

    @strawberry.mutation(description="Drop the institution's template for a cause, channel and language (admins): "
                                     "answers the one in force from now on (its ANY template, or the default). "
                                     "Pass the version you read (0 for a default): a stale one is a CONFLICT. "
                                     "The next messageTemplateSet there states 0 and continues the key's "
                                     "versions, so a version read before the reset stays a CONFLICT.")
    async def message_template_reset(
            self, info: Info,
            cause: Annotated[TemplateCause, strawberry.argument(description="What it is sent for.")],
            channel: Annotated[TemplateChannel, strawberry.argument(
                description="The channel whose own template goes (ANY: the institution's text for every channel).")],
            language: Annotated[TemplateLanguage, strawberry.argument(
                description="The language whose template goes back to the built-in one.")],
            version: Version = None,
    ) -> MessageTemplate | None:
        return MessageTemplate.of(await templates.reset(info.context, *_key(cause, channel, language), version))
