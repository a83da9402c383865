"""Argon2id password hashing, always off the event loop and bounded in concurrency.

Each hash takes ~130 ms and 64 MiB at the default parameters, so running it on the
event loop would stall every other request, and running many at once would exhaust
memory: a semaphore admits two at a time (one per core on our machines).
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# The password policy, for staff and patients alike: length is what makes a password strong (NIST SP 800-63B);
# no composition rules, which only make people write passwords down.
MIN_PASSWORD = 12
MAX_PASSWORD = 256


def password_problem(password: str) -> str | None:
    """What is wrong with a new password, in words for the field's error; None when it is acceptable."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        return f"must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"
    return None


@dataclass(frozen=True)
class HashParameters:
    # RFC 9106 "low memory" profile, above the OWASP minimum (19 MiB, t=2, p=1).
    time_cost: int = 3
    memory_cost_kib: int = 65536
    parallelism: int = 4

    def meets_owasp_minimum(self) -> bool:
        return self.memory_cost_kib >= 19456 and self.time_cost >= 2


@dataclass(frozen=True)
class Verification:
    ok: bool
    needs_rehash: bool = False


class Passwords:
    def __init__(self, parameters: HashParameters, concurrency: int = 2) -> None:
        self._hasher = PasswordHasher(
            time_cost=parameters.time_cost,
            memory_cost=parameters.memory_cost_kib,
            parallelism=parameters.parallelism,
        )
        self._slots = asyncio.Semaphore(concurrency)
        # Verified against when the e-mail is unknown (or its account holds no hash), so both paths take the same
        # time. Of a random password no one knows: found in review, it was a fixed one, written here, and a blank
        # stored hash (an account shut by hand) let that password through the check.
        self._decoy = self._hasher.hash(secrets.token_urlsafe(32))

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> Verification:
        async with self._slots:
            return await asyncio.to_thread(self._verify, stored_hash, password)

    def _verify(self, stored_hash: str | None, password: str) -> Verification:
        try:
            self._hasher.verify(stored_hash or self._decoy, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return Verification(ok=False)
        if not stored_hash:  # only the decoy was checked: no hash, no sign-in
            return Verification(ok=False)
        return Verification(ok=True, needs_rehash=self._hasher.check_needs_rehash(stored_hash))
