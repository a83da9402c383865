"""Delivered against contracted, per contract and billing period, and the department and institution contract
report (aggregates). Definitions are in resolvers/contract_report.py and docs."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry

from resolvers import contract_report as reports
from schema.common import Info, uuid_of
from schema.service_item import Money


@strawberry.type(description="One item of the version in force in a billing period: contracted, delivered, missed.")
class ContractItemDelivery:
    item: strawberry.Private[reports.ItemDelivery]

    @strawberry.field(description="The item's place in its version's list, from 1.")
    def position(self) -> int:
        return self.item.item.row.position

    @strawberry.field(description="The catalogue item.")
    def service_item_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.item.item.row.service_item_id))

    @strawberry.field(description="The catalogue code, as contracted: visits count when they carry it as a DONE "
                                  "procedure.")
    def code(self) -> str:
        return self.item.item.row.code

    @strawberry.field(description="The service's name, as contracted.")
    def name(self) -> str:
        return self.item.item.row.name

    @strawberry.field(description="Whether the contract's care partner delivers it.")
    def delivered_by_partner(self) -> bool:
        return self.item.item.row.delivered_by_partner

    @strawberry.field(description="Units contracted for the period (the item's quantity).")
    def contracted(self) -> int:
        return self.item.contracted

    @strawberry.field(description="Units delivered in the period: finished home-care or treatment visits that ended "
                                  "in it (the institution's local dates) carrying the code as a DONE procedure, one "
                                  "unit per visit; more than contracted when more was delivered.")
    def delivered(self) -> int:
        return self.item.delivered

    @strawberry.field(description="max(0, contracted - delivered).")
    def missed(self) -> int:
        return self.item.missed


@strawberry.type(description="A billing period of a contract (counted from the start of the term) under the version "
                             "in force on its first day.")
class ContractDeliveryPeriod:
    period: strawberry.Private[reports.PeriodDelivery]

    @strawberry.field(description="Its first day (the institution's local date).")
    def start(self) -> date:
        return self.period.start

    @strawberry.field(description="Its last day, inclusive (the term's end for the last period).")
    def end(self) -> date:
        return self.period.end

    @strawberry.field(description="The version in force on its first day, whose items it lists.")
    def version_number(self) -> int:
        return self.period.version.row.number

    @strawberry.field(description="Whether it ended before today; false for the period running today, whose missed "
                                  "units are still to be delivered.")
    def closed(self) -> bool:
        return self.period.closed

    @strawberry.field(description="Units contracted for the period, all items.")
    def contracted(self) -> int:
        return self.period.contracted

    @strawberry.field(description="Units delivered against the contract: each item counted up to its contracted "
                                  "quantity (contracted = delivered + missed).")
    def delivered(self) -> int:
        return self.period.delivered

    @strawberry.field(description="Units missed, all items.")
    def missed(self) -> int:
        return self.period.missed

    @strawberry.field(description="Every item of the version, in order.")
    def items(self) -> list[ContractItemDelivery]:
        return [ContractItemDelivery(item=i) for i in self.period.items]

    @strawberry.field(description="The items with units missed: the shortfall.")
    def shortfall(self) -> list[ContractItemDelivery]:
        return [ContractItemDelivery(item=i) for i in self.period.shortfall]


@strawberry.type(description="Delivered against contracted for one contract: per billing period, each item's units "
                             "contracted, delivered and missed, with the shortfall listed.")
class ContractDelivery:
    delivery: strawberry.Private[reports.ContractDelivery]

    @strawberry.field(description="The id of the contract reported on (Contract.id).")
    def contract_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.delivery.contract.row.id))

    @strawberry.field(description="The contract's number.")
    def number(self) -> str:
        return self.delivery.contract.row.number

    @strawberry.field(description="Today, the institution's local date: periods run up to it.")
    def today(self) -> date:
        return self.delivery.today

    @strawberry.field(description="The billing periods asked for, oldest first (none before the contract is signed).")
    def periods(self) -> list[ContractDeliveryPeriod]:
        return [ContractDeliveryPeriod(period=p) for p in self.delivery.periods]


@strawberry.type(description="One month of the contract report (the institution's local dates).")
class ContractReportMonth:
    figures: strawberry.Private[reports.MonthFigures]
    report: strawberry.Private[reports.ContractReport]

    @strawberry.field(description="The month, YYYY-MM.")
    def month(self) -> str:
        return self.figures.month.key

    @strawberry.field(description="Signed contracts in their term on the month's last day (suspended ones included).")
    def active(self) -> int:
        return self.figures.active

    @strawberry.field(description="Of the active ones, those whose term ends within 60 days after the month's last "
                                  "day.")
    def expiring(self) -> int:
        return self.figures.expiring

    @strawberry.field(description="First terms (not renewals) signed in the month.")
    def new(self) -> int:
        return self.figures.new

    @strawberry.field(description="Terms ending in the month that were renewed (RENEWED, or their next term signed).")
    def renewed(self) -> int:
        return self.figures.renewed

    @strawberry.field(description="TERMINATED terms whose term (moved by the termination) ends in the month.")
    def terminated(self) -> int:
        return self.figures.terminated

    @strawberry.field(description="EXPIRED terms ending in the month.")
    def expired(self) -> int:
        return self.figures.expired

    @strawberry.field(description="Revenue contracted for the month, one amount per currency (exact decimals): the "
                                  "period totals of the billing periods that begin in it (monthly billing every "
                                  "month, quarterly the first month of each quarter of the term, yearly the term's "
                                  "first month each year). Commercial terms: null with FORBIDDEN without the right "
                                  "to read them.")
    def revenue(self, info: Info) -> list[Money] | None:
        amounts = reports.revenue_of(info.context, self.report, self.figures)
        return [Money.of(minor, currency) for currency, minor in sorted(amounts.items())]

    @strawberry.field(description="Units contracted over the billing periods that ended in the month (before today).")
    def contracted_units(self) -> int:
        return self.figures.contracted_units

    @strawberry.field(description="Units delivered over those periods, each item counted up to its contracted "
                                  "quantity.")
    def delivered_units(self) -> int:
        return self.figures.delivered_units

    @strawberry.field(description="Units missed over those periods.")
    def missed_units(self) -> int:
        return self.figures.missed_units

    @strawberry.field(description="deliveredUnits / contractedUnits, a fraction (1: as contracted), not a percent; "
                                  "null when nothing was contracted.")
    def delivery_rate(self) -> float | None:
        return self.figures.delivery_rate


@strawberry.type(description="Contracts of a department (or the institution) month by month: active, expiring, new, "
                             "renewed, terminated, expired, revenue contracted and delivery rate. Aggregates only.")
class ContractReport:
    report: strawberry.Private[reports.ContractReport]

    @strawberry.field(description="The department reported on; null: the whole institution.")
    def department_id(self) -> strawberry.ID | None:
        department = self.report.department_id
        return None if department is None else strawberry.ID(str(department))

    @strawberry.field(description="The months asked for, oldest first.")
    def months(self) -> list[ContractReportMonth]:
        return [ContractReportMonth(figures=f, report=self.report) for f in self.report.months]


_FROM_DATE = Annotated[date | None, strawberry.argument(
    name="from", description="Periods ending on or after this date; null: from the start of the term.")]
_TO_DATE = Annotated[date | None, strawberry.argument(
    description="Periods beginning on or before this date; null (and at most): today, the institution's date.")]


@strawberry.type
class ContractReportQuery:
    @strawberry.field(description="Delivered against contracted for one contract, per billing period (admins, finance, "
                                  "department heads for their departments' contracts; a patient for their own "
                                  "contract in the portal). Out of reach: NOT_FOUND.")
    async def contract_delivery(
        self, info: Info,
        contract_id: Annotated[strawberry.ID, strawberry.argument(
            description="The contract's id (Contract.id); NOT_FOUND when it does not exist or is outside your "
                        "reach (the same answer).")],
        from_: _FROM_DATE = None,
        to: _TO_DATE = None,
    ) -> ContractDelivery:
        found = await reports.delivery(info.context, uuid_of(contract_id, "contractId"), from_, to)
        return ContractDelivery(delivery=found)

    @strawberry.field(description="Contracts month by month for a department or the institution (admins, finance; "
                                  "department heads for one of their departments). Revenue needs the right to read "
                                  "commercial terms.")
    async def contract_report(
        self, info: Info,
        from_: Annotated[str, strawberry.argument(name="from", description="The first month, YYYY-MM.")],
        to: Annotated[str, strawberry.argument(description="The last month, YYYY-MM; at most 36 months in all.")],
        department_id: Annotated[strawberry.ID | None, strawberry.argument(
            description="A department; null: the whole institution (admins and finance).")] = None,
    ) -> ContractReport:
        found = await reports.report(info.context, uuid_of(department_id, "departmentId"), from_, to)
        return ContractReport(report=found)
