"""Schema extensions that are ours: audit the reads of an operation, code and mask errors."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from graphql import GraphQLError
from strawberry.extensions import MaskErrors, SchemaExtension

from core.errors import CareloopError
from resolvers import access
from resolvers.context import Context

log = logging.getLogger("careloop.audit")


class AuditUnavailable(CareloopError):
    code = "INTERNAL_SERVER_ERROR"
    default_message = "The operation could not be recorded, so its result is withheld."


class AuditReads(SchemaExtension):
    """Write what the operation read once it has run; no audit record, no data."""

    async def on_execute(self) -> AsyncIterator[None]:
        yield
        context = self.execution_context.context
        if not isinstance(context, Context):
            return
        try:
            await access.flush_reads(context)
        except Exception as exc:
            log.error("audit append failed (%s), request %s", type(exc).__name__, context.request.request_id)
            raise AuditUnavailable() from None


def is_unexpected(error: GraphQLError) -> bool:
    """Python exceptions are unexpected; GraphQL errors (ours, validation, syntax) are not."""
    return error.original_error is not None and not isinstance(error.original_error, GraphQLError)


class CodedErrors(MaskErrors):
    """Every error carries ``extensions.code``; unexpected ones are masked and carry the request id."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=is_unexpected, error_message="Unexpected error.")

    def _request_id(self) -> str:
        context = self.execution_context.context
        return context.request.request_id if isinstance(context, Context) else ""

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        return GraphQLError(
            message=self.error_message, nodes=error.nodes, source=error.source, positions=error.positions,
            path=error.path, original_error=None,
            extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": self._request_id()},
        )

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = super()._process_errors(errors)
        for error in processed:
            if not (error.extensions or {}).get("code"):
                # Syntax, validation and limit errors: the request itself is at fault.
                error.extensions = {**(error.extensions or {}), "code": "BAD_USER_INPUT"}
        return processed
