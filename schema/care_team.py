"""Care-team assignments."""

from __future__ import annotations

from typing import Annotated

import strawberry

from resolvers import care_team
from schema.common import Info, uuid_of
from schema.staff import CLINICIAN_RULE

_PATIENT_ID = Annotated[strawberry.ID, strawberry.argument(
    description="The patient file's id (Patient.id); NOT_FOUND when it does not exist or is outside your reach (the "
                "same answer).")]
_STAFF_ID = Annotated[strawberry.ID, strawberry.argument(
    description="The staff member; NOT_FOUND when no account of the institution has this id.")]
# careTeamAssign's: the team is shown to the patient and to staff as the people caring for the patient
_CLINICIAN_ID = Annotated[strawberry.ID, strawberry.argument(
    description="The staff member given the place. " + CLINICIAN_RULE + " An id of no account of the institution "
                "at all is NOT_FOUND, as careTeamUnassign's. One already on the team is checked again.")]


@strawberry.type
class CareTeamMutation:
    @strawberry.mutation(description="Put a clinician on a patient's care team (admins; department heads on files "
                                      "of their own departments, another's answering NOT_FOUND as a missing one). "
                                      f"A team holds at most {care_team.MAX_MEMBERS}: one more is BAD_USER_INPUT "
                                      "(reason item_count), nothing written; take one off first. Someone "
                                      "holding no clinical role is BAD_USER_INPUT at staffId (reason "
                                      "not_a_clinician), nothing written; both refusals are recorded. "
                                      "Answers true when done (never false); a refusal is an error, with null here.")
    async def care_team_assign(self, info: Info, patient_id: _PATIENT_ID, staff_id: _CLINICIAN_ID) -> bool | None:
        return await care_team.assign(info.context, uuid_of(patient_id, "patientId"), uuid_of(staff_id, "staffId"))

    @strawberry.mutation(description="Take a staff member off a patient's care team (admins; department heads "
                                      "on files of their own departments); anyone on it, a place given before "
                                      "careTeamAssign took clinicians only included. "
                                      "Answers true when done (never false); a refusal is an error, with null here.")
    async def care_team_unassign(self, info: Info, patient_id: _PATIENT_ID, staff_id: _STAFF_ID) -> bool | None:
        return await care_team.unassign(info.context, uuid_of(patient_id, "patientId"), uuid_of(staff_id, "staffId"))
