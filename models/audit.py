"""The append-only audit log, the per-institution head of its hash chain, its signed checkpoints
and the anchors of archived stretches.

Audit rows hold identifiers and field names, never values of patient data. They have
no foreign keys to the rows they describe: the record outlives what it records.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

from core.ids import uuid7


class AuditEvent(Model):
    id = fields.UUIDField(primary_key=True, default=uuid7)
    institution_id = fields.UUIDField()
    seq = fields.BigIntField()
    occurred_at = fields.DatetimeField()
    actor_kind = fields.CharField(max_length=16)
    actor_id = fields.UUIDField(null=True)
    token_id = fields.UUIDField(null=True)
    action = fields.CharField(max_length=32)
    resource_type = fields.CharField(max_length=32)
    resource_id = fields.UUIDField(null=True)
    patient_id = fields.UUIDField(null=True)
    field_classes = fields.CharField(max_length=200, default="")
    fields_read = fields.CharField(max_length=500, default="")
    outcome = fields.CharField(max_length=16)
    reason = fields.CharField(max_length=64, default="")
    policy_rule = fields.CharField(max_length=200, default="")
    request_id = fields.CharField(max_length=64, default="")
    client_address = fields.CharField(max_length=64, default="")
    user_agent = fields.CharField(max_length=200, default="")
    prev_hash = fields.CharField(max_length=64)
    hash = fields.CharField(max_length=64)

    class Meta:
        table = "audit_event"
        unique_together = (("institution_id", "seq"),)
        indexes = (
            Index(fields=("institution_id", "patient_id")),
            Index(fields=("institution_id", "actor_id")),
            Index(fields=("institution_id", "occurred_at")),
            Index(fields=("institution_id", "actor_kind", "seq")),  # disclosures: partner reads, newest first
        )


class AuditChainHead(Model):
    """The last sequence number and hash per institution: the lock appends serialise on."""

    institution_id = fields.UUIDField(primary_key=True)
    last_seq = fields.BigIntField(default=0)
    last_hash = fields.CharField(max_length=64)

    class Meta:
        table = "audit_chain_head"


class AuditCheckpoint(Model):
    """A signed statement of a chain's head at a moment: institution, last sequence number, head
    hash, time, and an Ed25519 signature over them. Append-only, like the events it vouches for."""

    id = fields.UUIDField(primary_key=True, default=uuid7)
    institution_id = fields.UUIDField()
    last_seq = fields.BigIntField()
    head_hash = fields.CharField(max_length=64)
    created_at = fields.DatetimeField()
    key_id = fields.CharField(max_length=16)
    signature = fields.CharField(max_length=128)  # hex

    class Meta:
        table = "audit_checkpoint"
        unique_together = (("institution_id", "last_seq"),)


class AuditArchive(Model):
    """Where the archived start of a chain ends: its last sequence number and hash.

    Also when, how many events, and the SHA-256 of the archive file. The chain is verified from
    the newest anchor on, and the database deletes only events an anchor covers. Append-only.
    """

    id = fields.UUIDField(primary_key=True, default=uuid7)
    institution_id = fields.UUIDField()
    up_to_seq = fields.BigIntField()
    up_to_hash = fields.CharField(max_length=64)
    archived_at = fields.DatetimeField()
    events = fields.BigIntField()
    sha256 = fields.CharField(max_length=64)

    class Meta:
        table = "audit_archive"
        unique_together = (("institution_id", "up_to_seq"),)
