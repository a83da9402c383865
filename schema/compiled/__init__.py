"""The compiled read path (issue 17, item 1): the root ``patients`` and ``patient`` (with their contacts), the
``followUpWorklist`` (its tasks and their patients), a patient's ``visits`` and one ``visit``, the ``tickets``,
the ``ticketQueue`` and one ``ticket`` (each with its patient), and the audit trail's pages (``auditEvents``,
``partnerAccessLog``).

graphql-core completes a page of 50 patients field by field: ~800 resolver calls, each with its resolve info,
path, awaitable checks and a field-class check. Here the executor (``executor.CompiledExecutor``) recognises a
compiled root field of a query and completes its whole subtree in one pass from a plan (``plan``: the selection
collected by graphql-core itself, so fragments, aliases, variables and @skip/@include mean what they always
mean), run by ``run.Run``:

- each field class of the patient's file is checked once per file (``access.require_class``: a task and its
  patient check the identity class once), then the fields of that class are opened with
  ``access.open_patient_field`` (a patient) or ``access.open_journey_field`` (a follow-up task or a visit, on its
  patient's file): the same calls, the same audit notes as the generic path;
- every other field is read by the schema type's own code: its attribute, or its synchronous resolver (``id``,
  a task's ``patient``), so that what is computed and checked cannot drift from the generic path;
- errors go through graphql-core's own ``handle_field_error`` (same message, code, path, locations, and null
  propagation), and leaves through its own ``complete_leaf_value``;
- asynchronous fields (a patient's ``contacts``, a ticket's ``patient``) are coroutines shaped as graphql-core
  shapes its awaitables (one awaited directly, several gathered as tasks), so that their checks, errors and audit
  notes come in the generic path's order; their loads are batched across the page by the loader, as in the
  generic path. A page's contacts selected once are completed in batch instead (``run.complete_root``: checked,
  loaded and completed in document order, graphql-core's order for them), and again the plain way at the first
  error.

Before ``run.Run`` (which handles each field's errors as graphql-core does), a plan whose asynchronous part is at most
that one batched field is completed by the fast pass (``fast``): steps made once per plan, which assume nothing errs;
at the first error the root field is completed again by ``run.Run``.

What each root compiles is in its own module (``patient``, ``follow_up``, ``visit``, ``ticket``, ``audit_event``),
made from the Strawberry definition (``plan.readers_of``) with the guarded fields over it (``plan.guarded``,
``plan.journey``).

A plan is made once per document, like parsing and validation: ``schema.selection.DocumentCache`` keeps it per
operation node (the parser cache hands back the same one for the same text) and per value of the variables
@skip/@include read, the only request values that change which fields graphql-core collects. A plan holds the
document's field nodes, the schema's types and the readers, nothing of a request.

A mutation's one root field whose result is a written contact (contactCreate, contactUpdate: ``patient.WRITTEN``)
has its answer completed from a plan too, after the write: the read-back its fields note was recorded with the
write, as on the generic path (tests/api/test_compiled_writes.py).

Anything the plan does not know (another field, a directive other than @skip/@include, @defer, an operation
with several root fields, any other mutation) falls back to graphql-core for the whole root field: never a
different answer. The generic path stays the reference; tests/api/test_compiled_reads.py, test_compiled_worklist.py,
test_compiled_visits.py, test_compiled_tickets.py and test_compiled_audit_events.py run a corpus of queries through both
(``CARELOOP_COMPILED_READS=0`` switches this path off) and compare answers and audit records.
"""
