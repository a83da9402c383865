"""DataLoaders for one request, each bound to the caller's institution.

Batch functions filter by institution themselves: a loader never trusts the resolver that
called it to have checked the tenant.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from models import Attachment, CareTeamMember, Contact, Department, Staff, TicketEvent


class Loaders:
    def __init__(self, institution_id: uuid.UUID) -> None:
        self.institution_id = institution_id
        self.contacts_by_patient = DataLoader(self._contacts_by_patient)
        self.department = DataLoader(self._department)
        self.care_team_by_patient = DataLoader(self._care_team_by_patient)
        self.staff = DataLoader(self._staff)
        self.attachments_by_ticket = DataLoader(self._attachments_by_ticket)
        self.events_by_ticket = DataLoader(self._events_by_ticket)

    async def _contacts_by_patient(self, patient_ids: Sequence[uuid.UUID]) -> list[list[Contact]]:
        found: dict[uuid.UUID, list[Contact]] = defaultdict(list)
        rows = Contact.filter(institution_id=self.institution_id, patient_id__in=list(patient_ids)).order_by("id")
        for contact in await rows:
            found[contact.patient_id].append(contact)
        return [found[pid] for pid in patient_ids]

    async def _department(self, ids: Sequence[uuid.UUID]) -> list[Department | None]:
        found = {d.id: d for d in await Department.filter(institution_id=self.institution_id, id__in=list(ids))}
        return [found.get(i) for i in ids]

    async def _attachments_by_ticket(self, ticket_ids: Sequence[uuid.UUID]) -> list[list[Attachment]]:
        found: dict[uuid.UUID, list[Attachment]] = defaultdict(list)
        rows = Attachment.filter(institution_id=self.institution_id, ticket_id__in=list(ticket_ids)).order_by("id")
        for row in await rows:
            found[row.ticket_id].append(row)
        return [found[tid] for tid in ticket_ids]

    async def _events_by_ticket(self, ticket_ids: Sequence[uuid.UUID]) -> list[list[TicketEvent]]:
        found: dict[uuid.UUID, list[TicketEvent]] = defaultdict(list)
        rows = TicketEvent.filter(institution_id=self.institution_id, ticket_id__in=list(ticket_ids)).order_by("id")
        for row in await rows:
            found[row.ticket_id].append(row)
        return [found[tid] for tid in ticket_ids]

    async def _staff(self, ids: Sequence[uuid.UUID]) -> list[Staff | None]:
        found = {s.id: s for s in await Staff.filter(institution_id=self.institution_id, id__in=list(ids))}
        return [found.get(i) for i in ids]

    async def _care_team_by_patient(self, patient_ids: Sequence[uuid.UUID]) -> list[list[Staff]]:
        found: dict[uuid.UUID, list[Staff]] = defaultdict(list)
        members = CareTeamMember.filter(institution_id=self.institution_id, patient_id__in=list(patient_ids))
        for member in await members.select_related("staff").order_by("created_at"):
            found[member.patient_id].append(member.staff)
        return [found[pid] for pid in patient_ids]
