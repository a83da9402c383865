"""An institution's messaging settings and its SMS / WeChat gateways."""

from __future__ import annotations

from tortoise import fields

from models.base import TenantModel
from models.fields import EncryptedField

GATEWAY_CHANNELS = ("sms", "wechat")


class MessagingSettings(TenantModel):
    """One row per institution (an institution without one uses the defaults below)."""

    reminder_hours_before = fields.IntField(default=24)
    quiet_start = fields.CharField(max_length=5, default="21:00")  # local time in the institution's zone
    quiet_end = fields.CharField(max_length=5, default="08:00")
    non_care_cap = fields.IntField(default=2)  # greetings and campaigns per patient ...
    non_care_cap_days = fields.IntField(default=7)  # ... within this many days
    portal_change_min_hours = fields.IntField(default=2)  # the portal books, moves, cancels no later
    portal_horizon_days = fields.IntField(default=90)  # and no further ahead than this
    institution_phone = fields.CharField(max_length=32, default="")
    email_from = fields.CharField(max_length=254, default="")
    version = fields.IntField(default=1)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "messaging_settings"
        unique_together = (("institution",),)


class MessageGateway(TenantModel):
    """An HTTP gateway for one channel: bodies signed with HMAC-SHA256 under ``secret`` (sealed)."""

    channel = fields.CharField(max_length=8)
    url = fields.CharField(max_length=500)
    secret = EncryptedField()
    timeout_ms = fields.IntField(default=5000)
    active = fields.BooleanField(default=True)
    version = fields.IntField(default=1, db_default=1)  # optimistic concurrency: bumped by every update
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "message_gateway"
        unique_together = (("institution", "channel"),)
