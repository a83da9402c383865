"""Campaigns: a message to a segment or a cohort, previewed after the consent gate, sent in batches."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from resolvers import campaign as campaigns
from schema.common import (
    DEFAULT_PAGE_SIZE,
    TOTAL_COUNT,
    After,
    First,
    Info,
    PageInfo,
    Version,
    asks_total,
    provided,
    uuid_of,
)
from schema.communication import CommunicationRefusal
from schema.patient import Segment
from schema.staff import StaffSummary
from schema.visit import CodeSystem

if TYPE_CHECKING:
    import uuid

    from models import Campaign as CampaignRow


@strawberry.enum(description="What a campaign is for; a patient consents to each purpose separately.")
class CampaignPurpose(Enum):
    GREETING = strawberry.enum_value("greeting", description="Holiday and seasonal greetings.")
    CAMPAIGN = strawberry.enum_value("campaign", description="Newsletters, health education, service news.")


@strawberry.enum(description="Where a campaign stands.")
class CampaignStatus(Enum):
    DRAFT = strawberry.enum_value("draft", description="Written, not started: it may be previewed, approved by "
                                                         "someone other than its author, then started.")
    SENDING = strawberry.enum_value("sending", description="Being queued a batch at a time.")
    COMPLETED = strawberry.enum_value("completed", description="Every recipient was queued (or refused).")
    CANCELLED = strawberry.enum_value("cancelled", description="Stopped: messages not yet sent were cancelled.")


@strawberry.input(description="Who a campaign addresses: active patients matching every criterion given (none: "
                              "every patient in your reach). Department heads address their own departments.")
class CampaignAudienceInput:
    segment: Segment | None = strawberry.field(default=None, description="Patients of this segment.")
    department_id: strawberry.ID | None = strawberry.field(default=None,
                                                           description="Only patients of this department "
                                                                       "(Department.id).")
    code: str | None = strawberry.field(default=None,
                                        description="Patients with this code recorded on a visit (a cohort).")
    code_system: CodeSystem | None = strawberry.field(default=None, description="The system of `code`: ICD10 "
                                                                            "(the default) or SERVICE.")


@strawberry.input(description="A new campaign (a draft). Subject and body are templates: only the variables of "
                              "message templates may be filled in, and the body must carry {unsubscribe_url}.")
class CampaignCreateInput:
    name: str = strawberry.field(description="What the institution calls it (not sent).")
    purpose: CampaignPurpose = strawberry.field(description="The consent it needs.")
    body: str = strawberry.field(description="The message, with {variable} slots: at most 500 characters, since it "
                                             "goes out by SMS where that is the channel.")
    subject: str | None = strawberry.field(default=None, description="The e-mail subject.")
    audience: CampaignAudienceInput | None = strawberry.field(default=None, description="Who it is for.")


@strawberry.type(description="How many patients a refusal reason of the consent gate stops.")
class RefusalCount:
    reason: CommunicationRefusal = strawberry.field(description="Why the consent gate refuses them.")
    count: int = strawberry.field(description="Patients (or messages) it stops.")


def _refusals(counts: dict[str, int]) -> list[RefusalCount]:
    return [RefusalCount(reason=CommunicationRefusal(reason), count=n) for reason, n in sorted(counts.items())]


@strawberry.type(description="What a campaign would reach now: counts only, never names.")
class CampaignPreview:
    audience: int = strawberry.field(description="Active patients the audience matches.")
    recipients: int = strawberry.field(description="Of those, how many the consent gate lets the message reach.")
    refused: list[RefusalCount] = strawberry.field(description="Why the others would not get it.")


@strawberry.type(description="A campaign's delivery so far.")
class CampaignProgress:
    waiting: int = strawberry.field(description="Messages queued, not yet handed to a sender.")
    sent: int = strawberry.field(description="Messages handed over (delivered ones included).")
    delivered: int = strawberry.field(description="Messages a gateway reported delivered.")
    failed: int = strawberry.field(description="Messages that could not be delivered.")
    refused: list[RefusalCount] = strawberry.field(description="Messages the gate stopped, per reason (when "
                                                               "queued and when sending).")


@strawberry.type(description="A message to a segment or a cohort of patients.")
class Campaign:
    row: strawberry.Private[Any]

    @strawberry.field(description="The campaign's id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.row.id))

    @strawberry.field(description="What the institution calls it.")
    def name(self) -> str:
        return str(self.row.name)

    @strawberry.field(description="The consent it needs.")
    def purpose(self) -> CampaignPurpose:
        return CampaignPurpose(self.row.purpose)

    @strawberry.field(description="Where it stands.")
    def status(self) -> CampaignStatus:
        return CampaignStatus(self.row.status)

    @strawberry.field(description="The e-mail subject template.")
    def subject(self) -> str:
        return str(self.row.subject)

    @strawberry.field(description="The message template.")
    def body(self) -> str:
        return str(self.row.body)

    @strawberry.field(description="The segment it addresses, if any.")
    def segment(self) -> Segment | None:
        segment = self.row.audience.get("segment")
        return None if segment is None else Segment(segment)

    @strawberry.field(description="The departments it addresses (empty: the whole institution).")
    def department_ids(self) -> list[strawberry.ID]:
        return [strawberry.ID(d) for d in self.row.audience.get("department_ids", [])]

    @strawberry.field(description="The code of the cohort it addresses, if any.")
    def code(self) -> str | None:
        return self.row.audience.get("code")

    @strawberry.field(description="Patients in the audience when sending began (recorded).")
    def recipients(self) -> int:
        return int(self.row.recipients)

    @strawberry.field(description="Messages queued so far, counted as they were queued (with refused, every "
                                  "recipient queueing reached, once): what became of them since, sent, cancelled "
                                  "or refused (a merged file's twin among them), is in progress.")
    def queued(self) -> int:
        return int(self.row.queued)

    @strawberry.field(description="Recipients the gate refused when queueing, per reason.")
    def refused(self) -> list[RefusalCount]:
        return _refusals(self.row.refused)

    @strawberry.field(description="When it was started; null while a draft (and for one cancelled before it "
                                  "started).")
    def started_at(self) -> datetime | None:
        return self.row.started_at

    @strawberry.field(description="When it completed or was cancelled; null until then.")
    def finished_at(self) -> datetime | None:
        return self.row.finished_at

    @strawberry.field(description="When it was written.")
    def created_at(self) -> datetime:
        return self.row.created_at

    @strawberry.field(description="Who wrote it; never null (an account is deactivated, never deleted).")
    async def author(self, info: Info) -> StaffSummary | None:
        return await _summary(info, self.row.author_id)

    @strawberry.field(description="Who approved it (campaignApprove: someone other than its author, before it is "
                                  "started); null: not approved yet.")
    async def approved_by(self, info: Info) -> StaffSummary | None:
        return await _summary(info, self.row.approved_by_id)

    @strawberry.field(description="When it was approved; null: not approved yet (it cannot be started).")
    def approved_at(self) -> datetime | None:
        return self.row.approved_at

    @strawberry.field(description="Pass to campaignApprove, campaignStart or campaignCancel.")
    def version(self) -> int:
        return int(self.row.version)

    @strawberry.field(description="Its messages' delivery so far (one grouped statement for a page of campaigns).")
    async def progress(self, info: Info) -> CampaignProgress:
        loader = info.context.require_loaders().made("campaign_progress", _load_progress)
        found: campaigns.Progress = await loader.load(self.row.id)
        return CampaignProgress(waiting=found.waiting, sent=found.sent, delivered=found.delivered,
                                failed=found.failed, refused=_refusals(found.refused_at_sending))

    @classmethod
    def of(cls, row: CampaignRow) -> Campaign:
        return cls(row=row)


async def _summary(info: Info, staff_id: uuid.UUID | None) -> StaffSummary | None:
    row = None if staff_id is None else await info.context.require_loaders().staff.load(staff_id)
    return None if row is None else StaffSummary.of(row)


async def _load_progress(ids: Any) -> list[campaigns.Progress]:
    found = await campaigns.progress_of(list(ids))
    return [found[i] for i in ids]


@strawberry.type(description="A campaign on a page.")
class CampaignEdge:
    cursor: str = strawberry.field(description="Pass as `after` for the campaigns after this one.")
    node: Campaign = strawberry.field(description="The campaign.")


@strawberry.type(description="A page of campaigns, newest first.")
class CampaignConnection:
    edges: list[CampaignEdge] = strawberry.field(description="The campaigns with their cursors.")
    page_info: PageInfo = strawberry.field(description="Where the page ends.")
    total_count: int | None = strawberry.field(default=None, description=TOTAL_COUNT)

    @strawberry.field(description="The campaigns of the page.")
    def nodes(self) -> list[Campaign]:
        return [edge.node for edge in self.edges]


def _audience(data: CampaignAudienceInput | None) -> dict[str, Any]:
    return {} if data is None else provided(data)


_CAMPAIGN_ID = Annotated[strawberry.ID, strawberry.argument(description="The campaign's id.")]


@strawberry.type
class CampaignQuery:
    @strawberry.field(description="The institution's campaigns, newest first (department heads and admins).")
    async def campaigns(self, info: Info, first: First = DEFAULT_PAGE_SIZE, after: After = None
                        ) -> CampaignConnection:
        page = await campaigns.campaigns(info.context, first=first, after=after, count=asks_total(info))
        return CampaignConnection(
            edges=[CampaignEdge(cursor=cursor, node=Campaign.of(row)) for cursor, row in page.items],
            page_info=PageInfo.of(page), total_count=page.total)

    @strawberry.field(description="One campaign. NOT_FOUND when it is missing.")
    async def campaign(self, info: Info, id: _CAMPAIGN_ID) -> Campaign | None:
        return Campaign.of(await campaigns.get(info.context, uuid_of(id)))

    @strawberry.field(description="How many patients a campaign with this audience would reach now, after the "
                                  "consent gate, and why the others would not (counts only).")
    async def campaign_preview(
        self, info: Info,
        purpose: Annotated[CampaignPurpose, strawberry.argument(description="The purpose the message would be "
                                                                            "sent for (the consent it needs).")],
        audience: Annotated[CampaignAudienceInput | None, strawberry.argument(
            description="Who it would be for; null: every active patient in your reach.")] = None,
    ) -> CampaignPreview:
        found = await campaigns.preview(info.context, str(purpose.value), _audience(audience))
        return CampaignPreview(audience=found.audience, recipients=found.recipients,
                               refused=_refusals(found.refused))


@strawberry.type
class CampaignMutation:
    @strawberry.mutation(description="Write a campaign (a draft): department heads for their departments, admins.")
    async def campaign_create(self, info: Info, input: Annotated[CampaignCreateInput, strawberry.argument(
            description="The campaign.")]) -> Campaign | None:
        data = provided(input)
        data["audience"] = _audience(input.audience)
        return Campaign.of(await campaigns.create(info.context, data))

    @strawberry.mutation(description="Approve a draft before it is started (four eyes: the institutions' approval "
                                     "rule for using customer information): department heads for their departments' "
                                     "campaigns, admins. Its author is FORBIDDEN, reason self_approval (recorded); "
                                     "CONFLICT when it changed, is not a draft (reason illegal_transition) or is "
                                     "approved already (illegal_transition). A campaign has no edit: what is approved "
                                     "is what is sent.")
    async def campaign_approve(self, info: Info, id: _CAMPAIGN_ID, version: Version = None) -> Campaign | None:
        return Campaign.of(await campaigns.approve(info.context, uuid_of(id), version))

    @strawberry.mutation(description="Start sending a draft: the recipient count is recorded and the message is "
                                     "queued in batches. CONFLICT when it changed, is not a draft (reason "
                                     "illegal_transition) or is not approved yet (reason not_approved: "
                                     "campaignApprove first, by someone other than its author).")
    async def campaign_start(self, info: Info, id: _CAMPAIGN_ID, version: Version = None) -> Campaign | None:
        return Campaign.of(await campaigns.start(info.context, uuid_of(id), version))

    @strawberry.mutation(description="Stop a campaign: nothing more is queued and unsent messages are cancelled.")
    async def campaign_cancel(self, info: Info, id: _CAMPAIGN_ID, version: Version = None) -> Campaign | None:
        return Campaign.of(await campaigns.cancel(info.context, uuid_of(id), version))
