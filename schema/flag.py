"""Alerts on the file (FHIR Flag) and the live check-in alert.

A flag's kind, status and period are read under the identity class of the patient's file; its detail
under the class of what it says (VIP and difficult payer: internal; special needs and fall risk: needs;
allergy and clinical alert: clinical). A field your role may not read on this patient resolves to null
with a FORBIDDEN error, as on the patient file.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any, cast

import strawberry

from resolvers import flag as flags
from resolvers.context import Context
from resolvers.flag import CheckInAlert as AlertView
from resolvers.flag import FlagView
from schema.common import (
    CURSOR,
    DEFAULT_PAGE_SIZE,
    EDGES,
    NODES,
    PAGE_INFO,
    TOTAL_COUNT,
    After,
    FieldSource,
    First,
    Info,
    PageInfo,
    Version,
    asks_total,
    provided,
    register_node,
    uuid_of,
)
from schema.patient import Patient, PatientSource
from schema.visit import Visit, visit_node


@strawberry.enum(description="What an alert on the file is about. Its detail is read under the class of what it says: "
                             "VIP and DIFFICULT_PAYER internal, SPECIAL_NEEDS and FALL_RISK needs, ALLERGY and "
                             "CLINICAL_ALERT clinical.")
class FlagKind(Enum):
    VIP = strawberry.enum_value("vip", description="A VIP to receive personally (detail: internal class).")
    SPECIAL_NEEDS = strawberry.enum_value("special_needs", description="Needs special attention: mobility, hearing, "
                                                                       "language... (detail: needs class).")
    FALL_RISK = strawberry.enum_value("fall_risk", description="At risk of falling (detail: needs class).")
    ALLERGY = strawberry.enum_value("allergy", description="An allergy to know before treatment (detail: clinical "
                                                           "class).")
    CLINICAL_ALERT = strawberry.enum_value(
        "clinical_alert", description="Another clinical warning (detail: clinical class).")
    DIFFICULT_PAYER = strawberry.enum_value(
        "difficult_payer", description="Payment problems in the past (detail: internal class).")


@strawberry.enum(description="Whether an alert stands (FHIR Flag.status). ENTERED_IN_ERROR is final.")
class FlagStatus(Enum):
    ACTIVE = strawberry.enum_value("active", description="Stands (in force within its period).")
    INACTIVE = strawberry.enum_value("inactive", description="Deactivated: no longer applies; may be made ACTIVE "
                                                             "again.")
    ENTERED_IN_ERROR = strawberry.enum_value("entered_in_error", description="Raised by mistake; final.")


_CONVERT: dict[str, Any] = {"kind": FlagKind, "status": FlagStatus}


class FlagSource(FieldSource):
    __slots__ = ()
    fields = flags.IDENTITY_FIELDS | {"detail"}

    def read(self, name: str) -> Any:
        value = flags.read_field(self.ctx, self.view, name)
        convert = _CONVERT.get(name)
        return value if convert is None or value is None else convert(value)


def flag_node(ctx: Context, view: FlagView) -> Flag:
    return cast(Flag, FlagSource(ctx, view))


@strawberry.type(description="An alert on a patient's file (FHIR Flag), shown wherever the patient is looked up and "
                             "when they check in. In force while ACTIVE and today (the institution's local date) lies "
                             "within startsOn..endsOn. Its kind, status and period are read as the file's identity, "
                             "its detail under the class of what it says (VIP and difficult payer internal, special "
                             "needs and fall risk needs, allergy and clinical alert clinical): a field you may not "
                             "read is null with a FORBIDDEN error at its path.")
class Flag:
    view: strawberry.Private[FlagView]

    @strawberry.field(description="The alert's id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="The patient whose file carries the alert.")
    def patient_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.patient.row.id))

    kind: FlagKind | None = strawberry.field(description="What the alert is about.")
    status: FlagStatus | None = strawberry.field(description="Whether it stands.")
    starts_on: date | None = strawberry.field(description="First day in force (local date).")
    ends_on: date | None = strawberry.field(description="Last day in force (local date); open-ended when null.")
    detail: str | None = strawberry.field(description="What the desk or the ward should know (\"large print, "
                                                      "accompanied\"). Encrypted; read under the class of the kind.")
    created_at: datetime | None = strawberry.field(description="When it was raised.")
    updated_at: datetime | None = strawberry.field(description="Last change.")

    @strawberry.field(description="Pass back as `version` when you change it.")
    def version(self) -> int:
        return int(self.view.row.version)


@strawberry.type(description="One alert of a page, with its cursor.")
class FlagEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: Flag = strawberry.field(description="The alert.")


@strawberry.type(description="A page of the alerts on a patient's file, oldest first.")
class FlagConnection:
    edges: list[FlagEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int | None = strawberry.field(default=None, description=TOTAL_COUNT)

    @strawberry.field(description=NODES)
    def nodes(self) -> list[Flag]:
        return [edge.node for edge in self.edges]


@strawberry.input(description="A new alert on a patient's file. The detail needs the right to write its class on "
                              "that file (an allergy's: clinical).")
class FlagCreateInput:
    patient_id: strawberry.ID = strawberry.field(description="The patient, in your reach.")
    kind: FlagKind = strawberry.field(description="What the alert is about.")
    detail: str | None = strawberry.field(default=None, description="At most 500 characters.")
    starts_on: date | None = strawberry.field(default=strawberry.UNSET,
                                              description="First day in force; today (local) when left out.")
    ends_on: date | None = strawberry.field(default=None, description="Last day in force; open-ended when null.")


@strawberry.input(description="Changes to an alert: fields left out stay as they are, null clears a field. Set status "
                              "INACTIVE to deactivate it, ENTERED_IN_ERROR when it was raised by mistake.")
class FlagUpdateInput:
    status: FlagStatus | None = strawberry.field(default=strawberry.UNSET,
                                                 description="The new status (ENTERED_IN_ERROR is final). Not null.")
    detail: str | None = strawberry.field(default=strawberry.UNSET,
                                          description="What to know, at most 500 characters; null clears it.")
    starts_on: date | None = strawberry.field(
        default=strawberry.UNSET, description="First day in force; null: in force since it was raised.")
    ends_on: date | None = strawberry.field(default=strawberry.UNSET,
                                            description="Last day in force; null: open-ended.")


@strawberry.type(description="A patient with an alert on the file (or in the VIP segment) has just checked in.")
class CheckInAlert:
    view: strawberry.Private[AlertView]

    @strawberry.field(description="The visit checked in.")
    def visit(self, info: Info) -> Visit:
        return visit_node(info.context, self.view.visit)

    @strawberry.field(description="The patient, as you may see the file.")
    def patient(self, info: Info) -> Patient:
        return cast(Patient, PatientSource(info.context, self.view.patient))

    @strawberry.field(description=f"The alerts in force on the file, oldest first, at most {flags.IN_FORCE_LIMIT} "
                                  "(every one: patientFlagsConnection); each detail only under its class.")
    def flags(self, info: Info) -> list[Flag]:
        return [flag_node(info.context, view) for view in self.view.flags]

    @strawberry.field(description="Whether the patient is in the VIP segment (internal class: without it, null "
                                  "with FORBIDDEN).")
    def vip_segment(self, info: Info) -> bool | None:
        return flags.read_vip_segment(info.context, self.view)


_FLAGS_PATIENT = Annotated[strawberry.ID, strawberry.argument(description="The patient, in your reach.")]
_IN_FORCE_ONLY = Annotated[bool, strawberry.argument(
    description="Only alerts in force today; false: every alert, inactive and past ones too.")]


@strawberry.type
class FlagQuery:
    @strawberry.field(description="The alerts on a patient's file in force today (the institution's local date), "
                                  "oldest first; inForceOnly: false lists every alert, inactive and past ones too "
                                  "(at most 500).",
                      deprecation_reason="Stops at 500 alerts: page through patientFlagsConnection.")
    async def patient_flags(self, info: Info, patient_id: _FLAGS_PATIENT,
                            in_force_only: _IN_FORCE_ONLY = True) -> list[Flag]:
        views = await flags.of_patient(info.context, uuid_of(patient_id, "patientId"), in_force_only=in_force_only)
        return [flag_node(info.context, view) for view in views]

    @strawberry.field(description="The alerts on a patient's file in force today (the institution's local date), "
                                  "oldest first, a page at a time; inForceOnly: false lists every alert, inactive "
                                  "and past ones too.")
    async def patient_flags_connection(self, info: Info, patient_id: _FLAGS_PATIENT,
                                       in_force_only: _IN_FORCE_ONLY = True, first: First = DEFAULT_PAGE_SIZE,
                                       after: After = None) -> FlagConnection | None:
        page = await flags.page_of_patient(info.context, uuid_of(patient_id, "patientId"),
                                           in_force_only=in_force_only, first=first, after=after,
                                           count=asks_total(info))
        return FlagConnection(edges=[FlagEdge(cursor=cursor, node=flag_node(info.context, view))
                                     for cursor, view in page.items], page_info=PageInfo.of(page),
                              total_count=page.total)


@strawberry.type
class FlagMutation:
    @strawberry.mutation(description="Raise an alert on a patient's file.")
    async def flag_create(self, info: Info, input: Annotated[FlagCreateInput, strawberry.argument(
            description="The alert.")]) -> Flag | None:
        return flag_node(info.context, await flags.create(info.context, provided(input)))

    @strawberry.mutation(description="Change an alert: its detail, its period, or its status (INACTIVE "
                                     "deactivates). Pass the version you read: a stale one answers CONFLICT.")
    async def flag_update(
        self, info: Info,
        id: Annotated[strawberry.ID, strawberry.argument(description="The alert's id.")],
        input: Annotated[FlagUpdateInput, strawberry.argument(description="The changes.")],
        version: Version = None,
    ) -> Flag | None:
        return flag_node(info.context, await flags.update(info.context, uuid_of(id), provided(input), version))


@strawberry.type
class FlagSubscription:
    @strawberry.subscription(description="Check-in alerts: each time a patient in your reach with a VIP, "
                                         "special-needs, fall-risk, allergy or clinical alert in force (or in the VIP "
                                         "segment) checks in (a visit becomes ARRIVED), from the moment you subscribe; "
                                         "departmentId "
                                         "narrows it to visits of that department. Over graphql-transport-ws; sign in "
                                         "with the connection_init payload {authorization: \"Bearer cl_...\"}. Needs "
                                         "visit and flag read rights, checked again before each event.")
    async def check_in_alerts(
        self, info: Info,
        department_id: Annotated[strawberry.ID | None, strawberry.argument(
            description="Only check-ins for visits of this department; null: every visit you reach.")] = None,
    ) -> AsyncGenerator[CheckInAlert, None]:
        ctx = info.context
        async for alert in flags.watch_check_ins(ctx, uuid_of(department_id, "departmentId")):
            yield CheckInAlert(view=alert)


register_node("flag", flag_node)
