"""A patient's consent to share their file with a partner (the consent to be contacted is on the
file itself: ``contactConsent`` and ``contactChannels``)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from resolvers import consent as consents
from schema import partner as partners
from schema.common import Info, uuid_of
from schema.partner import Partner

if TYPE_CHECKING:
    from models import PartnerConsent as PartnerConsentRow


@strawberry.type(description="Whether the patient agrees to share their file with a partner.")
class PartnerConsent:
    partner_id: strawberry.ID = strawberry.field(description="The partner asked about.")
    granted: bool = strawberry.field(description="True: the patient agrees to share; false: refused or withdrawn.")
    changed_at: datetime = strawberry.field(description="When the patient last gave or withdrew it.")

    @classmethod
    def of(cls, row: PartnerConsentRow) -> PartnerConsent:
        return cls(partner_id=strawberry.ID(str(row.partner_id)), granted=row.granted, changed_at=row.updated_at)

    @strawberry.field(description="The partner asked about, to show its name (its id is partnerId); never null "
                                  "(a partner is suspended, never deleted).")
    async def partner(self, info: Info) -> Partner | None:
        return await partners.load(info, self.partner_id)


@strawberry.type
class ConsentMutation:
    @strawberry.mutation(description="Give or withdraw consent to share a file with a partner: by the patient "
                                     "(their own file) or by staff recording what the patient said. Withdrawing "
                                     "revokes the partner's grants at once.")
    async def partner_consent_set(
        self, info: Info,
        patient_id: Annotated[strawberry.ID, strawberry.argument(
            description="The patient: your own file (patients), or one in your reach (staff).")],
        partner_id: Annotated[strawberry.ID, strawberry.argument(
            description="The partner's id (Partner.id, or PartnerConsent.partnerId); NOT_FOUND for another "
                        "institution's.")],
        granted: Annotated[bool, strawberry.argument(description="True: give consent; false: withdraw it.")],
    ) -> PartnerConsent | None:
        row = await consents.set_sharing(info.context, uuid_of(patient_id, "patientId"),
                                         uuid_of(partner_id, "partnerId"), granted)
        return PartnerConsent.of(row)
