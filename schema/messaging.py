"""The institution's messaging settings and its SMS / WeChat gateways (admins).

A gateway's secret is write-only: it is sealed with the institution's key and never returned
(``secretSet`` says one is there).
"""

from __future__ import annotations

from datetime import datetime, time
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import strawberry

from resolvers import messaging as messagings
from schema.common import Info, Version, provided

if TYPE_CHECKING:
    from models import MessageGateway as GatewayRow
    from models import MessagingSettings as SettingsRow


@strawberry.enum(description="A channel sent through an institution's HTTP gateway.")
class GatewayChannel(Enum):
    SMS = strawberry.enum_value("sms", description="Text messages.")
    WECHAT = strawberry.enum_value("wechat", description="WeChat messages.")


@strawberry.type(description="An HTTP gateway for one channel; bodies are signed with HMAC-SHA256 under its "
                             "secret, which is never shown.")
class MessageGateway:
    channel: GatewayChannel = strawberry.field(description="The channel it sends.")
    url_host: str = strawberry.field(description="The host (and port) of its URL; the path is not shown.")
    timeout_ms: int = strawberry.field(description="How long a send may take, in milliseconds.")
    active: bool = strawberry.field(description="Whether messages go through it (false: the channel is not used).")
    secret_set: bool = strawberry.field(description="Always true: a gateway has a secret, which is write-only.")
    version: int = strawberry.field(description="1 when first set, one more on each change; pass it back as "
                                                "`version` to messageGatewaySet (0 for a channel without a gateway).")
    updated_at: datetime = strawberry.field(description="When it was last changed.")

    @classmethod
    def of(cls, row: GatewayRow) -> MessageGateway:
        return cls(channel=GatewayChannel(row.channel), url_host=messagings.url_host(row.url),
                   timeout_ms=row.timeout_ms, active=row.active, secret_set=bool(row.secret), version=row.version,
                   updated_at=row.updated_at)


@strawberry.type(description="How the institution messages its patients. Until saved, the defaults are in force "
                             "(version 0).")
class MessagingSettings:
    reminder_hours_before: int = strawberry.field(description="How long before an appointment its reminder is sent, "
                                                              "in hours (1 to 168).")
    quiet_start: time = strawberry.field(description="Quiet hours start (local time in the institution's zone: "
                                                     "patients have none of their own): nothing is sent from "
                                                     "then ...")
    quiet_end: time = strawberry.field(description="... until then (the next morning when it is earlier).")
    non_care_cap: int = strawberry.field(description="At most this many greetings and campaign messages per patient "
                                                     "(0 to 50) ...")
    non_care_cap_days: int = strawberry.field(description="... within this many days (1 to 90).")
    portal_change_min_hours: int = strawberry.field(description="Patients book, move and cancel in the portal no "
                                                                "later than this many hours before the slot.")
    portal_horizon_days: int = strawberry.field(description="Patients book in the portal at most this many days "
                                                            "ahead.")
    institution_phone: str = strawberry.field(description="The phone number messages give, as written (empty: "
                                                          "none).")
    email_from: str = strawberry.field(description="The From address of e-mails (empty: the server's default).")
    version: int = strawberry.field(description="0 until saved, then one more on each change; pass it back to "
                                                "messagingSettingsUpdate.")
    updated_at: datetime | None = strawberry.field(description="When they were last saved (null: the defaults).")
    gateways: list[MessageGateway] = strawberry.field(description="The SMS and WeChat gateways, without their "
                                                                  "secrets.")

    @classmethod
    def of(cls, row: SettingsRow, gateways: list[GatewayRow]) -> MessagingSettings:
        return cls(reminder_hours_before=row.reminder_hours_before, quiet_start=time.fromisoformat(row.quiet_start),
                   quiet_end=time.fromisoformat(row.quiet_end), non_care_cap=row.non_care_cap,
                   non_care_cap_days=row.non_care_cap_days, portal_change_min_hours=row.portal_change_min_hours,
                   portal_horizon_days=row.portal_horizon_days, institution_phone=row.institution_phone,
                   email_from=row.email_from, version=row.version,
                   updated_at=row.updated_at if row.version else None,
                   gateways=[MessageGateway.of(g) for g in gateways])


@strawberry.input(description="Settings to change; those left out stay as they are.")
class MessagingSettingsInput:
    reminder_hours_before: int | None = strawberry.field(default=strawberry.UNSET, description="1 to 168 hours.")
    quiet_start: time | None = strawberry.field(default=strawberry.UNSET, description="A local time in whole "
                                                                                      "minutes, without an offset.")
    quiet_end: time | None = strawberry.field(default=strawberry.UNSET, description="A local time in whole minutes, "
                                                                                    "not the start.")
    non_care_cap: int | None = strawberry.field(default=strawberry.UNSET, description="0 to 50 (0: none at all).")
    non_care_cap_days: int | None = strawberry.field(default=strawberry.UNSET, description="1 to 90 days.")
    portal_change_min_hours: int | None = strawberry.field(
        default=strawberry.UNSET, description="0 to 168 hours, fewer than portalHorizonDays in hours.")
    portal_horizon_days: int | None = strawberry.field(
        default=strawberry.UNSET, description="1 to 365 days, longer than portalChangeMinHours.")
    institution_phone: str | None = strawberry.field(
        default=strawberry.UNSET, description="Digits with spaces, hyphens, parentheses or a leading +, kept as "
                                              "written (it is printed in messages); empty clears it.")
    email_from: str | None = strawberry.field(default=strawberry.UNSET, description="An e-mail address; empty "
                                                                                    "clears it.")


@strawberry.input(description="An SMS or WeChat gateway to create or change; fields left out stay as they are (a new "
                              "gateway needs url and secret).")
class MessageGatewayInput:
    channel: GatewayChannel = strawberry.field(description="Which channel's gateway.")
    url: str | None = strawberry.field(default=strawberry.UNSET, description="https (plain http only to this "
                                                                             "machine, outside production).")
    secret: str | None = strawberry.field(default=strawberry.UNSET, description="The signing secret: 16 to 256 "
                                                                                "printable ASCII characters. "
                                                                                "Write-only.")
    timeout_ms: int | None = strawberry.field(default=strawberry.UNSET, description="100 to 30,000 ms (default "
                                                                                    "5,000).")
    active: bool | None = strawberry.field(default=strawberry.UNSET, description="false: the channel is not used.")


@strawberry.type
class MessagingQuery:
    @strawberry.field(description="The institution's messaging settings and gateways (admins).")
    async def messaging_settings(self, info: Info) -> MessagingSettings:
        row, gateways = await messagings.read(info.context)
        return MessagingSettings.of(row, gateways)


@strawberry.type
class MessagingMutation:
    @strawberry.mutation(description="Change messaging settings (admins). Pass the version you read (0 for the "
                                     "defaults): a stale one is a CONFLICT.")
    async def messaging_settings_update(
            self, info: Info,
            input: Annotated[MessagingSettingsInput, strawberry.argument(description="The settings to change.")],
            version: Annotated[int | None, strawberry.argument(
                description="The version you read; leave it out to write regardless.")] = None,
    ) -> MessagingSettings | None:
        await messagings.update(info.context, provided(input), version)
        row, gateways = await messagings.read(info.context)
        return MessagingSettings.of(row, gateways)

    @strawberry.mutation(description="Create or change the gateway of a channel (admins). The secret is sealed and "
                                     "never returned. Pass the version you read (0 for a channel without a "
                                     "gateway): a stale one is a CONFLICT.")
    async def message_gateway_set(
            self, info: Info,
            input: Annotated[MessageGatewayInput, strawberry.argument(description="The gateway.")],
            version: Version = None,
    ) -> MessageGateway | None:
        return MessageGateway.of(await messagings.set_gateway(info.context, provided(input), version))
