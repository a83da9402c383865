"""Signed checkpoints of the hash chains.

Every N events or T seconds (whichever comes first, per institution) careloop signs the chain's
head with Ed25519: institution, last sequence number, head hash, time. An outside auditor who
holds the public key can then check an export against the checkpoints without database access:
a truncated tail misses a signed sequence number, and a chain rewritten from scratch (every hash
recomputed) no longer matches a signed head hash.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from tortoise.functions import Max
from tortoise.transactions import in_transaction

from audit import writer
from core.crypto import key_id
from models import AuditChainHead, AuditCheckpoint

EVERY_EVENTS = 10_000
EVERY_SECONDS = 60


@dataclass(frozen=True)
class Checkpoint:
    institution_id: str
    last_seq: int
    head_hash: str
    created_at: str  # ISO 8601, UTC, microseconds
    key_id: str
    signature: str  # hex
    # An export's signed end only: the export's first event, so that events cut from its start are found too (a
    # period's export may start anywhere). Signed when set; the chain's checkpoints have none.
    first_seq: int | None = None

    def statement(self) -> bytes:
        """What is signed: the four facts (and an export's first event), in a fixed canonical form."""
        facts: dict[str, Any] = {"institution_id": self.institution_id, "last_seq": self.last_seq,
                                 "head_hash": self.head_hash, "created_at": self.created_at}
        if self.first_seq is not None:
            facts["first_seq"] = self.first_seq
        return json.dumps(facts, sort_keys=True, separators=(",", ":")).encode()

    def signed_by(self, public: Ed25519PublicKey) -> bool:
        try:
            public.verify(bytes.fromhex(self.signature), self.statement())
        except (InvalidSignature, ValueError):
            return False
        return self.key_id == key_id(public)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        if self.first_seq is None:  # a checkpoint of the chain: as it always was written
            del data["first_seq"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checkpoint:
        return cls(institution_id=str(data["institution_id"]), last_seq=int(data["last_seq"]),
                   head_hash=str(data["head_hash"]), created_at=str(data["created_at"]), key_id=str(data["key_id"]),
                   signature=str(data["signature"]),
                   first_seq=None if data.get("first_seq") is None else int(data["first_seq"]))

    @classmethod
    def of(cls, row: AuditCheckpoint) -> Checkpoint:
        return cls(str(row.institution_id), row.last_seq, row.head_hash, _iso(row.created_at), row.key_id,
                   row.signature)


def sign(key: Ed25519PrivateKey, institution_id: uuid.UUID, last_seq: int, head_hash: str,
         created_at: datetime, *, first_seq: int | None = None) -> Checkpoint:
    """``first_seq``: for an export's signed end, the export's first event."""
    unsigned = Checkpoint(str(institution_id), last_seq, head_hash, _iso(created_at), key_id(key.public_key()), "",
                          first_seq)
    return Checkpoint(**{**unsigned.to_json(), "signature": key.sign(unsigned.statement()).hex()})


async def take(key: Ed25519PrivateKey, institution_id: uuid.UUID, now: datetime | None = None) -> Checkpoint | None:
    """Sign the chain's current head (every committed event sealed first); None when the newest checkpoint already
    covers it."""
    await writer.seal(institution_id)
    async with in_transaction():
        head = await AuditChainHead.filter(institution_id=institution_id).select_for_update().first()
        if head is None or head.last_seq == 0:
            return None
        if await AuditCheckpoint.exists(institution_id=institution_id, last_seq=head.last_seq):
            return None
        checkpoint = sign(key, institution_id, head.last_seq, head.last_hash, now or datetime.now(UTC))
        # The lock on the chain head serialises workers: the check above cannot race.
        await AuditCheckpoint.create(
            institution_id=institution_id, last_seq=checkpoint.last_seq, head_hash=checkpoint.head_hash,
            created_at=datetime.fromisoformat(checkpoint.created_at), key_id=checkpoint.key_id,
            signature=checkpoint.signature)
    return checkpoint


async def take_due(key: Ed25519PrivateKey, *, every_events: int = EVERY_EVENTS, every_seconds: int = EVERY_SECONDS,
                   now: datetime | None = None) -> list[Checkpoint]:
    """A checkpoint for every chain with ``every_events`` new events, or any new event older than
    ``every_seconds`` since its last checkpoint."""
    now = now or datetime.now(UTC)
    # The newest checkpoint of every chain in one statement: checkpoints only grow, so the largest
    # sequence number and the latest time belong to the same row.
    newest = {institution: (int(seq), when) for institution, seq, when in await AuditCheckpoint.annotate(
        seq=Max("last_seq"), when=Max("created_at")).group_by("institution_id").values_list(
        "institution_id", "seq", "when")}
    taken = []
    for head in await AuditChainHead.filter(last_seq__gt=0):
        covered, since = newest.get(head.institution_id, (0, None))
        fresh = head.last_seq - covered
        if fresh <= 0:
            continue
        if fresh >= every_events or since is None or now - since >= timedelta(seconds=every_seconds):
            checkpoint = await take(key, head.institution_id, now)
            if checkpoint is not None:
                taken.append(checkpoint)
    return taken


async def of_institution(institution_id: uuid.UUID, until: datetime | None = None) -> list[Checkpoint]:
    query = AuditCheckpoint.filter(institution_id=institution_id)
    if until is not None:
        query = query.filter(created_at__lte=until)
    return [Checkpoint.of(row) for row in await query.order_by("last_seq")]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
