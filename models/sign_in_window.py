"""Sign-in attempts per client address and calendar minute: the per-address limit's counter, shared by every
worker and node (``resolvers/sign_in_limit.py``). Only a keyed hash of the address is kept."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class SignInWindow(Model):
    id = fields.BigIntField(primary_key=True)
    address = fields.CharField(max_length=64)  # HMAC of the client's address (an IPv6 address's /64 network)
    window_start = fields.DatetimeField()
    attempts = fields.IntField(default=0)

    class Meta:
        table = "sign_in_window"
        unique_together = (("address", "window_start"),)
