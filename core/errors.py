"""Errors with a machine-readable code, the only exceptions a client is meant to see.

Every error a client receives carries ``extensions.code``. Messages never contain
patient data, identifiers or secrets: they name the field at fault, not its value.
"""

from __future__ import annotations

import logging
import time
from typing import ClassVar

from graphql import GraphQLError

# ``extensions.reason`` of every refused move of a lifecycle (a visit, a plan, a ticket, an appointment, a task, a
# campaign, a questionnaire, a contract...), whatever its code: clients branch on it (docs/architecture.md, Errors)
ILLEGAL_TRANSITION = "illegal_transition"
# ``extensions.reason`` of every CONFLICT over a stale read (a ``version``, a ``revision``, an ``expectedVersion``, a
# record changed under the caller since it read it), on every record: ``Conflict``'s unless another is given
STALE_VERSION = "stale_version"
# ``extensions.reason`` of the INTERNAL_SERVER_ERROR of an operation the audit trail cannot record (``AuditUnrecorded``)
AUDIT_UNRECORDED = "audit_unrecorded"


def kind_and_place(error: BaseException) -> str:
    """An error as a log line may tell it: its kind and the file and line that raised it. Never its text nor a
    traceback's: a database error quotes the values at fault (a key, a column's content), a GraphQL error the
    document."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}" if tb else "?"
    return f"{type(error).__name__} at {where}"


class FailingRounds:
    """How a background loop tells its failed rounds: the first at ERROR by its kind and place (``kind_and_place``),
    the rounds that fail after it only counted, told again once every ``seconds`` while the failure lasts, and one line
    when a round works again. A database away for a minute writes three lines, not one a round (found in review: the
    audit sealer, which looks every second, wrote a line a second)."""

    def __init__(self, logger: logging.Logger, what: str, *, seconds: float = 60.0) -> None:
        self.logger, self.what, self.seconds = logger, what, seconds
        self._failed = 0  # rounds failed in a row
        self._told_at = 0.0

    def failed(self, error: BaseException) -> None:
        self._failed += 1
        now = time.monotonic()
        if self._failed == 1:
            self.logger.error("%s failed (%s); retrying", self.what, kind_and_place(error))
        elif now - self._told_at >= self.seconds:
            self.logger.error("%s still fails (%s): %d rounds so far; retrying", self.what, kind_and_place(error),
                              self._failed)
        else:
            return
        self._told_at = now

    def worked(self) -> None:
        if self._failed:
            self.logger.info("%s works again after %d failed rounds", self.what, self._failed)
            self._failed = 0


class CareloopError(GraphQLError):
    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"
    default_message: ClassVar[str] = "Unexpected error."

    def __init__(self, message: str | None = None, *, field: str | None = None, reason: str | None = None) -> None:
        extensions: dict[str, object] = {"code": self.code}
        if field is not None:
            extensions["field"] = field
        if reason is not None:
            extensions["reason"] = reason
        super().__init__(message or self.default_message, extensions=extensions)
        self.field = field
        self.reason = reason


class Unauthenticated(CareloopError):
    code = "UNAUTHENTICATED"
    default_message = "Authentication required."


class TotpRequired(Unauthenticated):
    """The password was right, and the account signs in with a second factor: ask for the code and try again.
    Only whoever holds the password learns this; the attempt counts toward the lockout like a wrong password."""

    code = "TOTP_REQUIRED"
    default_message = "Enter the code from your authenticator app (totpCode)."


class TotpEnrolmentRequired(Unauthenticated):
    """The password was right, but the institution requires a second factor of this account and it has none:
    enrol one with ``totpEnrollForLogin``, then sign in with its code. Counts toward the lockout too."""

    code = "TOTP_ENROLMENT_REQUIRED"
    default_message = ("Your institution requires a second factor: enrol an authenticator app "
                       "(totpEnrollForLogin), then sign in with its code.")


class Forbidden(CareloopError):
    code = "FORBIDDEN"
    default_message = "Not allowed."


class NotFound(CareloopError):
    code = "NOT_FOUND"
    default_message = "Not found."


class BadUserInput(CareloopError):
    """Input refused. One that names its field always carries a reason to branch on: ``invalid`` unless the rule
    broken has its own, as ``core.validation.Problems`` reports each problem (found in review: a contact of another
    patient in ``communicationLogCall``, an appointment's ``slotStart`` of no slot, an audience's department of none,
    a time given to a move that keeps none... answered a field and no ``extensions.reason``)."""

    code = "BAD_USER_INPUT"
    default_message = "Invalid input."

    def __init__(self, message: str | None = None, *, field: str | None = None, reason: str | None = None) -> None:
        super().__init__(message, field=field, reason=reason or ("invalid" if field is not None else None))


class InvalidInput(BadUserInput):
    """Every problem of one input at once: ``extensions.invalid`` lists them (``field``: the path in the
    input, ``reason``: a stable snake_case code, ``message``), and ``extensions.field``/``reason`` and the
    message name the first, so a client that reads only those still shows something true."""

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        path, reason, message = problems[0]
        more = f" (and {len(problems) - 1} more: see extensions.invalid)" if len(problems) > 1 else ""
        super().__init__(f"{path}: {message}{more}", field=path, reason=reason)
        self.problems = list(problems)
        self.extensions = {**(self.extensions or {}), "invalid": [
            {"field": p, "reason": r, "message": m} for p, r, m in problems]}


class Unavailable(CareloopError):
    """The database could not be reached (a failover, a restart, a network fault): nothing was answered from it."""

    code = "UNAVAILABLE"
    default_message = ("The database could not be reached; try again in a few seconds. A change may have been written "
                       "if the connection was lost as it committed: read before sending it again, or send it again "
                       "with the same Idempotency-Key.")


class AuditUnrecorded(CareloopError):
    """The audit trail cannot record the operation, so nothing of it was done: its institution's chain is damaged (its
    head row is missing, ``audit.writer.ChainHeadMissing``). INTERNAL_SERVER_ERROR, reason ``audit_unrecorded``, not
    UNAVAILABLE: the fault is in the server's own data, not in reaching it, and trying again does not help until an
    operator has looked into it (UNAVAILABLE tells a client to try again in a few seconds)."""

    code = "INTERNAL_SERVER_ERROR"
    default_message = ("The audit trail cannot record this operation, so nothing of it was done. Tell your "
                       "administrator: the server's log names the fault.")

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message, reason=AUDIT_UNRECORDED)


class Conflict(CareloopError):
    """The record changed since the caller read it (a stale version, reason ``stale_version``), or its state refuses
    the write (a reason of its own: ``illegal_transition``, ``slot_full``...): nothing was written. Every CONFLICT
    carries a reason to branch on (found in review: a stale version and a full slot differed only by their field)."""

    code = "CONFLICT"
    default_message = "The record changed since you read it; read it again."

    def __init__(self, message: str | None = None, *, field: str | None = None,
                 reason: str = STALE_VERSION) -> None:
        super().__init__(message, field=field, reason=reason)


class RateLimited(CareloopError):
    code = "RATE_LIMITED"
    default_message = "Too many requests; try again later."


class ConsentRequired(CareloopError):
    code = "CONSENT_REQUIRED"
    default_message = "The patient has not consented to sharing their file with this partner."
