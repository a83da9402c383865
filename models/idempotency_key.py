"""A signed-in caller's ``Idempotency-Key`` held for the write it was sent with (``resolvers/idempotency_key.py``).

The row is written with the write's audit record, in the write's own statement or transaction (``audit.writer``), so
it exists exactly when the write committed: a resend of the same key is then refused, never written twice. Only keyed
hashes of the key and of the request are kept, never the request or its answer (which may hold health data); what the
write was (its action, record and file) is kept as its audit record names it, to tell the resend."""

from __future__ import annotations

from tortoise import fields

from models.base import TenantModel


class IdempotencyKey(TenantModel):
    actor_kind = fields.CharField(max_length=16)  # staff, patient, partner
    actor_id = fields.UUIDField()
    key_hash = fields.CharField(max_length=64)  # HMAC of the key as sent
    request_hash = fields.CharField(max_length=64)  # HMAC of the document, operation name and variables
    action = fields.CharField(max_length=20)  # the write's audit record's
    resource_type = fields.CharField(max_length=40)
    resource_id = fields.UUIDField(null=True)
    patient_id = fields.UUIDField(null=True)
    request_id = fields.CharField(max_length=64)  # the request that wrote it (support quotes it)

    class Meta:
        table = "idempotency_key"
        table_description = "A signed-in caller's Idempotency-Key, held for a day with the write it came with."
        unique_together = (("institution", "actor_kind", "actor_id", "key_hash"),)
        indexes = (("created_at",),)
