"""The append-only audit log, the per-institution head of its hash chain, its signed checkpoints
and the anchors of archived stretches.

Audit rows hold identifiers and field names, never values of patient data. They have
no foreign keys to the rows they describe: the record outlives what it records.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.indexes import Index, PartialIndex
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
    # Text, not bounded: a page's record names every field it read (a whole patient page, over 500 characters),
    # and a write's rule one rule per class it touched (migration 0033).
    fields_read = fields.TextField(default="")
    outcome = fields.CharField(max_length=16)
    reason = fields.CharField(max_length=64, default="")
    policy_rule = fields.TextField(default="")
    request_id = fields.CharField(max_length=64, default="")
    client_address = fields.CharField(max_length=64, default="")
    user_agent = fields.CharField(max_length=200, default="")
    # Alike reads of one request in one event (a page of 50 patients): each record read and its patient, as
    # "record/patient" items (audit.chain.subjects_text); empty when the event is about one record, named by
    # resource_id and patient_id as before. Hashed when not empty.
    subjects = fields.TextField(default="", db_default="")
    # HMAC-SHA256 of the event's hashed body without its sequence number and previous hash, under a key derived
    # from the master key (audit.writer.mac): whoever can insert rows but holds no key cannot forge an event
    # that verify accepts. Not hashed: the chain already covers the content; empty on events older than 0023.
    mac = fields.CharField(max_length=64, default="", db_default="")
    prev_hash = fields.CharField(max_length=64)
    hash = fields.CharField(max_length=64)

    class Meta:
        table = "audit_event"
        unique_together = (("institution_id", "seq"),)
        indexes = (
            # No (institution_id, patient_id): readers find a patient's events through audit_patient_index (0022),
            # and every append paid for it (dropped by 0023).
            Index(fields=("institution_id", "actor_id")),
            Index(fields=("institution_id", "occurred_at")),
            Index(fields=("institution_id", "actor_kind", "seq")),  # disclosures: partner reads, newest first
            # each institution's last policy event, read at every start (resolvers.policy): the policy events only,
            # so no other append pays for it
            PartialIndex(fields=("institution_id", "seq"), name="audit_event_policy",
                         condition={"resource_type": "policy"}),
        )


class AuditPatientIndex(Model):
    """Which events are about which patient: one row per event and patient.

    Written with the event (the writer, PostgreSQL's ``audit_append``), so "who read this file" never scans the
    trail's subject lists. Append-only
    like the trail; a row may go only once its event is gone (an archive run), and ``verify`` holds the index
    against the events. It repeats the few event columns its readers filter on; the event stays the record."""

    id = fields.BigIntField(primary_key=True)
    institution_id = fields.UUIDField()
    seq = fields.BigIntField()
    patient_id = fields.UUIDField()
    occurred_at = fields.DatetimeField()
    actor_kind = fields.CharField(max_length=16)
    actor_id = fields.UUIDField(null=True)
    action = fields.CharField(max_length=32)
    outcome = fields.CharField(max_length=16)

    class Meta:
        table = "audit_patient_index"
        unique_together = (("institution_id", "seq", "patient_id"),)
        indexes = (
            Index(fields=("institution_id", "patient_id", "seq")),
            # disclosures, newest first: a partner's reads only, so a staff read (most rows) adds nothing here
            PartialIndex(fields=("institution_id", "id"), name="audit_patient_index_disclosures",
                         condition={"actor_kind": "partner", "action": "read", "outcome": "allowed"}),
            Index(fields=("institution_id", "occurred_at")),  # the snooping alert's day, a period's disclosures
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
