"""Indexes that serve the ticket lists' pages in their order (found in review, with EXPLAIN on PostgreSQL: ``tickets``
ordered by creation or last change read and sorted every ticket of the institution, 400,000 rows for a page of 20;
``myOpenedTickets``, ``partnerTickets`` and the default newest-first page walked the primary key across every
institution's tickets, filtering). Creating them reads the ticket table once, and writes to tickets wait meanwhile
(docs/operations.md)."""

from tortoise import migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("careloop", "0038_contacts_on_file")]

    operations = [
        ops.AddIndex(model_name="Ticket", index=Index(fields=["institution_id", "id"])),
        ops.AddIndex(model_name="Ticket", index=Index(fields=["institution_id", "created_at", "id"])),
        ops.AddIndex(model_name="Ticket", index=Index(fields=["institution_id", "updated_at", "id"])),
        ops.AddIndex(model_name="Ticket", index=Index(fields=["institution_id", "opened_by_id", "id"])),
        ops.AddIndex(model_name="Ticket", index=Index(fields=["institution_id", "opened_by_partner_id", "id"])),
    ]
