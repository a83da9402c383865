"""Message templates per institution, cause, channel and language, with ``{variable}`` slots.

Only the variables of ``TEMPLATE_VARIABLES`` may appear: names, dates, times, places and the
institution's phone, never clinical detail (an SMS is read on a lock screen).
"""

from __future__ import annotations

from tortoise import fields

from models.base import TenantModel

TEMPLATE_VARIABLES = ("patient_name", "contact_name", "institution_name", "institution_phone", "date", "time",
                      "clinician_name", "department_name", "place", "holiday_name", "unsubscribe_url",
                      "survey_url", "contract_number")
TEMPLATE_LANGUAGES = ("zh-CN", "en")
TEMPLATE_CHANNELS = ("any", "sms", "email", "wechat", "app")


class MessageTemplate(TenantModel):
    cause = fields.CharField(max_length=32)
    channel = fields.CharField(max_length=8, default="any")
    language = fields.CharField(max_length=8)
    subject = fields.CharField(max_length=200, default="")
    body = fields.TextField()
    version = fields.IntField(default=1)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "message_template"
        unique_together = (("institution", "cause", "channel", "language"),)
