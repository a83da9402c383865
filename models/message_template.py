"""Message templates per institution, cause, channel and language, with ``{variable}`` slots.

Only the variables of ``TEMPLATE_VARIABLES`` may appear: names, dates, times, places and the
institution's phone, never clinical detail (an SMS is read on a lock screen).

A row whose ``body`` is empty is a tombstone: the template was reset (a template written through the API
always has a body). It is kept, with the version its reset gave it, so that the key's versions keep
increasing when it is written again and a version read before the reset can never match again; every
reader treats it as absent (``live`` below).
"""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.queryset import QuerySet

from models.base import TenantModel

TEMPLATE_VARIABLES = ("patient_name", "contact_name", "institution_name", "institution_phone", "date", "time",
                      "clinician_name", "department_name", "place", "holiday_name", "unsubscribe_url",
                      "survey_url", "contract_number")
TEMPLATE_LANGUAGES = ("zh-CN", "en")
TEMPLATE_CHANNELS = ("any", "sms", "email", "wechat", "app")
TOMBSTONE_BODY = ""  # the body of a reset template (a written one has at least one character)


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

    @property
    def is_tombstone(self) -> bool:
        """True when the template was reset: the row only keeps the key's version."""
        return self.body == TOMBSTONE_BODY

    @classmethod
    def live(cls, **filters: Any) -> QuerySet[MessageTemplate]:
        """The templates in force matching ``filters``: tombstones (reset templates) left out."""
        return cls.filter(**filters).exclude(body=TOMBSTONE_BODY)
