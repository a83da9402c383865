"""Contracts sent for signature and signed: each party's signature bound to the SHA-256 of the exact document signed.

The document itself is downloaded over HTTP: ``GET /contracts/{contractId}/versions/{number}/document`` (a PDF,
checked against its SHA-256 on every download; a file that does not match is refused with DOCUMENT_TAMPERED).
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import strawberry

from resolvers import contract_signature as signatures
from resolvers.context import Context
from resolvers.contract_signature import SignatureView
from schema.common import Info, register_node, uuid_of
from schema.contract import Contract, ContractVersion


@strawberry.enum(description="A party to a contract, who signs each version (FHIR Contract.signer.type).")
class ContractParty(Enum):
    INSTITUTION = strawberry.enum_value("institution", description="The institution, signed by an admin or "
                                                                   "finance staff member.")
    CLIENT = strawberry.enum_value("client", description="The client: the patient, in the portal, or in person or on "
                                                         "paper witnessed by staff.")
    GUARANTOR = strawberry.enum_value("guarantor", description="The guarantor or payer named on the contract (one of "
                                                               "the client's contacts), in person or on paper.")
    PARTNER = strawberry.enum_value("partner", description="The care partner named on the contract, recorded by "
                                                           "staff from its signed copy.")


@strawberry.enum(description="How a signature was given.")
class SigningMethod(Enum):
    IN_PERSON = strawberry.enum_value("in_person", description="On screen, in the presence of the staff member "
                                                               "recording it.")
    ON_PAPER = strawberry.enum_value("on_paper", description="On a printed copy of the document, kept by the "
                                                             "institution.")
    PORTAL = strawberry.enum_value("portal", description="By the patient in the portal, signed in.")


@strawberry.enum(description="Who signed.")
class SignerKind(Enum):
    STAFF = strawberry.enum_value("staff", description="A staff member, for the institution.")
    PATIENT = strawberry.enum_value("patient", description="The client.")
    CONTACT = strawberry.enum_value("contact", description="One of the client's contacts (the guarantor).")
    PARTNER = strawberry.enum_value("partner", description="The care partner.")


@strawberry.type(description="One party's signature of one version of a contract, bound to the SHA-256 of the "
                             "exact document signed. Signatures are never changed or removed.")
class ContractSignature:
    view: strawberry.Private[SignatureView]

    @strawberry.field(description="The signature's id.")
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.view.row.id))

    @strawberry.field(description="The version signed.")
    def version_number(self) -> int:
        return self.view.version.row.number

    @strawberry.field(description="The party signing.")
    def party(self) -> ContractParty:
        return ContractParty(self.view.row.party)

    @strawberry.field(description="Who signed: a staff member, the client, a contact or the partner.")
    def signer_kind(self) -> SignerKind:
        return SignerKind(self.view.row.signer_kind)

    @strawberry.field(description="The signer's name as signed (the staff member's, the client's, the guarantor's "
                                  "or the partner's).")
    def signer_name(self) -> str:
        return self.view.row.signer_name

    @strawberry.field(description="The staff member who signed for the institution; null for the other "
                                  "parties.")
    def staff_id(self) -> strawberry.ID | None:
        return None if self.view.row.staff_id is None else strawberry.ID(str(self.view.row.staff_id))

    @strawberry.field(description="The contact who signed as guarantor; null for the other parties.")
    def contact_id(self) -> strawberry.ID | None:
        return None if self.view.row.contact_id is None else strawberry.ID(str(self.view.row.contact_id))

    @strawberry.field(description="The staff member who witnessed and recorded a signature given in person or on "
                                  "paper; null for the institution's own and for the client's in the portal.")
    def witness_id(self) -> strawberry.ID | None:
        return None if self.view.row.witness_id is None else strawberry.ID(str(self.view.row.witness_id))

    @strawberry.field(description="The witness's name; null when witnessId is.")
    def witness_name(self) -> str | None:
        return self.view.witness_name

    @strawberry.field(description="How it was given.")
    def method(self) -> SigningMethod:
        return SigningMethod(self.view.row.method)

    @strawberry.field(description="When it was given.")
    def signed_at(self) -> datetime:
        return self.view.row.signed_at

    @strawberry.field(description="SHA-256 (hex) of the document signed: the version's documentSha256.")
    def document_sha256(self) -> str:
        return self.view.row.document_sha256

    @strawberry.field(description="The contract as it stands after this signature (ACTIVE once every party "
                                  "signed version 1).")
    def contract(self) -> Contract:
        return Contract(view=self.view.version.contract)

    @strawberry.field(description="The version signed (SIGNED once every party signed).")
    def version(self) -> ContractVersion:
        return ContractVersion(view=self.view.version)


def signature_node(ctx: Context, view: SignatureView) -> ContractSignature:
    return ContractSignature(view=view)


register_node("contract_signature", signature_node)


_SHA = "SHA-256 (hex) of the document the signer saw (the version's documentSha256): any other is refused."


@strawberry.input(description="A signature recorded by staff. The institution's needs the right to change a "
                               "contract's status (admins, finance); the others are given in person or on paper "
                               "and witnessed by you.")
class ContractSignInput:
    contract_id: strawberry.ID = strawberry.field(
        description="The contract's id (Contract.id); NOT_FOUND when it does not exist or is outside your reach (the "
                    "same answer).")
    version_number: int = strawberry.field(description="The version signed (sent for signature).")
    party: ContractParty = strawberry.field(description="The party signing.")
    method: SigningMethod = strawberry.field(description="IN_PERSON or ON_PAPER (PORTAL is the patient's own, "
                                                         "myContractSign).")
    document_sha256: str = strawberry.field(description=_SHA)
    contact_id: strawberry.ID | None = strawberry.field(default=None, description="GUARANTOR: the guarantor "
                                                                                  "signing (the contract's).")


@strawberry.input(description="The patient signing their own contract as the client, in the portal.")
class MyContractSignInput:
    contract_id: strawberry.ID = strawberry.field(description="The id of one of your own contracts (`contracts` lists "
                                                                  "them to you); "
                                                                  "another's answers NOT_FOUND, as a random id does.")
    version_number: int = strawberry.field(description="The version signed (sent for signature).")
    document_sha256: str = strawberry.field(description=_SHA)


_CONTRACT_ID = Annotated[strawberry.ID, strawberry.argument(
    description="The contract's id (Contract.id); NOT_FOUND when it does not exist or is outside your reach (the "
                "same answer).")]
_EXPECTED = Annotated[int, strawberry.argument(description="The contract's version as you read it: a stale one "
                                                           "is refused with CONFLICT.")]
_NUMBER = Annotated[int, strawberry.argument(description="The version's number.")]


@strawberry.type
class ContractSignatureQuery:
    @strawberry.field(description="The signatures of one version of a contract, in the order given: at most 4, "
                                  "one per ContractParty value (the institution, the client, the guarantor and the "
                                  "partner when named).")
    async def contract_signatures(self, info: Info, contract_id: _CONTRACT_ID,
                                  version_number: _NUMBER) -> list[ContractSignature] | None:
        found = await signatures.list_for(info.context, uuid_of(contract_id, "contractId"), version_number)
        return [ContractSignature(view=view) for view in found]


@strawberry.type
class ContractSignatureMutation:
    @strawberry.mutation(description="Send the contract's draft version for signature: rendered to PDF, sealed and "
                                     "stored, its SHA-256 recorded; the version is frozen from now on. Version 1 "
                                     "makes the contract SENT. The client's file must be active (archived or "
                                     "deceased: BAD_USER_INPUT at contractId).")
    async def contract_send(self, info: Info, contract_id: _CONTRACT_ID,
                            expected_version: _EXPECTED) -> Contract | None:
        return Contract(view=await signatures.send(info.context, uuid_of(contract_id, "contractId"),
                                                   expected_version))

    @strawberry.mutation(description="Record a party's signature of a version sent for signature. When every "
                                     "required party has signed (institution, client, and the guarantor and the "
                                     "partner when named) the version is SIGNED and takes effect. A party signs "
                                     "once (a second time: CONFLICT). The client's file must be active (archived or "
                                     "deceased: BAD_USER_INPUT at input.contractId).")
    async def contract_sign(self, info: Info, input: Annotated[ContractSignInput, strawberry.argument(
            description="The signature.")]) -> ContractSignature | None:
        data = {"contract_id": uuid_of(input.contract_id, "input.contractId"),
                "version_number": input.version_number, "party": input.party.value, "method": input.method.value,
                "document_sha256": input.document_sha256,
                "contact_id": uuid_of(input.contact_id, "input.contactId")}
        return ContractSignature(view=await signatures.sign(info.context, data))

    @strawberry.mutation(description="Portal: sign my contract as the client. My file must be active (archived or "
                                     "deceased: BAD_USER_INPUT at input.contractId).")
    async def my_contract_sign(self, info: Info, input: Annotated[MyContractSignInput, strawberry.argument(
            description="My signature.")]) -> ContractSignature | None:
        data = {"contract_id": uuid_of(input.contract_id, "input.contractId"),
                "version_number": input.version_number, "document_sha256": input.document_sha256}
        return ContractSignature(view=await signatures.sign_mine(info.context, data))

    @strawberry.mutation(description="Withdraw a version sent for signature and not yet signed by every party (its "
                                     "signatures stay on record). Version 1 withdrawn: the contract is a DRAFT "
                                     "again, with a new draft version copying the withdrawn terms to correct and "
                                     "send. An amendment withdrawn: the contract stays under its signed terms.")
    async def contract_withdraw(self, info: Info, contract_id: _CONTRACT_ID, version_number: _NUMBER,
                                expected_version: _EXPECTED) -> Contract | None:
        return Contract(view=await signatures.withdraw(info.context, uuid_of(contract_id, "contractId"),
                                                       version_number, expected_version))
