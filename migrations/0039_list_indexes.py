"""Indexes that serve the ticket lists' and the survey responses' pages in their order (found in review, with
EXPLAIN ANALYZE on PostgreSQL: ``tickets`` ordered by creation or last change read and sorted every ticket of the
institution, 400,000 rows for a page of 20; ``myOpenedTickets``, ``partnerTickets``, the default newest-first ticket
page and ``questionnaireResponses`` walked the primary key across every institution's rows, filtering: 400,000 tickets
and 200,000 responses of another institution passed over for a page of 21). Creating them reads the two tables once,
and writes to them wait meanwhile (docs/operations.md)."""

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
        ops.AddIndex(model_name="QuestionnaireResponse", index=Index(fields=["institution_id", "id"])),
    ]
