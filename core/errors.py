"""Errors with a machine-readable code, the only exceptions a client is meant to see.

Every error a client receives carries ``extensions.code``. Messages never contain
patient data, identifiers or secrets: they name the field at fault, not its value.
"""

from __future__ import annotations

from typing import ClassVar

from graphql import GraphQLError


class CareloopError(GraphQLError):
    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"
    default_message: ClassVar[str] = "Unexpected error."

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        extensions: dict[str, object] = {"code": self.code}
        if field is not None:
            extensions["field"] = field
        super().__init__(message or self.default_message, extensions=extensions)
        self.field = field


class Unauthenticated(CareloopError):
    code = "UNAUTHENTICATED"
    default_message = "Authentication required."


class Forbidden(CareloopError):
    code = "FORBIDDEN"
    default_message = "Not allowed."


class NotFound(CareloopError):
    code = "NOT_FOUND"
    default_message = "Not found."


class BadUserInput(CareloopError):
    code = "BAD_USER_INPUT"
    default_message = "Invalid input."


class Conflict(CareloopError):
    """The record changed since the caller read it (a stale version): nothing was written."""

    code = "CONFLICT"
    default_message = "The record changed since you read it; read it again."


class RateLimited(CareloopError):
    code = "RATE_LIMITED"
    default_message = "Too many requests; try again later."


class ConsentRequired(CareloopError):
    code = "CONSENT_REQUIRED"
    default_message = "The patient has not consented to sharing their file with this partner."
