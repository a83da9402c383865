"""Time-ordered UUIDs (RFC 9562 version 7), generated in the application.

Ids that sort by creation time let every list page by a keyset cursor on the primary
key alone, and the row id is known before insert, so ciphertexts can bind to it.
"""

from __future__ import annotations

import os
import time
import uuid

_last = 0


def uuid7() -> uuid.UUID:
    """A new version-7 UUID, strictly increasing within this process."""
    global _last
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & (2**48 - 1)) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64 | 0b10 << 62 | (rand & (2**62 - 1))
    if value <= _last:
        value = _last + 1  # same millisecond: step the random bits so ids keep their order
    _last = value
    return uuid.UUID(int=value)


def parse_uuid(value: str) -> uuid.UUID | None:
    """A UUID from client input, or None when it is not one."""
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError, AttributeError):
        return None
