"""The plan entries of the ticket lists (the root ``tickets`` and ``ticketQueue``) and the single ``ticket``: the
ticket's fields as its type reads them (``tickets.read_field`` notes each on the ticket's record), its patient
awaited as its resolver (the file found across the page by the loader, or null out of reach), or batched when it
is the plan's one asynchronous field (``Batch``), and completed by the patient plan. The ticket's owner, assignee,
department, SLA clocks, transitions, attachments and timeline are not compiled: a selection with them runs the
generic path."""

from __future__ import annotations

from schema.compiled.plan import Batch, Compiled, readers_of
from schema.ticket import (
    Ticket,
    TicketConnection,
    TicketEdge,
    TicketSource,
    no_check,
    patient_asked,
    patients_of_page,
)

TYPES: dict[str, Compiled] = {
    **readers_of(Ticket, loads=("patient",), batches={"patient": Batch(no_check, patients_of_page, patient_asked)}),
    **readers_of(TicketEdge),
    **readers_of(TicketConnection),
}
ROOTS: dict[type, str] = {TicketConnection: "TicketConnection", TicketSource: "Ticket"}
