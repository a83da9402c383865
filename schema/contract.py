"""Service contracts (FHIR Contract): the agreement with a client, its versions (the original and each amendment),
their items from the catalogue, and the lifecycle the server enforces.

Commercial terms (prices, totals, the deposit) need the right to read them (admins, finance, the patient on
their own contract): anyone else reads them as null with a FORBIDDEN error at that field. Special clauses are
encrypted and need their own read right. A contract outside your reach answers NOT_FOUND, as a missing one does.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry

from resolvers import contract as contracts
from resolvers import contract_signature as contract_signatures
from resolvers.context import Context
from resolvers.contract import ContractView, ItemView, VersionView
from resolvers.pagination import Page
from schema.common import (
    CURSOR,
    DEFAULT_PAGE_SIZE,
    EDGES,
    NODES,
    PAGE_INFO,
    TOTAL_COUNT,
    After,
    First,
    Info,
    OrderDirection,
    PageInfo,
    asks_total,
    node_of,
    optional_id,
    provided,
    uuid_of,
)
from schema.patient import Patient, PatientSource
from schema.service_item import Money, MoneyInput, ServiceFrequency

if TYPE_CHECKING:
    # A version's signatures are a type of a module that imports this one: Strawberry finds it by strawberry.lazy,
    # and nothing here imports it (see schema.common.node_of).
    from typing import TypeAlias

    ContractSignature: TypeAlias = Any




@strawberry.enum(description="Where a contract stands (FHIR Contract.status in brackets). DRAFT -> SENT (for "
                             "signature) -> ACTIVE -> SUSPENDED <-> ACTIVE -> TERMINATED; ACTIVE or SUSPENDED -> "
                             "EXPIRED at the end of the term, or RENEWED when the next term has been signed; "
                             "ACTIVE or SUSPENDED -> REVOKED when terminated before the term started; DRAFT or "
                             "SENT -> REVOKED when terminated before any version was signed. Recording the "
                             "client's death terminates (or revokes) every contract not ended, the same way.")
class ContractStatus(Enum):
    DRAFT = strawberry.enum_value("draft", description="Being prepared (FHIR R4 has no draft code: negotiable is "
                                                       "the nearest).")
    SENT = strawberry.enum_value("sent", description="Sent for signature, collecting the parties' signatures "
                                                     "(FHIR offered).")
    ACTIVE = strawberry.enum_value("active", description="Signed by every party: in force (FHIR executed).")
    SUSPENDED = strawberry.enum_value("suspended", description="Services paused for a while (FHIR R4 has no "
                                                               "suspended code: disputed is the nearest).")
    TERMINATED = strawberry.enum_value("terminated", description="Ended before its term by a party, or by the "
                                                                 "client's death (statusReason client_deceased) "
                                                                 "(FHIR terminated).")
    EXPIRED = strawberry.enum_value("expired", description="Its term ran out without a renewal (FHIR has no code "
                                                           "of its own: terminated at the term's end).")
    RENEWED = strawberry.enum_value("renewed", description="Its term ended and the next term (a new contract "
                                                           "naming this one in renewalOfId) took over (FHIR renewed).")
    REVOKED = strawberry.enum_value("revoked", description="Terminated before its term started, or before any "
                                                           "version was signed (a DRAFT or SENT contract): never in "
                                                           "force, its term (startOn to endOn) as it was agreed or "
                                                           "drafted, nobody's next term, counted in no month of the "
                                                           "report (FHIR revoked).")


@strawberry.enum(description="Where a version of a contract stands. A version is edited only as a DRAFT; from SENT "
                             "on it is frozen (the database refuses changes too).")
class ContractVersionStatus(Enum):
    DRAFT = strawberry.enum_value("draft", description="Being prepared; its terms and items may change.")
    SENT = strawberry.enum_value("sent", description="Sent for signature: frozen, collecting signatures.")
    SIGNED = strawberry.enum_value("signed", description="Every party signed: agreed, in force from effectiveOn.")
    WITHDRAWN = strawberry.enum_value("withdrawn", description="Given up before every party signed.")


@strawberry.enum(description="How often the contract is billed; an item's quantity is per billing period.")
class BillingPeriod(Enum):
    MONTHLY = strawberry.enum_value("monthly", description="Every calendar month.")
    QUARTERLY = strawberry.enum_value("quarterly", description="Every quarter.")
    YEARLY = strawberry.enum_value("yearly", description="Every year.")


# -- output types ---------------------------------------------------------------------------------


@strawberry.type(description="A service of the catalogue as contracted in one version: quantity per billing "
                             "period, how it is scheduled, and its price as agreed (kept whatever the catalogue "
                             "says later).")
class ContractItem:
    view: strawberry.Private[ItemView]

    @strawberry.field(description="The item's id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="Its place in the version's list, from 1.")
    def position(self) -> int:
        return self.view.row.position

    @strawberry.field(description="The catalogue item.")
    def service_item_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.service_item_id))

    @strawberry.field(description="The catalogue code, as contracted.")
    def code(self) -> str:
        return self.view.row.code

    @strawberry.field(description="The service's name, as contracted.")
    def name(self) -> str:
        return self.view.row.name

    @strawberry.field(description="Units per billing period.")
    def quantity(self) -> int:
        return self.view.row.quantity

    @strawberry.field(description="How the units are scheduled.")
    def frequency(self) -> ServiceFrequency:
        return ServiceFrequency(self.view.row.frequency)

    @strawberry.field(description="Whether the contract's care partner delivers it.")
    def delivered_by_partner(self) -> bool:
        return self.view.row.delivered_by_partner

    @strawberry.field(description="The price of one unit as contracted (commercial terms: FORBIDDEN without the "
                                  "right to read them).")
    def unit_price(self, info: Info) -> Money | None:
        contracts.require_terms(info.context, self.view.version.contract)
        return Money.of(self.view.row.unit_price, self.view.version.contract.row.currency)

    @strawberry.field(description="quantity x unitPrice: the item's amount per billing period (commercial terms: "
                                  "without the right to read them, null with FORBIDDEN; otherwise never null).")
    def period_total(self, info: Info) -> Money | None:
        contracts.require_terms(info.context, self.view.version.contract)
        return Money.of(self.view.row.period_total, self.view.version.contract.row.currency)

    @strawberry.field(description="The catalogue's price version the item is priced at (commercial terms: "
                                  "without the right to read them, null with FORBIDDEN; otherwise never null).")
    def price_id(self, info: Info) -> strawberry.ID | None:
        contracts.require_terms(info.context, self.view.version.contract)
        return strawberry.ID(str(self.view.row.price_id))


@strawberry.type(description="The terms of a contract at one version: version 1 is the original, each amendment "
                             "a new version stating what changed and when it takes effect.")
class ContractVersion:
    view: strawberry.Private[VersionView]

    @strawberry.field(description="The version's id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="1 for the original, 2 and on for amendments.")
    def number(self) -> int:
        return self.view.row.number

    @strawberry.field(description="Where the version stands.")
    def status(self) -> ContractVersionStatus:
        return ContractVersionStatus(self.view.row.status)

    @strawberry.field(description="When these terms take effect (version 1: the start of the term).")
    def effective_on(self) -> date:
        return self.view.row.effective_on

    @strawberry.field(description="The end of the term under these terms.")
    def end_on(self) -> date:
        return self.view.row.end_on

    @strawberry.field(description="How often the contract is billed.")
    def billing_period(self) -> BillingPeriod:
        return BillingPeriod(self.view.row.billing_period)

    @strawberry.field(description="The deposit (commercial terms: FORBIDDEN without the right to read them).")
    def deposit(self, info: Info) -> Money | None:
        contracts.require_terms(info.context, self.view.contract)
        return Money.of(self.view.row.deposit, self.view.contract.row.currency)

    @strawberry.field(description="The sum of the items' amounts per billing period (commercial terms: without "
                                  "the right to read them, null with FORBIDDEN; otherwise never null).")
    def period_total(self, info: Info) -> Money | None:
        contracts.require_terms(info.context, self.view.contract)
        return Money.of(self.view.row.period_total, self.view.contract.row.currency)

    @strawberry.field(description="The notice period, in days.")
    def notice_days(self) -> int:
        return self.view.row.notice_days

    @strawberry.field(description="Whether the term renews itself at its end, at the same prices.")
    def auto_renew(self) -> bool:
        return self.view.row.auto_renew

    @strawberry.field(description="Both parties' rights and duties.")
    def rights_duties(self) -> str:
        return self.view.row.rights_duties

    @strawberry.field(description="Special clauses. Encrypted; needs the right to read contract clauses (without "
                                  "it, null with FORBIDDEN). Null: none.")
    async def clauses(self, info: Info) -> str | None:
        return await contracts.read_clauses(info.context, self.view)

    @strawberry.field(description="An amendment: what changed and why. Not for a partner (FORBIDDEN): it speaks of "
                                  "the whole contract.")
    def change_summary(self, info: Info) -> str | None:
        return contracts.read_change_summary(info.context, self.view)

    @strawberry.field(description="SHA-256 of the document sent for signature (hex), once sent; null before.")
    def document_sha256(self) -> str | None:
        return self.view.row.document_sha256

    @strawberry.field(description="When it was sent for signature; null before.")
    def sent_at(self) -> datetime | None:
        return self.view.row.sent_at

    @strawberry.field(description="When the last party signed; null until then.")
    def signed_at(self) -> datetime | None:
        return self.view.row.signed_at

    @strawberry.field(description="When the version was created.")
    def created_at(self) -> datetime:
        return self.view.row.created_at

    @strawberry.field(description="The items, in order, at most 50 (a version holds 1 to 50); a partner sees only "
                                  "those it delivers.")
    async def items(self, info: Info) -> list[ContractItem]:
        return [ContractItem(view=item) for item in await contracts.items_of(info.context, self.view)]

    @strawberry.field(description="The parties' signatures of this version, in the order given: at most "
                                  "4, one per ContractParty value; empty for a draft, and for a care partner (they "
                                  "name the client's family and the witnesses).")
    async def signatures(self, info: Info) -> list[Annotated["ContractSignature",
                                                              strawberry.lazy("schema.contract_signature")]]:
        return [node_of("contract_signature", info.context, signature)
                for signature in await contract_signatures.signatures_of(info.context, self.view)]


@strawberry.type(description="A service contract with a client (FHIR Contract): the parties, the term, and its "
                             "versions.")
class Contract:
    view: strawberry.Private[ContractView]

    @strawberry.field(description="The contract's id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="The human reference, unique in the institution (C-<year>-<sequence>).")
    def number(self) -> str:
        return self.view.row.number

    @strawberry.field(description="The contract's title.")
    def title(self) -> str:
        return self.view.row.title

    @strawberry.field(description="Where the contract stands.")
    def status(self) -> ContractStatus:
        return ContractStatus(self.view.row.status)

    @strawberry.field(description="The client's file id.")
    def patient_id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.patient_id))

    @strawberry.field(description="The client, as you may see the file (null when you read no patient files).")
    async def patient(self, info: Info) -> Patient | None:
        found = await contracts.patient_of(info.context, self.view)
        return None if found is None else cast(Patient, PatientSource(info.context, found))

    @strawberry.field(description="The department the contract belongs to; null: none.")
    def department_id(self) -> strawberry.ID | None:
        return optional_id(self.view.row.department_id)

    @strawberry.field(description="The guarantor or payer: one of the client's contacts (Contact.id); null: "
                                  "none.")
    def guarantor_contact_id(self) -> strawberry.ID | None:
        return optional_id(self.view.row.guarantor_id)

    @strawberry.field(description="The care partner delivering part of the service (Partner.id); null: none.")
    def partner_id(self) -> strawberry.ID | None:
        return optional_id(self.view.row.partner_id)

    @strawberry.field(description="The contract whose next term this one is; null for a first term.")
    def renewal_of_id(self) -> strawberry.ID | None:
        return optional_id(self.view.row.renewal_of_id)

    @strawberry.field(description="The currency of every amount (ISO 4217).")
    def currency(self) -> str:
        return self.view.row.currency

    @strawberry.field(description="The first day of the term (the institution's local date).")
    def start_on(self) -> date:
        return self.view.row.start_on

    @strawberry.field(description="The last day of the term (an amendment or a termination may move it).")
    def end_on(self) -> date:
        return self.view.row.end_on

    @strawberry.field(description="The newest version (in force, or being prepared).")
    def current_version(self) -> int:
        return self.view.row.current_version

    @strawberry.field(description="When it became active; null before (a draft, an offer).")
    def activated_at(self) -> datetime | None:
        return self.view.row.activated_at

    @strawberry.field(description="When it was suspended; null while it is not (a resume clears it).")
    def suspended_at(self) -> datetime | None:
        return self.view.row.suspended_at

    @strawberry.field(description="When it was terminated, revoked or expired; null while it has not ended.")
    def ended_at(self) -> datetime | None:
        return self.view.row.ended_at

    @strawberry.field(description="Why it was last suspended, resumed, terminated or revoked (each move replaces "
                                  "it). Not for a partner (FORBIDDEN): it is the institution's business with the "
                                  "client.")
    def status_reason(self, info: Info) -> str | None:
        return contracts.read_status_reason(info.context, self.view)

    @strawberry.field(description="When it was created.")
    def created_at(self) -> datetime:
        return self.view.row.created_at

    @strawberry.field(description="Last change.")
    def updated_at(self) -> datetime:
        return self.view.row.updated_at

    @strawberry.field(description="Pass back as expectedVersion when you change the contract: a stale one is "
                                  "refused with CONFLICT.")
    def version(self) -> int:
        return self.view.row.version

    @strawberry.field(description=f"The versions, oldest first, at most {contracts.VERSIONS_LIMIT}: page through all "
                                  "of them with contractVersions (its totalCount says how many).")
    async def versions(self, info: Info) -> list[ContractVersion]:
        return [ContractVersion(view=v) for v in await contracts.versions_of(info.context, self.view)]

    @strawberry.field(description="The signed version in force today (null before the first signature).")
    async def in_force(self, info: Info) -> ContractVersion | None:
        found = await contracts.in_force(info.context, self.view)
        return None if found is None else ContractVersion(view=found)

    @strawberry.field(description="The version being prepared or collecting signatures, if any.")
    async def open_version(self, info: Info) -> ContractVersion | None:
        found = await contracts.open_version(info.context, self.view)
        return None if found is None else ContractVersion(view=found)


@strawberry.type(description="One version of a page, with its cursor.")
class ContractVersionEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: ContractVersion = strawberry.field(description="The version.")


@strawberry.type(description="A page of a contract's versions, oldest first.")
class ContractVersionConnection:
    edges: list[ContractVersionEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int | None = strawberry.field(default=None, description=TOTAL_COUNT)

    @strawberry.field(description=NODES)
    def nodes(self) -> list[ContractVersion]:
        return [edge.node for edge in self.edges]


def contract_node(ctx: Context, view: ContractView) -> Contract:
    return Contract(view=view)


@strawberry.type(description="A contract in a page, with its cursor.")
class ContractEdge:
    cursor: str = strawberry.field(description=CURSOR)
    node: Contract = strawberry.field(description="The contract.")


@strawberry.type(description="A page of contracts, newest first.")
class ContractConnection:
    edges: list[ContractEdge] = strawberry.field(description=EDGES)
    page_info: PageInfo = strawberry.field(description=PAGE_INFO)
    total_count: int = strawberry.field(description="The number of items that match the filter in your reach, "
                                                    "counted when asked for.")

    @strawberry.field(description=NODES)
    def nodes(self) -> list[Contract]:
        return [edge.node for edge in self.edges]


def connection(page: Page[ContractView], total: int | None = None) -> ContractConnection:
    return ContractConnection(edges=[ContractEdge(cursor=cursor, node=Contract(view=view))
                                     for cursor, view in page.items],
                              page_info=PageInfo.of(page), total_count=total or 0)


@strawberry.enum(description="What the contract list can be sorted by (without an order: newest first).")
class ContractOrderField(Enum):
    END_ON = strawberry.enum_value("end_on", description="By the last day of the term (renewals and expiries).")
    START_ON = strawberry.enum_value("start_on", description="By the first day of the term.")
    UPDATED_AT = strawberry.enum_value("updated_at", description="By last change.")


@strawberry.input(description="The order of the contract list; ties are broken by id. A cursor works only with the "
                              "order it came from.")
class ContractOrder:
    field: ContractOrderField = strawberry.field(description="What to sort by.")
    direction: OrderDirection = strawberry.field(default=OrderDirection.ASC, description="Ascending or descending.")


# -- inputs ----------------------------------------------------------------------------------------


@strawberry.input(description="A service of the catalogue to contract.")
class ContractItemInput:
    service_item_id: strawberry.ID = strawberry.field(description="The catalogue item (active).")
    quantity: int = strawberry.field(description="Units per billing period, more than 0.")
    frequency: ServiceFrequency = strawberry.field(description="How they are scheduled: one of the item's options.")
    delivered_by_partner: bool = strawberry.field(default=False, description="Delivered by the contract's care "
                                                                             "partner (needs a partnerId).")


@strawberry.input(description="A new draft contract (version 1). Items are priced from the catalogue: each item's "
                               "price in force on the start date, in the contract's currency.")
class ContractCreateInput:
    patient_id: strawberry.ID = strawberry.field(description="The client.")
    title: str = strawberry.field(description="A title, at most 200 characters.")
    currency: str = strawberry.field(description="The currency of every amount (ISO 4217, e.g. CNY).")
    start_on: date = strawberry.field(description="The first day of the term.")
    end_on: date = strawberry.field(description="The last day of the term: after the start, at most ten years on.")
    rights_duties: str = strawberry.field(description="Both parties' rights and duties (at most 20000 characters).")
    items: list[ContractItemInput] = strawberry.field(description="1 to 50 items.")
    department_id: strawberry.ID | None = strawberry.field(default=None, description="The department; the client's "
                                                                                      "by default.")
    guarantor_contact_id: strawberry.ID | None = strawberry.field(
        default=None, description="A guarantor or payer: one of this client's contacts.")
    partner_id: strawberry.ID | None = strawberry.field(default=None, description="A care partner of the "
                                                                                   "institution delivering part of "
                                                                                   "the service.")
    billing_period: BillingPeriod = strawberry.field(default=BillingPeriod.MONTHLY, description="How often it is "
                                                                                                "billed.")
    deposit: MoneyInput | None = strawberry.field(
        default=None, description="A deposit (none by default). Any deposit other than zero needs the right to "
                                  "change commercial terms (admins, finance).")
    notice_days: int = strawberry.field(default=30, description="Notice period in days, 0 to 365.")
    auto_renew: bool = strawberry.field(default=False, description="Renew the term automatically at its end at "
                                                                   "the same prices.")
    clauses: str | None = strawberry.field(default=None, description="Special clauses (encrypted), at most 20000 "
                                                                     "characters.")


_UNCHANGED = "Left out: unchanged."


@strawberry.input(description="Changes to the open draft version (version 1 of a draft contract, or a draft "
                               "amendment). What is given replaces what was there; what is left out stays. Items are "
                               "priced again: version 1 from the catalogue on the start date, an amendment keeping "
                               "the signed prices of services already contracted (unless reprice; a draft repriced "
                               "keeps its own prices of them).")
class ContractDraftInput:
    title: str | None = strawberry.field(default=strawberry.UNSET, description=f"Version 1 only. {_UNCHANGED}")
    department_id: strawberry.ID | None = strawberry.field(default=strawberry.UNSET,
                                                           description=f"Version 1 only. {_UNCHANGED}")
    guarantor_contact_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description=f"Version 1 only; null removes the guarantor. {_UNCHANGED}")
    partner_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description=f"Version 1 only; null removes the partner. {_UNCHANGED}")
    start_on: date | None = strawberry.field(default=strawberry.UNSET, description=f"Version 1 only. {_UNCHANGED}")
    effective_on: date | None = strawberry.field(
        default=strawberry.UNSET, description=f"An amendment only: when it takes effect. {_UNCHANGED}")
    end_on: date | None = strawberry.field(default=strawberry.UNSET, description=f"The term's end. {_UNCHANGED}")
    billing_period: BillingPeriod | None = strawberry.field(default=strawberry.UNSET, description=_UNCHANGED)
    deposit: MoneyInput | None = strawberry.field(
        default=strawberry.UNSET, description=f"Changing it needs the right to change commercial terms. {_UNCHANGED}")
    notice_days: int | None = strawberry.field(default=strawberry.UNSET, description=f"0 to 365. {_UNCHANGED}")
    auto_renew: bool | None = strawberry.field(default=strawberry.UNSET, description=_UNCHANGED)
    rights_duties: str | None = strawberry.field(default=strawberry.UNSET, description=_UNCHANGED)
    clauses: str | None = strawberry.field(default=strawberry.UNSET,
                                           description=f"Special clauses; null removes them. {_UNCHANGED}")
    change_summary: str | None = strawberry.field(default=strawberry.UNSET,
                                                  description=f"An amendment only: what changed. {_UNCHANGED}")
    items: list[ContractItemInput] | None = strawberry.field(default=strawberry.UNSET,
                                                             description=f"The whole list, 1 to 50. {_UNCHANGED}")
    reprice: bool | None = strawberry.field(
        default=strawberry.UNSET, description="An amendment only: price every item at the catalogue's price on the "
                                              "effective date (needs the right to change commercial terms).")


@strawberry.input(description="An amendment: a new version copying the newest signed one with these changes. It "
                               "needs every party's signature and takes effect on effectiveOn.")
class ContractAmendInput:
    effective_on: date = strawberry.field(description="When it takes effect: within the term, not before today.")
    change_summary: str = strawberry.field(description="What changed and why (1 to 2000 characters, no health "
                                                       "data).")
    end_on: date | None = strawberry.field(default=strawberry.UNSET, description=f"A new end of the term. "
                                                                                 f"{_UNCHANGED}")
    billing_period: BillingPeriod | None = strawberry.field(default=strawberry.UNSET, description=_UNCHANGED)
    deposit: MoneyInput | None = strawberry.field(
        default=strawberry.UNSET, description=f"Changing it needs the right to change commercial terms. {_UNCHANGED}")
    notice_days: int | None = strawberry.field(default=strawberry.UNSET, description=f"0 to 365. {_UNCHANGED}")
    auto_renew: bool | None = strawberry.field(default=strawberry.UNSET, description=_UNCHANGED)
    rights_duties: str | None = strawberry.field(default=strawberry.UNSET, description=_UNCHANGED)
    clauses: str | None = strawberry.field(default=strawberry.UNSET,
                                           description=f"Special clauses; null removes them. {_UNCHANGED}")
    items: list[ContractItemInput] | None = strawberry.field(
        default=strawberry.UNSET, description=f"The whole new list, 1 to 50: services already contracted keep their "
                                              f"signed price, new ones are priced on effectiveOn. {_UNCHANGED}")
    reprice: bool = strawberry.field(default=False, description="Price every item at the catalogue's price on "
                                                                "effectiveOn (needs the right to change commercial "
                                                                "terms).")


@strawberry.input(description="The next term: a new draft contract from the day after this one ends, same parties, "
                               "the newest signed terms unless changed here, the items at the catalogue's prices on "
                               "the new start date.")
class ContractRenewInput:
    end_on: date = strawberry.field(description="The last day of the next term.")
    title: str | None = strawberry.field(default=strawberry.UNSET, description=_UNCHANGED)
    billing_period: BillingPeriod | None = strawberry.field(default=strawberry.UNSET, description=_UNCHANGED)
    deposit: MoneyInput | None = strawberry.field(
        default=strawberry.UNSET, description=f"Changing it needs the right to change commercial terms. {_UNCHANGED}")
    notice_days: int | None = strawberry.field(default=strawberry.UNSET, description=f"0 to 365. {_UNCHANGED}")
    auto_renew: bool | None = strawberry.field(default=strawberry.UNSET, description=_UNCHANGED)
    rights_duties: str | None = strawberry.field(default=strawberry.UNSET, description=_UNCHANGED)
    clauses: str | None = strawberry.field(default=strawberry.UNSET,
                                           description=f"Special clauses; null removes them. {_UNCHANGED}")
    items: list[ContractItemInput] | None = strawberry.field(default=strawberry.UNSET,
                                                             description=f"The whole list, 1 to 50. {_UNCHANGED}")


def _items(items: list[ContractItemInput] | None, path: str) -> list[dict[str, Any]] | None:
    if items is None:
        return None
    return [{"service_item_id": uuid_of(item.service_item_id, f"{path}[{i}].serviceItemId"),
             "quantity": item.quantity, "frequency": item.frequency.value,
             "delivered_by_partner": item.delivered_by_partner} for i, item in enumerate(items)]


def _money(value: MoneyInput | None) -> dict[str, str] | None:
    return None if value is None else {"amount": value.amount, "currency": value.currency}


def _input(data: Any, path: str = "input") -> dict[str, Any]:
    """A contract input as the resolver takes it: ids parsed (paths like input.partnerId), enums plain, items and
    money as dicts."""
    out = provided(data)
    if "items" in out:
        out["items"] = _items(data.items, f"{path}.items")
    if "deposit" in out:
        out["deposit"] = _money(data.deposit)
    return out


@strawberry.type(description="One term that differs between two versions, before and after as text (dates ISO "
                             "8601, money as exact decimals, booleans true/false).")
class ContractTermChange:
    field: str = strawberry.field(description="The ContractVersion field (endOn, deposit, clauses...).")
    before: str | None = strawberry.field(description="Its value in the earlier version; null: not set there.")
    after: str | None = strawberry.field(description="Its value in the later version; null: not set there.")


@strawberry.type(description="An item contracted in both versions whose terms differ.")
class ContractItemChange:
    before: ContractItem = strawberry.field(description="The item in the earlier version.")
    after: ContractItem = strawberry.field(description="The item in the later version.")
    fields: list[str] = strawberry.field(description="What differs: quantity, frequency, deliveredByPartner, "
                                                     "unitPrice (only when you read commercial terms).")


@strawberry.type(description="What changed from one version of a contract to another. Money appears only when you "
                             "read commercial terms, clauses only when you read clauses.")
class ContractVersionDiff:
    view: strawberry.Private[contracts.VersionDiff]

    @strawberry.field(description="The contract whose two versions are compared.")
    def contract(self) -> Contract:
        return Contract(view=self.view.contract)

    @strawberry.field(description="The earlier version compared.")
    def from_version(self) -> ContractVersion:
        return ContractVersion(view=self.view.before)

    @strawberry.field(description="The later version compared.")
    def to_version(self) -> ContractVersion:
        return ContractVersion(view=self.view.after)

    @strawberry.field(description="The terms that differ.")
    def terms(self) -> list[ContractTermChange]:
        return [ContractTermChange(field=t.field, before=t.before, after=t.after) for t in self.view.terms]

    @strawberry.field(description="Items only in the later version, at most 50 (a version's own bound).")
    def items_added(self) -> list[ContractItem]:
        return [ContractItem(view=item) for item in self.view.added]

    @strawberry.field(description="Items only in the earlier version, at most 50 (a version's own bound).")
    def items_removed(self) -> list[ContractItem]:
        return [ContractItem(view=item) for item in self.view.removed]

    @strawberry.field(description="Items in both whose terms differ.")
    def items_changed(self) -> list[ContractItemChange]:
        return [ContractItemChange(before=ContractItem(view=c.before), after=ContractItem(view=c.after),
                                   fields=list(c.fields)) for c in self.view.changed]


# -- root fields -----------------------------------------------------------------------------------

_CONTRACT_ID = Annotated[strawberry.ID, strawberry.argument(
    description="The contract's id (Contract.id); NOT_FOUND when it does not exist or is outside your reach (the "
                "same answer).")]
_EXPECTED = Annotated[int, strawberry.argument(description="The contract's version you read (Contract.version): a "
                                                           "stale one answers CONFLICT (reason stale_version).")]
_REASON = Annotated[str, strawberry.argument(description="Why, in at most 200 characters (no health data).")]


@strawberry.input(description="Which contracts to list; every condition given must hold.")
class ContractFilter:
    patient_id: strawberry.ID | None = strawberry.field(default=None, description="One client's contracts.")
    status: ContractStatus | None = strawberry.field(default=None, description="Contracts in this state.")
    department_id: strawberry.ID | None = strawberry.field(default=None, description="One department's.")
    ending_before: date | None = strawberry.field(default=None, description="Those whose term ends before this "
                                                                            "date.")


@strawberry.type
class ContractQuery:
    @strawberry.field(description="One contract. NOT_FOUND when it is missing or outside your reach.")
    async def contract(self, info: Info, id: _CONTRACT_ID) -> Contract | None:
        return Contract(view=await contracts.get(info.context, uuid_of(id)))

    @strawberry.field(description="Contracts in your reach, newest first (a patient: their own; a partner: those it "
                                  "delivers part of).")
    async def contracts(self, info: Info, filter: Annotated[ContractFilter | None, strawberry.argument(
            description="Conditions on the contracts listed.")] = None,
            first: First = DEFAULT_PAGE_SIZE, after: After = None,
            order_by: Annotated[ContractOrder | None, strawberry.argument(
                description="The order; null: newest first.")] = None) -> ContractConnection:
        given = filter or ContractFilter()
        order = None if order_by is None else contracts.ContractOrder(str(order_by.field.value),
                                                                      str(order_by.direction.value))
        found = await contracts.page(
            info.context, patient_id=uuid_of(given.patient_id, "filter.patientId"),
            status=None if given.status is None else str(given.status.value),
            department_id=uuid_of(given.department_id, "filter.departmentId"), ending_before=given.ending_before,
            first=first, after=after, order=order, count=asks_total(info))
        return connection(found.page, found.total)

    @strawberry.field(description="A contract's versions, oldest first, a page at a time. Contract.versions lists "
                                  "the first ones.")
    async def contract_versions(self, info: Info, contract_id: _CONTRACT_ID, first: First = DEFAULT_PAGE_SIZE,
                                after: After = None) -> ContractVersionConnection | None:
        page = await contracts.versions_page(info.context, uuid_of(contract_id, "contractId"), first=first,
                                             after=after, count=asks_total(info))
        return ContractVersionConnection(
            edges=[ContractVersionEdge(cursor=cursor, node=ContractVersion(view=view)) for cursor, view in page.items],
            page_info=PageInfo.of(page), total_count=page.total)

    @strawberry.field(description="What changed from one version of a contract to another.")
    async def contract_version_diff(
        self, info: Info, contract_id: _CONTRACT_ID,
        from_version: Annotated[int, strawberry.argument(description="The earlier version's number.")],
        to_version: Annotated[int, strawberry.argument(description="The later version's number.")],
    ) -> ContractVersionDiff | None:
        found = await contracts.diff(info.context, uuid_of(contract_id, "contractId"), from_version, to_version)
        return ContractVersionDiff(view=found)


@strawberry.type
class ContractMutation:
    @strawberry.mutation(description="Draft a contract (version 1, DRAFT) with its items priced from the catalogue. "
                                     "Invalid input is one BAD_USER_INPUT listing every invalid field "
                                     "(extensions.invalid: field path, reason code, message).")
    async def contract_create(self, info: Info, input: Annotated[ContractCreateInput, strawberry.argument(
            description="The new contract.")]) -> Contract | None:
        return Contract(view=await contracts.create(info.context, _input(input)))

    @strawberry.mutation(description="Edit the open draft version (terms and items). CONFLICT (reason "
                                     "version_not_draft) once it was sent for signature: amend instead. The "
                                     "client's file must be active (archived or deceased: BAD_USER_INPUT at "
                                     "contractId; such a draft is never sent nor signed).")
    async def contract_draft_update(self, info: Info, contract_id: _CONTRACT_ID, input: Annotated[
            ContractDraftInput, strawberry.argument(description="The changes.")],
                                    expected_version: _EXPECTED) -> Contract | None:
        view = await contracts.update_draft(info.context, uuid_of(contract_id, "contractId"), _input(input),
                                            expected_version)
        return Contract(view=view)

    @strawberry.mutation(description="Amend an ACTIVE or SUSPENDED contract: a new draft version (N+1) copying the "
                                     "newest signed one with the changes. Signed versions are never edited. CONFLICT "
                                     "when another version is open (open_version_exists) or the contract is in "
                                     "another state (illegal_transition). The client's file must be active "
                                     "(archived or deceased: BAD_USER_INPUT at contractId).")
    async def contract_amend(self, info: Info, contract_id: _CONTRACT_ID, input: Annotated[
            ContractAmendInput, strawberry.argument(description="The amendment.")],
                             expected_version: _EXPECTED) -> Contract | None:
        view = await contracts.amend(info.context, uuid_of(contract_id, "contractId"), _input(input),
                                     expected_version)
        return Contract(view=view)

    @strawberry.mutation(description="Suspend an ACTIVE contract (admins, finance). Any other state: CONFLICT "
                                     "(illegal_transition).")
    async def contract_suspend(self, info: Info, contract_id: _CONTRACT_ID, reason: _REASON,
                               expected_version: _EXPECTED) -> Contract | None:
        return Contract(view=await contracts.transition(info.context, uuid_of(contract_id, "contractId"), "suspend",
                                                        reason=reason, expected_version=expected_version))

    @strawberry.mutation(description="Resume a SUSPENDED contract (admins, finance).")
    async def contract_resume(
        self, info: Info, contract_id: _CONTRACT_ID, expected_version: _EXPECTED,
        reason: Annotated[str | None, strawberry.argument(description="Why, if worth saying.")] = None,
    ) -> Contract | None:
        return Contract(view=await contracts.transition(info.context, uuid_of(contract_id, "contractId"), "resume",
                                                        reason=reason, expected_version=expected_version))

    @strawberry.mutation(description="Terminate an ACTIVE or SUSPENDED contract (admins, finance): the term ends on "
                                     "effectiveOn; a version still being prepared or signed is withdrawn. A term "
                                     "that has not started (a renewal or a term signed ahead) terminated without "
                                     "effectiveOn is REVOKED: never in force, its term left as agreed. A DRAFT or "
                                     "SENT contract (no version signed yet, a prepared renewal say) is REVOKED as "
                                     "it stands: its open versions withdrawn, its term as drafted (effectiveOn: "
                                     "BAD_USER_INPUT); a revoked renewal is not the term's next term. A term whose "
                                     "next term is signed is not ended early: revoke the renewal first (else "
                                     "CONFLICT renewal_exists). The notice "
                                     "period is the parties' business: nothing is enforced automatically.")
    async def contract_terminate(
        self, info: Info, contract_id: _CONTRACT_ID, reason: _REASON, expected_version: _EXPECTED,
        effective_on: Annotated[date | None, strawberry.argument(
            description="The term's last day: today (the institution's date) by default, not before today nor "
                        "the term's start, not after the end. Left out for a DRAFT or SENT contract, which is "
                        "revoked as it stands (given: BAD_USER_INPUT effective_not_allowed).")] = None,
    ) -> Contract | None:
        return Contract(view=await contracts.transition(info.context, uuid_of(contract_id, "contractId"),
                                                        "terminate", reason=reason,
                                                        expected_version=expected_version, effective_on=effective_on))

    @strawberry.mutation(description="Open the next term of an ACTIVE or SUSPENDED contract: a new DRAFT contract "
                                     "with renewalOfId this one. When it has been signed, this one ends RENEWED "
                                     "instead of EXPIRED. The client's file must be active (archived or deceased: "
                                     "BAD_USER_INPUT at contractId).")
    async def contract_renew(self, info: Info, contract_id: _CONTRACT_ID, input: Annotated[
            ContractRenewInput, strawberry.argument(description="The next term.")]) -> Contract | None:
        return Contract(view=await contracts.renew(info.context, uuid_of(contract_id, "contractId"), _input(input)))
