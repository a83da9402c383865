"""The executor: graphql-core's, with the one root field of a query completed from a plan when its result is one
of the compiled roots (``ROOTS``) and its selection is supported, and likewise the one root field of a mutation
whose result is one of ``WRITTEN`` (its write done, only its answer is completed here); anything else runs
graphql-core's own code."""

from __future__ import annotations

import logging
import os
from typing import Any

from graphql import FieldNode, GraphQLObjectType, GraphQLOutputType, OperationType, get_named_type
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from schema.compiled import audit_event, fast, follow_up, patient, ticket, visit  # the plan entries of each root
from schema.compiled.plan import Compiled, Object, batchable, plan
from schema.compiled.run import complete_root
from schema.selection import CACHE

log = logging.getLogger("careloop.compiled")
planned = logging.getLogger("careloop.compiled.plan")  # one debug line per plan made (tests count cache misses)

SWITCH = "CARELOOP_COMPILED_READS"  # "0": every field through graphql-core (the reference path)

TYPES: dict[str, Compiled] = {**patient.TYPES, **follow_up.TYPES, **visit.TYPES, **ticket.TYPES, **audit_event.TYPES}
ROOTS: dict[type, str] = {**patient.ROOTS, **follow_up.ROOTS, **visit.ROOTS, **ticket.ROOTS, **audit_event.ROOTS}
WRITTEN: dict[type, str] = patient.WRITTEN  # a mutation's result: the root field has written before it completes
_ROOTS_OF = {OperationType.QUERY: ROOTS, OperationType.MUTATION: WRITTEN}


def enabled() -> bool:
    return os.environ.get(SWITCH, "1") != "0"


class CompiledExecutor(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor, with the compiled root fields of a query or a mutation completed from a plan."""

    _a_write_ran = False  # a mutation's first root field has run (the next ones read afresh)

    def execute_field(self, parent_type: GraphQLObjectType, source: Any, field_details_list: FieldDetailsList,
                      path: Path, position_context: Any) -> Any:
        if path.prev is None and self.operation.operation is OperationType.MUTATION:
            # a mutation's root fields run one after the other: each after the first reads what the others wrote
            if self._a_write_ran:
                self.context_value.forget_loaded()
            self._a_write_ran = True
        return super().execute_field(parent_type, source, field_details_list, path, position_context)

    def complete_value(self, return_type: GraphQLOutputType, field_details_list: FieldDetailsList, info: Any,
                       path: Path, result: Any, position_context: Any) -> Any:
        if path.prev is None and type(result) in _ROOTS_OF.get(self.operation.operation, {}):
            compiled = self._compiled(return_type, field_details_list, path, result)
            if compiled is not None:
                return compiled
        return super().complete_value(return_type, field_details_list, info, path, result, position_context)

    def _compiled(self, return_type: GraphQLOutputType, details: FieldDetailsList, path: Path, result: Any) -> Any:
        if (not enabled() or len(self.operation.selection_set.selections) != 1
                or not isinstance(self.operation.selection_set.selections[0], FieldNode)):
            return None  # several root fields interleave their errors and notes: graphql-core's order only
        object_type = get_named_type(return_type)
        if (not isinstance(object_type, GraphQLObjectType)
                or object_type.name != _ROOTS_OF[self.operation.operation][type(result)]):
            return None
        made = CACHE.get(self.schema, self.operation, self.fragment_definitions, self.variable_values.coerced,
                         ("plan", object_type.name), lambda: self._planned(object_type, details))
        if made is None:
            return None
        log.debug("compiled %s", path.key)  # the differential tests check that the plan ran
        return complete_root(self, made, result, path)

    def _planned(self, object_type: GraphQLObjectType, details: FieldDetailsList) -> Object | None:
        planned.debug("planned %s", object_type.name)
        made = plan(self, TYPES, object_type, details)
        if made is not None:
            made.batched = batchable(made)
            fast.prepare(made)
        return made
