"""Sign-in attempts at addresses that have no account, counted and locked as an account's are.

An unknown address that never locked while a known one does would tell anyone which addresses have an account
(for a patient portal, that a person is a patient; found in review). Only a keyed hash of the address is kept.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class SignInThrottle(Model):
    id = fields.CharField(max_length=64, primary_key=True)  # HMAC of the kind of account and the address
    failed_logins = fields.IntField(default=0)
    locked_until = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "sign_in_throttle"
