"""Schema extensions that are ours: the document's rules, audit the reads of an operation, code and mask errors."""

from __future__ import annotations

import contextlib
import inspect
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from functools import partial
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLObjectType,
    InlineFragmentNode,
    OperationType,
    SelectionSetNode,
    get_operation_ast,
    specified_rules,
)
from graphql.validation import NoSchemaIntrospectionCustomRule, ValuesOfCorrectTypeRule
from strawberry.extensions import MaskErrors, ParserCache, SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    ExtensionContextManagerBase,
    OperationContextManager,
    ParsingContextManager,
    ValidationContextManager,
    WrappedHook,
)
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.exceptions import InvalidOperationTypeError

from core.backends.asyncpg import connection_lost
from core.errors import AuditUnrecorded, CareloopError, Unavailable
from core.principal import PARTNER
from resolvers import access, idempotency_key, sign_in_limit
from resolvers import partner as partners
from resolvers.context import Context
from schema.input_errors import CodedValuesRule, HiddenCodedValuesRule, place_in_arguments, variable_errors

log = logging.getLogger("careloop.audit")


class AuditUnavailable(CareloopError):
    code = "INTERNAL_SERVER_ERROR"
    default_message = "The operation could not be recorded, so its result is withheld."


def withheld(error: Exception) -> CareloopError:
    """The error of an operation whose reads could not be recorded: with reason ``audit_unrecorded`` when the trail
    refused them (its chain's head is missing, ``audit.writer.ChainHeadMissing``), which trying again does not mend."""
    return AuditUnrecorded(AuditUnavailable.default_message) if isinstance(error, AuditUnrecorded) \
        else AuditUnavailable()


class AuditReads(SchemaExtension):
    """Write what the operation read once it has run; no audit record, no data. A subscription's event is
    written before it is sent, the same way."""

    async def on_execute(self) -> AsyncIterator[None]:
        yield
        context = self.execution_context.context
        if not isinstance(context, Context):
            return
        beside = context.take_errors()  # answered with the data (``Context.add_error``)
        result = self.execution_context.result
        if beside and result is not None:
            result.errors = [*(result.errors or []), *beside]
        try:
            await access.flush_reads(context)
        except Exception as exc:
            log.error("audit append failed (%s), request %s", type(exc).__name__, context.request.request_id)
            raise withheld(exc) from None

    async def on_stream_result(self, result: Any) -> None:  # type: ignore[override]
        """Between an event's completion and its sending (found in review: the fields' reads were written only
        when the subscription's generator went on, after the event had gone out, and lost if the socket closed
        first). An event whose reads cannot be written is sent without its data."""
        context = self.execution_context.context
        if not isinstance(context, Context) or not context.reads:
            return
        try:
            await access.flush_reads(context)
        except Exception as exc:
            log.error("audit append failed (%s), request %s", type(exc).__name__, context.request.request_id)
            result.data, result.errors = None, [withheld(exc)]


class PartnerGate(SchemaExtension):
    """A partner client restricted to registered documents sends nothing else; and every partner
    request is on the record with its client and token, even one that touched no patient or failed
    before it ran (a syntax, validation or limit error)."""

    async def on_operation(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        Context.begin_operation()
        partner = isinstance(context, Context) and context.principal is not None \
            and context.principal.kind == PARTNER
        if partner:
            await partners.check_document(context, self.execution_context.query or "")
        try:
            yield
        finally:  # a syntax error is thrown in here
            if partner:
                await access.record_request(context)


class MutationGate(SchemaExtension):
    """What a mutation must pass before it runs (one extension: Strawberry wraps every extension's hooks again on
    every request).

    - The sign-ins it asks for are counted against the client's address, so before any password is checked; an
      address over its limit is refused whole (RATE_LIMITED, HTTP 429 under graphql-response+json;
      ``resolvers/sign_in_limit.py``). Each alias counts, as each runs a sign-in.
    - Its ``Idempotency-Key``, if sent, is admitted (a change written already is refused) and held for its first
      write to write (``resolvers/idempotency_key.py``); a request that failed while another wrote under its key
      (its write refused by the key, or its own check refused first) is answered and recorded, once it has rolled
      back, as a resend after that one is."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        fields = mutation_fields(execution.graphql_document, execution.operation_name)
        if not fields or not isinstance(context, Context):
            yield
            return
        attempts = sum(field in sign_in_limit.SIGN_IN_FIELDS for field in fields)
        if attempts:
            await sign_in_limit.admit(context, attempts, self.per_minute)
        key = None if context.idempotency_key is None else await idempotency_key.admit(
            context, fields, execution.query or "", execution.operation_name, execution.variables)
        if key is None:
            yield
            return
        with idempotency_key.held(key):
            yield
        result = execution.result
        if result is not None and result.errors:
            refusal = await idempotency_key.done_meanwhile(context, key)
            if refusal is not None:  # answered as a resend after the other is: the refusal alone (409), no data
                result.data, result.errors = None, [refusal]


def mutation_fields(document: DocumentNode | None, operation_name: str | None) -> list[str]:
    """The root fields of the operation to run if it is a mutation, each by its name as often as it is asked
    (aliases) but ``__typename``, fragments expanded (the document is valid: no fragment cycles, at most
    ``max_fields`` fields expanded); [] for a query or a subscription. A field a directive skips, or one asked twice
    alike and run once, counts all the same: an honest client asks for one."""
    operation = None if document is None else get_operation_ast(document, operation_name)
    if document is None or operation is None or operation.operation != OperationType.MUTATION:
        return []
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}

    def names(selection_set: SelectionSetNode) -> list[str]:
        found = []
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode) and selection.name.value != "__typename":
                found.append(selection.name.value)
            elif isinstance(selection, InlineFragmentNode):
                found += names(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode) and selection.name.value in fragments:
                found += names(fragments[selection.name.value].selection_set)
        return found

    return names(operation.selection_set)


def is_unexpected(error: GraphQLError) -> bool:
    """Python exceptions are unexpected; GraphQL errors (ours, validation, syntax) are not, nor a query or a
    mutation sent over the WebSocket (found in review: masked as INTERNAL_SERVER_ERROR and logged at ERROR)."""
    original = error.original_error
    return original is not None and not isinstance(original, (GraphQLError, InvalidOperationTypeError))


_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")
# The parser names the token it did not expect with its value, last in its message ("Expected Name, found String
# '13812345678'."): a string or a number of the document may be a phone, a name or an ID. Its kind stays.
_TOKEN_VALUE = re.compile(r"\b(String|BlockString|Int|Float) '.*'(?=\.$)", re.DOTALL)


def finish_error(error: GraphQLError, *, request_id: str, production: bool) -> GraphQLError:
    """The error a client sees: always a code; unexpected ones masked with the request id (UNAVAILABLE when the
    database could not be reached, which the client may retry); a syntax error without
    the value of the token it names; and in production no "Did you mean ...?" hints, which would leak the schema
    that introspection hides."""
    if is_unexpected(error) and connection_lost(error.original_error):  # type: ignore[arg-type]
        return GraphQLError(Unavailable.default_message, nodes=error.nodes, source=error.source,
                            positions=error.positions, path=error.path,
                            extensions={"code": Unavailable.code, "requestId": request_id})
    if is_unexpected(error):
        return GraphQLError("Unexpected error.", nodes=error.nodes, source=error.source, positions=error.positions,
                            path=error.path, extensions={"code": "INTERNAL_SERVER_ERROR", "requestId": request_id})
    message = _SUGGESTION.sub("", error.message) if production else error.message
    if message.startswith("Syntax Error: "):
        message = _TOKEN_VALUE.sub(r"\1", message)
    if isinstance(error.original_error, InvalidOperationTypeError):
        message = "The WebSocket carries subscriptions only: send queries and mutations by HTTP POST to /graphql."
    code = (error.extensions or {}).get("code") or "BAD_USER_INPUT"  # syntax, validation and limit errors
    if code == "INTERNAL_SERVER_ERROR" and "requestId" not in (error.extensions or {}):
        # ours, not masked (the trail could not record the operation): quoted to support by the request id too
        return GraphQLError(message, nodes=error.nodes, source=error.source, positions=error.positions,
                            path=error.path, original_error=error.original_error,
                            extensions={**(error.extensions or {}), "requestId": request_id})
    if message == error.message and (error.extensions or {}).get("code"):
        return error
    return GraphQLError(message, nodes=error.nodes, source=error.source, positions=error.positions,
                        path=error.path, original_error=error.original_error,
                        extensions={**(error.extensions or {}), "code": code})


class DocumentRules(SchemaExtension):
    """What a document must pass before it runs, decided once for the schema: graphql-core's rules with
    input values checked by our coded rule (``schema/input_errors.py``; values hidden in production), the
    introspection ban in production, our limits (depth, aliases, fields), and the parser's token cap.
    One extension rather than one per rule: Strawberry wraps every extension's hooks again on every request."""

    def __init__(self, rules: tuple[type[ASTValidationRule], ...], max_tokens: int) -> None:
        self.rules = rules
        self.max_tokens = max_tokens

    @classmethod
    def build(cls, limit_rules: Sequence[type[ASTValidationRule]], *, max_tokens: int, production: bool
              ) -> Callable[[], DocumentRules]:
        """The rules in the order their errors are reported, and a factory of the extension with them."""
        coded = HiddenCodedValuesRule if production else CodedValuesRule
        rules = (*(coded if rule is ValuesOfCorrectTypeRule else rule for rule in specified_rules),
                 *((NoSchemaIntrospectionCustomRule,) if production else ()), *limit_rules)
        return lambda: cls(rules, max_tokens)

    def on_operation(self) -> Iterator[None]:
        self.execution_context.validation_rules = self.rules
        self.execution_context.parse_options["max_tokens"] = self.max_tokens
        yield


class CodedErrors(MaskErrors):
    """Every error carries ``extensions.code``; unexpected ones are masked and carry the request id. Input
    errors name their place by one convention (``schema/input_errors.py``) and never echo the value."""

    def __init__(self, *, production: bool) -> None:
        super().__init__(should_mask_error=is_unexpected)
        self.production = production

    def _process_result(self, result: object) -> None:
        """MaskErrors' own without its check against a runtime Protocol (``isinstance`` there walks the protocol's
        attributes: about 7 µs on every request): a result with errors has them processed."""
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]

    def _root(self) -> GraphQLObjectType | None:
        schema = self.execution_context.schema._schema
        try:
            kind = self.execution_context.operation_type.value
        except Exception:  # no document, or no operation to choose: no root field errors either
            return None
        return {"query": schema.query_type, "mutation": schema.mutation_type,
                "subscription": schema.subscription_type}.get(kind)

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        execution = self.execution_context
        context = execution.context
        request_id = context.request.request_id if isinstance(context, Context) else ""
        schema = execution.schema._schema
        errors = variable_errors(errors, schema, execution.graphql_document, execution.operation_name,
                                 execution.variables, hide=self.production)
        root = self._root()
        return [finish_error(place_in_arguments(e, schema, root, execution.variables), request_id=request_id,
                             production=self.production) for e in errors]


_NO_HOOK, _PLAIN = object(), object()  # an extension class without the hook; one whose hook is a plain function
_factories: dict[tuple[type, str], Any] = {}  # (extension class, hook) -> _NO_HOOK, _PLAIN or (factory, is_async)


class _HooksMadeOnce(ExtensionContextManagerBase):
    """Strawberry's lifecycle stage, with each extension class's generator hook made a context-manager factory once
    rather than on every request: ``contextlib.contextmanager`` copies the function's name and docs each time it
    wraps one, which was about 6 % of a signed-in ``{ __typename }``. The hook runs as Strawberry runs it:
    ``hook(extension)`` entered and left in the same order. A plain function hook is left to Strawberry."""

    def get_hook(self, extension: SchemaExtension) -> WrappedHook | None:
        key = (type(extension), self.HOOK_NAME)
        made = _factories.get(key)
        if made is None:
            made = _factories[key] = self._factory(type(extension))
        if made is _NO_HOOK:
            return None
        if made is _PLAIN:
            return super().get_hook(extension)
        factory, is_async = made
        return WrappedHook(extension=extension, hook=partial(factory, extension), is_async=is_async)

    def _factory(self, kind: type) -> Any:
        hook = getattr(kind, self.HOOK_NAME)
        if hook is self.default_hook:
            return _NO_HOOK
        if inspect.isgeneratorfunction(hook):
            return contextlib.contextmanager(hook), False
        if inspect.isasyncgenfunction(hook):
            return contextlib.asynccontextmanager(hook), True
        return _PLAIN


class _Operation(_HooksMadeOnce, OperationContextManager):
    pass


class _Validation(_HooksMadeOnce, ValidationContextManager):
    pass


class _Parsing(_HooksMadeOnce, ParsingContextManager):
    pass


class _Executing(_HooksMadeOnce, ExecutingContextManager):
    pass


class ExtensionsRunner(SchemaExtensionsRunner):
    """Strawberry's runner with the four stages of every operation from ``_HooksMadeOnce``."""

    def operation(self) -> OperationContextManager:
        return _Operation(self.extensions)

    def validation(self) -> ValidationContextManager:
        return _Validation(self.extensions)

    def parsing(self) -> ParsingContextManager:
        return _Parsing(self.extensions)

    def executing(self) -> ExecutingContextManager:
        return _Executing(self.extensions)


class DocumentCache(ParserCache):
    """Strawberry's parser cache, but a document that does not parse (or has too many tokens) is left to
    Strawberry's own parse, inside its error handling, which answers the error: raised from this hook it escaped
    the WebSocket's handling, so the client got a bare ``complete`` and the log the whole document (found in
    review). The failing document is parsed twice, within the same token cap."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        with contextlib.suppress(GraphQLError):
            context.graphql_document = self.cached_parse_document(context.query, **context.parse_options)
        yield
