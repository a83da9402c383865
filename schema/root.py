"""The schema: root types merged from one module per noun, limits and error handling."""

from __future__ import annotations

import logging
from contextlib import aclosing
from typing import Any, cast

import strawberry
from graphql import ASTValidationRule, GraphQLError
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.execution import Executor
from graphql.execution.middleware import MiddlewareManager
from strawberry.extensions import SchemaExtension, ValidationCache
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES, StreamResult
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext
from strawberry.types.base import get_object_definition
from strawberry.types.graphql import OperationType

from core.backends.asyncpg import connection_lost
from core.errors import kind_and_place
from core.settings import Limits
from resolvers.context import Context
from schema import inputs
from schema.account import AccountMutation
from schema.appointment import AppointmentMutation, AppointmentQuery
from schema.audit_chain import AuditChainQuery
from schema.audit_event import AuditEventQuery
from schema.audit_report import AuditReportQuery
from schema.campaign import CampaignMutation, CampaignQuery
from schema.care_plan import CarePlanMutation, CarePlanQuery
from schema.care_team import CareTeamMutation
from schema.communication import CommunicationMutation, CommunicationQuery
from schema.compiled.executor import CompiledExecutor
from schema.consent import ConsentMutation
from schema.contact import ContactMutation
from schema.contract import ContractMutation, ContractQuery
from schema.contract_report import ContractReportQuery
from schema.contract_signature import ContractSignatureMutation, ContractSignatureQuery
from schema.department import DepartmentMutation, DepartmentQuery
from schema.disclosure import DisclosureQuery
from schema.emergency_access import EmergencyAccessMutation, EmergencyAccessQuery
from schema.extensions import (
    AuditReads,
    CodedErrors,
    DocumentCache,
    DocumentRules,
    ExtensionsRunner,
    MutationGate,
    PartnerGate,
    is_unexpected,
)
from schema.flag import FlagMutation, FlagQuery, FlagSubscription
from schema.follow_up import FollowUpMutation, FollowUpQuery
from schema.improvement import ImprovementMutation, ImprovementQuery
from schema.limits import limits_rule
from schema.message_template import MessageTemplateMutation, MessageTemplateQuery
from schema.messaging import MessagingMutation, MessagingQuery
from schema.partner import PartnerMutation, PartnerQuery
from schema.partner_grant import PartnerGrantMutation, PartnerGrantQuery
from schema.patient import PatientMutation, PatientQuery
from schema.patient_account import PatientAccountMutation, PatientAccountQuery
from schema.patient_merge import PatientMergeMutation
from schema.questionnaire import QuestionnaireMutation, QuestionnaireQuery
from schema.questionnaire_response import QuestionnaireResponseMutation, QuestionnaireResponseQuery
from schema.report import ReportQuery
from schema.role_grant import RoleGrantMutation, RoleGrantQuery
from schema.scalars import SCALAR_OVERRIDES
from schema.schedule import ScheduleMutation, ScheduleQuery
from schema.service_item import ServiceItemMutation, ServiceItemQuery
from schema.session import SessionMutation, SessionQuery
from schema.sla import SlaMutation, SlaQuery
from schema.staff import StaffMutation, StaffQuery
from schema.survey import SurveyMutation, SurveyQuery
from schema.survey_report import SurveyReportQuery
from schema.ticket import TicketMutation, TicketQuery, TicketSubscription
from schema.visit import VisitMutation, VisitQuery
from schema.visit_report import VisitReportQuery

log = logging.getLogger("careloop.graphql")

Query = merge_types("Query", (SessionQuery, PatientQuery, TicketQuery, ReportQuery, ImprovementQuery, SlaQuery,
                              StaffQuery, DepartmentQuery, AuditEventQuery, AuditChainQuery, AuditReportQuery,
                              EmergencyAccessQuery, PartnerQuery, PartnerGrantQuery, DisclosureQuery,
                              PatientAccountQuery, RoleGrantQuery, VisitQuery, VisitReportQuery, ServiceItemQuery,
                              CarePlanQuery, FlagQuery, FollowUpQuery,
                              MessageTemplateQuery, MessagingQuery, ScheduleQuery, AppointmentQuery,
                              CommunicationQuery, CampaignQuery, SurveyReportQuery, QuestionnaireQuery, SurveyQuery,
                              QuestionnaireResponseQuery, ContractQuery, ContractReportQuery,
                              ContractSignatureQuery))
Mutation = merge_types(
    "Mutation", (SessionMutation, PatientMutation, ContactMutation, TicketMutation, ImprovementMutation, SlaMutation,
                 StaffMutation, CareTeamMutation, DepartmentMutation, EmergencyAccessMutation, PartnerMutation,
                 PartnerGrantMutation, ConsentMutation, PatientAccountMutation, RoleGrantMutation, VisitMutation,
                 ServiceItemMutation, CarePlanMutation, FlagMutation, FollowUpMutation,
                 MessageTemplateMutation, MessagingMutation, ScheduleMutation, AppointmentMutation,
                 CommunicationMutation, CampaignMutation, QuestionnaireMutation, SurveyMutation,
                 QuestionnaireResponseMutation, ContractMutation, ContractSignatureMutation,
                 PatientMergeMutation, AccountMutation)
)

Subscription = merge_types("Subscription", (TicketSubscription, FlagSubscription))

# merge_types takes no description: the root types get theirs here.
for _root, _about in (
    (Query, "Reads, over HTTP POST: what you may see of your institution, as your token's role allows."),
    (Mutation, "Writes, over HTTP POST: each one audited, and all or nothing."),
    (Subscription, "Live events over a WebSocket (graphql-transport-ws at /graphql; sign in with the "
                   "connection_init payload {authorization: \"Bearer ...\"}). Rights are checked again before each "
                   "event."),
):
    get_object_definition(_root, strict=True).description = _about


class CareloopSchema(strawberry.Schema):
    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        """A subscription has no single result to answer a POST with: it is refused there (HTTP 400), as
        queries are on GET."""
        allowed = kwargs.get("allowed_operation_types") or DEFAULT_ALLOWED_OPERATION_TYPES
        kwargs["allowed_operation_types"] = set(allowed) - {OperationType.SUBSCRIPTION}
        return await super().execute(*args, **kwargs)

    def stream(self, *args: Any, **kwargs: Any) -> Any:
        """Streaming (the WebSocket) carries subscriptions only: queries and mutations go by HTTP POST, where
        the body limit, the request budget and the rest of the HTTP path apply."""
        kwargs["allowed_operation_types"] = (OperationType.SUBSCRIPTION,)
        return super().stream(*args, **kwargs)

    async def _stream(self, execution_context: ExecutionContext, extensions_runner: SchemaExtensionsRunner,
                      middleware_manager: MiddlewareManager,
                      execution_context_class: type[Executor] | None = None,
                      operation_extensions: dict[str, Any] | None = None) -> StreamResult:
        """Strawberry's stream, with what an operation hook raises before the first result (PartnerGate's refusal of
        a document a client did not register) answered as a result, the way a refusal raised while the subscription
        runs is answered (Strawberry's own steps: process the errors, the extensions' stream-result hooks, a ``next``
        with the errors) and as ``execute`` answers it over HTTP. Raised out of the stream, Strawberry's WebSocket
        handler sent a bare ``complete`` and logged an unhandled task exception at ERROR (found in review)."""
        answered = False
        try:
            async with aclosing(super()._stream(execution_context, extensions_runner, middleware_manager,
                                                execution_context_class, operation_extensions)) as results:
                async for result in results:
                    answered = True
                    yield result
        except Exception as exc:
            if answered:
                raise
            error = exc if isinstance(exc, GraphQLError) else GraphQLError(str(exc), original_error=exc)
            refused = await self._handle_execution_result(
                execution_context, GraphQLExecutionResult(data=None, errors=[error]), extensions_runner)
            async with extensions_runner.on_stream_result(refused):
                yield refused

    def create_extensions_runner(self, execution_context: ExecutionContext,
                                 extensions: list[SchemaExtension]) -> SchemaExtensionsRunner:
        return ExtensionsRunner(execution_context=execution_context, extensions=extensions)

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Log the kind and place of an error, never its message: messages may hold request data. The database's
        loss is one line for the request however many fields it failed (found in review: a page's departments,
        loaded in one statement, logged the one failure once per patient)."""
        context = execution_context.context if execution_context else None
        request_id = context.request.request_id if isinstance(context, Context) else ""
        lost = [error for error in errors if _database_lost(error)]
        if lost:
            log.warning("the database could not be reached (%s), request %s%s",
                        kind_and_place(cast(BaseException, lost[0].original_error)), request_id,
                        f", {len(lost)} fields failed" if len(lost) > 1 else "")
        for error in errors:
            if _database_lost(error):
                continue
            if is_unexpected(error):
                original = error.original_error
                told = kind_and_place(original) if original else "NoneType at ?"
                log.error("unexpected %s, request %s", told, request_id)
            else:
                code = (error.extensions or {}).get("code", "BAD_USER_INPUT")
                log.info("%s at %s, request %s", code, ".".join(map(str, error.path or [])), request_id)


def _database_lost(error: GraphQLError) -> bool:
    return is_unexpected(error) and connection_lost(cast(BaseException, error.original_error))


def build_schema(limits: Limits, *, production: bool) -> strawberry.Schema:
    # The rules are built once: ValidationCache keys on the rule classes, and a rule made per request would
    # never hit the cache, so every request would validate again.
    limit_rules: list[type[ASTValidationRule]] = [limits_rule(limits, production=production)]
    extensions: list[Any] = [
        DocumentRules.build(limit_rules, max_tokens=limits.max_tokens, production=production),
        DocumentCache,
        ValidationCache,
        PartnerGate,
        lambda: MutationGate(limits.login_per_address_per_minute),
        AuditReads,
        lambda: CodedErrors(production=production),
    ]
    schema = CareloopSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=extensions,
        config=StrawberryConfig(disable_field_suggestions=production),
        scalar_overrides=SCALAR_OVERRIDES,  # a DateTime the databases can hold
        execution_context_class=CompiledExecutor,  # the root patient list and patient from a compiled plan
    )
    inputs.install(schema)  # input values built from a plan per type, not field by field each time
    return schema
