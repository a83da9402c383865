"""A patient's consent to share their file with a partner (the consent to be contacted is on the
file itself: ``contactConsent`` and ``contactChannels``)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import strawberry

from resolvers import consent as consents
from schema import partner as partners
from schema.common import Info, uuid_of
from schema.partner import Partner

if TYPE_CHECKING:
    from models import PartnerConsent as PartnerConsentRow


@strawberry.type(description="Whether the patient agrees to share their file with a partner.")
class PartnerConsent:
    partner_id: strawberry.ID
    granted: bool
    changed_at: datetime

    @classmethod
    def of(cls, row: PartnerConsentRow) -> PartnerConsent:
        return cls(partner_id=strawberry.ID(str(row.partner_id)), granted=row.granted, changed_at=row.updated_at)

    @strawberry.field(description="The partner.")
    async def partner(self, info: Info) -> Partner | None:
        return await partners.load(info, self.partner_id)


@strawberry.type
class ConsentMutation:
    @strawberry.mutation(description="Give or withdraw consent to share a file with a partner: by the patient "
                                     "(their own file) or by staff recording what the patient said. Withdrawing "
                                     "revokes the partner's grants at once.")
    async def partner_consent_set(self, info: Info, patient_id: strawberry.ID, partner_id: strawberry.ID,
                                  granted: bool) -> PartnerConsent | None:
        row = await consents.set_sharing(info.context, uuid_of(patient_id, "patientId"),
                                         uuid_of(partner_id, "partnerId"), granted)
        return PartnerConsent.of(row)
