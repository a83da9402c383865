"""Distributing surveys: the institution's survey settings and triggers, invitations (a patient's, and the
portal's own) and one-off survey campaigns. Answering and responses: ``schema.questionnaire_response``."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from resolvers import access
from resolvers import survey as surveys
from resolvers.access import ContactView
from resolvers.survey import InvitationView, Invited
from schema.campaign import CampaignAudienceInput
from schema.common import (
    DEFAULT_PAGE_SIZE,
    TOTAL_COUNT,
    First,
    Info,
    PageInfo,
    asks_total,
    optional_id,
    provided,
    uuid_of,
)
from schema.contact import Relationship
from schema.department import Department
from schema.questionnaire import Questionnaire
from schema.visit import NAMED_VISIT, Visit, VisitKind, named_visit

if TYPE_CHECKING:
    from models import SurveySettings as SurveySettingsRow
    from models import SurveyTrigger as SurveyTriggerRow


_AFTER = Annotated[str | None, strawberry.argument(description="The cursor of the previous page's end.")]
_VERSION = Annotated[int | None, strawberry.argument(description="The version you read; a stale one is a CONFLICT "
                                                                 "and writes nothing.")]



# -- settings -----------------------------------------------------------------------------------------


@strawberry.type(description="The institution's survey settings (the defaults until saved, version 0).")
class SurveySettings:
    row: strawberry.Private[Any]

    @strawberry.field(description="A patient is invited at most once in this many days (0: no cap; default 30).")
    def fatigue_days(self) -> int:
        return int(self.row.fatigue_days)

    @strawberry.field(description="The share of satisfied respondents the institution aims at, in percent "
                                  "(default 92).")
    def satisfaction_target(self) -> int:
        return int(self.row.satisfaction_target)

    @strawberry.field(description="No figure is shown from fewer responses than this (default 5).")
    def min_cell(self) -> int:
        return int(self.row.min_cell)

    @strawberry.field(description="Days a survey link may be answered after its message is due (default 14).")
    def link_valid_days(self) -> int:
        return int(self.row.link_valid_days)

    @strawberry.field(description="Pass to surveySettingsUpdate; 0 while the defaults are in force.")
    def version(self) -> int:
        return int(self.row.version)

    @classmethod
    def of(cls, row: SurveySettingsRow) -> SurveySettings:
        return cls(row=row)


@strawberry.input(description="Settings to change; those left out stay as they are.")
class SurveySettingsInput:
    fatigue_days: int | None = strawberry.field(default=strawberry.UNSET, description="0 to 365 (0: no cap).")
    satisfaction_target: int | None = strawberry.field(default=strawberry.UNSET, description="1 to 100 percent.")
    min_cell: int | None = strawberry.field(default=strawberry.UNSET, description="3 to 100 responses.")
    link_valid_days: int | None = strawberry.field(
        default=strawberry.UNSET, description="1 to 90 days, more than every active trigger's reminderAfterDays.")


# -- triggers -----------------------------------------------------------------------------------------


@strawberry.enum(description="What invites a patient to a survey.")
class SurveyEvent(Enum):
    VISIT_FINISHED = strawberry.enum_value("visit_finished", description="A visit finished.")
    TICKET_CLOSED = strawberry.enum_value("ticket_closed", description="A ticket about the patient was closed.")
    FOLLOW_UP_COMPLETED = strawberry.enum_value("follow_up_completed",
                                                description="A follow-up call reached the patient.")


@strawberry.type(description="A rule such as: the day after a finished outpatient visit in department D, invite "
                             "the patient to questionnaire Q, and remind them after 3 days. A cause invites once; "
                             "the most specific matching trigger chooses the questionnaire.")
class SurveyTrigger:
    row: strawberry.Private[Any]

    @strawberry.field(description="The trigger's id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field(description="What it follows.")
    def event(self) -> SurveyEvent:
        return SurveyEvent(self.row.event)

    @strawberry.field(description="The questionnaire (its key: the version active when the cause occurs is sent).")
    def questionnaire_key(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.questionnaire_key))

    @strawberry.field(description="The kind of finished visit it follows; null: any kind.")
    def visit_kind(self) -> VisitKind | None:
        return None if self.row.visit_kind is None else VisitKind(self.row.visit_kind)

    @strawberry.field(description="The department whose visits, tickets or calls it follows; null: every one.")
    async def department(self, info: Info) -> Department | None:
        department_id = self.row.department_id
        row = None if department_id is None else await info.context.require_loaders().department.load(department_id)
        return None if row is None else Department.of(row)

    @strawberry.field(description="Hours between the cause and the invitation's message (0 to 720).")
    def delay_hours(self) -> int:
        return int(self.row.delay_hours)

    @strawberry.field(description="Days after the message a reminder goes if unanswered; null: no reminder.")
    def reminder_after_days(self) -> int | None:
        return self.row.reminder_after_days

    @strawberry.field(description="Whether it invites (false once deactivated).")
    def active(self) -> bool:
        return bool(self.row.active)

    @strawberry.field(description="Pass to surveyTriggerUpdate or surveyTriggerDeactivate.")
    def version(self) -> int:
        return int(self.row.version)

    @strawberry.field(description="When it was written.")
    def created_at(self) -> datetime:
        return self.row.created_at

    @classmethod
    def of(cls, row: SurveyTriggerRow) -> SurveyTrigger:
        return cls(row=row)


@strawberry.type(description="A survey trigger on a page.")
class SurveyTriggerEdge:
    cursor: str = strawberry.field(description="Pass as `after` for the triggers after this one.")
    node: SurveyTrigger = strawberry.field(description="The trigger.")


@strawberry.type(description="A page of survey triggers, oldest first.")
class SurveyTriggerConnection:
    edges: list[SurveyTriggerEdge] = strawberry.field(description="The triggers with their cursors.")
    page_info: PageInfo = strawberry.field(description="Where the page ends.")
    total_count: int | None = strawberry.field(default=None, description=TOTAL_COUNT)

    @strawberry.field(description="The triggers of the page.")
    def nodes(self) -> list[SurveyTrigger]:
        return [edge.node for edge in self.edges]


@strawberry.input(description="A new survey trigger. Department heads name one of their own departments.")
class SurveyTriggerCreateInput:
    event: SurveyEvent = strawberry.field(description="What it follows.")
    questionnaire_key: strawberry.ID = strawberry.field(
        description="A questionnaire's key; it must have an active version, answered by patients or family.")
    visit_kind: VisitKind | None = strawberry.field(default=None, description="Finished visits of this kind only.")
    department_id: strawberry.ID | None = strawberry.field(default=None, description="This department's only.")
    delay_hours: int = strawberry.field(default=24, description="Hours after the cause (0 to 720; default 24).")
    reminder_after_days: int | None = strawberry.field(
        default=None, description="A reminder this many days later (1 to 30, fewer than the links are valid: "
                                  "linkValidDays).")


@strawberry.input(description="Changes to a trigger: fields left out stay; null clears visitKind, departmentId "
                              "or reminderAfterDays.")
class SurveyTriggerUpdateInput:
    event: SurveyEvent | None = strawberry.field(default=strawberry.UNSET, description="What it follows.")
    questionnaire_key: strawberry.ID | None = strawberry.field(default=strawberry.UNSET,
                                                               description="Another questionnaire's key.")
    visit_kind: VisitKind | None = strawberry.field(default=strawberry.UNSET, description="Only after visits of this "
                                                                                      "kind; null: any kind.")
    department_id: strawberry.ID | None = strawberry.field(default=strawberry.UNSET,
                                                           description="This department's only.")
    delay_hours: int | None = strawberry.field(default=strawberry.UNSET, description="0 to 720 hours.")
    reminder_after_days: int | None = strawberry.field(
        default=strawberry.UNSET, description="1 to 30 days, fewer than the links are valid (linkValidDays).")


# -- invitations --------------------------------------------------------------------------------------


@strawberry.enum(description="Where an invitation stands.")
class SurveyInvitationStatus(Enum):
    REQUESTED = strawberry.enum_value("requested", description="Its message is waiting or was sent.")
    REFUSED = strawberry.enum_value("refused", description="The consent gate stopped its message; it can still "
                                                           "be answered in the portal or entered by staff.")
    ANSWERED = strawberry.enum_value("answered", description="Answered (staff are not told for an anonymous "
                                                             "questionnaire).")
    EXPIRED = strawberry.enum_value("expired", description="Its link expired unanswered.")
    CANCELLED = strawberry.enum_value("cancelled", description="Withdrawn.")


@strawberry.enum(description="What caused an invitation.")
class SurveyCause(Enum):
    VISIT = strawberry.enum_value("visit", description="A finished visit.")
    TICKET = strawberry.enum_value("ticket", description="A closed ticket.")
    FOLLOW_UP = strawberry.enum_value("follow_up", description="A follow-up call.")
    CAMPAIGN = strawberry.enum_value("campaign", description="A one-off survey campaign.")


@strawberry.type(description="The family member a family questionnaire's invitation was addressed to: who they are, "
                             "nothing more (their phone and notes are on the patient's contacts). Reading it is "
                             "audited as a read of the patient's contacts.")
class SurveyInvitedContact:
    view: strawberry.Private[ContactView]

    @strawberry.field(description="The contact's id (as in the patient's contacts).")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="The contact's full name.")
    def name(self, info: Info) -> str:
        return str(access.read_contact_field(info.context, self.view, "name"))

    @strawberry.field(description="How the contact is related to the patient.")
    def relationship(self, info: Info) -> Relationship:
        return Relationship(access.read_contact_field(info.context, self.view, "relationship"))


@strawberry.type(description="An invitation to answer one questionnaire version, for one cause: to the patient, or "
                             "for a family questionnaire to one of their contacts.")
class SurveyInvitation:
    view: strawberry.Private[InvitationView]

    @strawberry.field(description="Pass to surveyAnswer (the patient) or surveyResponseEnter (staff).")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="The questionnaire version to answer.")
    def questionnaire_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.questionnaire_id))

    @strawberry.field(description="The questionnaire version to answer, with its items.")
    def questionnaire(self) -> Questionnaire:
        return Questionnaire.of(self.view.questionnaire)

    @strawberry.field(description="Whether its answers are kept without any link to the patient.")
    def anonymous(self) -> bool:
        return bool(self.view.questionnaire.anonymous)

    @strawberry.field(description="What caused it.")
    def cause(self) -> SurveyCause:
        return SurveyCause(str(self.view.row.cause_key).split(":")[0])

    @strawberry.field(description="The visit it follows, if any.")
    def visit_id(self) -> strawberry.ID | None:
        return optional_id(self.view.row.visit_id)

    @strawberry.field(description=f"The visit it follows; null when it follows none. {NAMED_VISIT}")
    async def visit(self, info: Info) -> Visit | None:
        return await named_visit(info.context, self.view.row.visit_id)

    @strawberry.field(description="The ticket it follows, if any.")
    def ticket_id(self) -> strawberry.ID | None:
        return optional_id(self.view.row.ticket_id)

    @strawberry.field(description="The department it is about, if any.")
    def department_id(self) -> strawberry.ID | None:
        return optional_id(self.view.row.department_id)

    @strawberry.field(description="The family member it was addressed to (a family questionnaire: a contact who may "
                                  "receive information and has a phone, one marked for emergencies first, then the "
                                  "earliest added); null when it was addressed to the patient. Needs the right to "
                                  "read the patient's contacts (FORBIDDEN on the field otherwise).")
    def invited_contact(self, info: Info) -> SurveyInvitedContact | None:
        view = surveys.invited_contact(info.context, self.view)
        return None if view is None else SurveyInvitedContact(view=view)

    @strawberry.field(description="Where it stands.")
    def status(self) -> SurveyInvitationStatus:
        return SurveyInvitationStatus(surveys.shown_status(self.view))

    @strawberry.field(description="Whether it was answered; null for staff when the questionnaire is anonymous "
                                  "(so no answer can be lined up with its patient).")
    def answered(self) -> bool | None:
        return surveys.shown_answered(self.view)

    @strawberry.field(description="When its message is (or was) due.")
    def send_at(self) -> datetime:
        return self.view.row.send_at

    @strawberry.field(description="Until when it may be answered.")
    def expires_at(self) -> datetime:
        return self.view.row.expires_at

    @strawberry.field(description="When a reminder was sent, if one was.")
    def reminded_at(self) -> datetime | None:
        return self.view.row.reminded_at

    @strawberry.field(description="When it was made.")
    def created_at(self) -> datetime:
        return self.view.row.created_at


@strawberry.type(description="An invitation on a page.")
class SurveyInvitationEdge:
    cursor: str = strawberry.field(description="Pass as `after` for the invitations after this one.")
    node: SurveyInvitation = strawberry.field(description="The invitation.")


@strawberry.type(description="A page of invitations, newest first.")
class SurveyInvitationConnection:
    edges: list[SurveyInvitationEdge] = strawberry.field(description="The invitations with their cursors.")
    page_info: PageInfo = strawberry.field(description="Where the page ends.")
    total_count: int | None = strawberry.field(default=None, description=TOTAL_COUNT)

    @strawberry.field(description="The invitations of the page.")
    def nodes(self) -> list[SurveyInvitation]:
        return [edge.node for edge in self.edges]


@strawberry.type(description="What a one-off survey campaign came to: counts only, never names.")
class SurveyInviteResult:
    invited: int = strawberry.field(description="Invitations made (their messages queued, or refused by the gate).")
    refused: int = strawberry.field(description="Of those, how many messages the consent gate refused.")
    fatigued: int = strawberry.field(description="Patients not asked: invited within the fatigue period.")
    inactive: int = strawberry.field(description="Patients not asked: archived or deceased (or their file merged into "
                                                 "another meanwhile).")
    no_contact: int = strawberry.field(description="Patients not asked: the questionnaire is answered by family, and "
                                                   "none of their contacts may receive information and has a phone. "
                                                   "Nothing is sent to the patient instead.")

    @classmethod
    def of(cls, made: Invited) -> SurveyInviteResult:
        return cls(invited=len(made.invitations), refused=made.refused, fatigued=made.fatigued,
                   inactive=made.inactive, no_contact=made.no_contact)


def _invitations(page: Any) -> SurveyInvitationConnection:
    return SurveyInvitationConnection(
        edges=[SurveyInvitationEdge(cursor=cursor, node=SurveyInvitation(view=view)) for cursor, view in page.items],
        page_info=PageInfo.of(page), total_count=page.total)


@strawberry.type
class SurveyQuery:
    @strawberry.field(description="The institution's survey settings (department heads and admins).")
    async def survey_settings(self, info: Info) -> SurveySettings:
        return SurveySettings.of(await surveys.settings(info.context))

    @strawberry.field(description="The institution's survey triggers, oldest first (department heads and admins).")
    async def survey_triggers(
        self, info: Info,
        first: First = DEFAULT_PAGE_SIZE, after: _AFTER = None,
        include_inactive: Annotated[bool, strawberry.argument(description="Deactivated triggers too.")] = False,
    ) -> SurveyTriggerConnection:
        page = await surveys.triggers(info.context, first=first, after=after, include_inactive=include_inactive,
                                      count=asks_total(info))
        return SurveyTriggerConnection(
            edges=[SurveyTriggerEdge(cursor=cursor, node=SurveyTrigger.of(row)) for cursor, row in page.items],
            page_info=PageInfo.of(page), total_count=page.total)

    @strawberry.field(description="A patient's survey invitations, newest first (nurses, front desk, department "
                                  "heads, within their reach). NOT_FOUND outside it.")
    async def patient_survey_invitations(
        self, info: Info, patient_id: Annotated[strawberry.ID, strawberry.argument(
            description="The patient file's id (Patient.id).")],
        first: First = DEFAULT_PAGE_SIZE, after: _AFTER = None,
    ) -> SurveyInvitationConnection:
        return _invitations(await surveys.patient_invitations(info.context, uuid_of(patient_id, "patientId"),
                                                              first=first, after=after, count=asks_total(info)))

    @strawberry.field(description="Your own survey invitations, newest first (patients in the portal): those "
                                  "addressed to you; a family questionnaire's invitation is your contact's to answer "
                                  "and is not listed.")
    async def my_survey_invitations(
        self, info: Info, first: First = DEFAULT_PAGE_SIZE, after: _AFTER = None,
    ) -> SurveyInvitationConnection:
        return _invitations(await surveys.my_invitations(info.context, first=first, after=after,
                                                         count=asks_total(info)))


@strawberry.type
class SurveyMutation:
    @strawberry.mutation(description="Change the survey settings (department heads and admins). A stale version "
                                     "is a CONFLICT.")
    async def survey_settings_update(
        self, info: Info, input: Annotated[SurveySettingsInput, strawberry.argument(description="What changes.")],
        version: _VERSION = None,
    ) -> SurveySettings | None:
        return SurveySettings.of(await surveys.update_settings(info.context, provided(input), version))

    @strawberry.mutation(description="A new survey trigger (admins; department heads for their own departments).")
    async def survey_trigger_create(
        self, info: Info, input: Annotated[SurveyTriggerCreateInput, strawberry.argument(description="The trigger.")],
    ) -> SurveyTrigger | None:
        return SurveyTrigger.of(await surveys.trigger_create(info.context, provided(input)))

    @strawberry.mutation(description="Change an active trigger. A stale version is a CONFLICT.")
    async def survey_trigger_update(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The trigger.")],
        input: Annotated[SurveyTriggerUpdateInput, strawberry.argument(description="What changes.")],
        version: _VERSION = None,
    ) -> SurveyTrigger | None:
        return SurveyTrigger.of(await surveys.trigger_update(info.context, uuid_of(id), provided(input), version))

    @strawberry.mutation(description="Stop a trigger inviting; its invitations stand.")
    async def survey_trigger_deactivate(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The trigger.")],
        version: _VERSION = None,
    ) -> SurveyTrigger | None:
        return SurveyTrigger.of(await surveys.trigger_deactivate(info.context, uuid_of(id), version))

    @strawberry.mutation(description="Invite a segment or cohort to an active questionnaire at once (department "
                                     "heads: their own departments; admins). The fatigue cap and the consent gate "
                                     "apply to each patient; at most 5,000 patients.")
    async def survey_invite(
        self, info: Info,
        questionnaire_id: Annotated[strawberry.ID, strawberry.argument(description="An active questionnaire.")],
        audience: Annotated[CampaignAudienceInput | None, strawberry.argument(
            description="Who: the campaigns' audience criteria (none: everyone in your reach).")] = None,
    ) -> SurveyInviteResult | None:
        data = {} if audience is None else provided(audience)
        return SurveyInviteResult.of(await surveys.invite_audience(
            info.context, uuid_of(questionnaire_id, "questionnaireId"), data))
