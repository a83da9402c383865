"""The demo's compliance desk, so a new compliance officer finds something to look at (issue 18): an access
anomaly (an agency nurse who read far more files than the other nurses), two break-glass accesses (one reviewed,
one waiting in the queue), and disclosures to the home-care partner. Everything goes through careloop's own code
path (guard, scope, audit), as the accounts named here, and nothing is random: the same demo every time.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from audit.events import Action, RequestMeta
from core.principal import PARTNER, Principal
from models import Department, Institution, PartnerClient, Patient, Staff
from resolvers import access
from resolvers import emergency_access as emergency
from resolvers import institution as institutions
from resolvers import partner as partners
from resolvers.context import Context, Services
from resolvers.loaders import Loaders

ActingAs = Callable[[Services, Staff, str, frozenset[uuid.UUID]], Awaitable[Context]]

QUIET_NURSES = 3  # nurses who read a couple of files each: the role's median stays low...
QUIET_READS = 2
AGENCY_READS = 36  # ...and one who read 36: an access anomaly (accessAnomalies' defaults: 3x the median, 20)
DISCLOSED = 3  # granted files the partner's app read
BREAK_GLASS = (  # (reason, reviewed: the review's note, or None: still in the queue)
    ("Patient collapsed at the front desk; checking allergies before giving anything", "Justified: emergency care."),
    ("Covering the implant clinic on a Sunday call; patient phoned with swelling", None),
)


async def seed(services: Services, *, acting_as: ActingAs, staff: dict[str, Staff],
               departments: dict[str, Department], patient_ids: list[uuid.UUID], password: str,
               partner_client: PartnerClient) -> None:
    await _reads_of_nurses(services, acting_as, staff["nurse"], list(departments.values()), patient_ids, password)
    await _break_glass(services, acting_as, staff, departments, patient_ids)
    await _disclosures(services, partner_client, patient_ids[:DISCLOSED])


async def _reads_of_nurses(services: Services, acting_as: ActingAs, demo_nurse: Staff,
                           departments: list[Department], patient_ids: list[uuid.UUID], password: str) -> None:
    """Three more nurses read two files each; an agency nurse read many more."""
    institution = await Institution.get(id=demo_nurse.institution_id)
    everywhere = frozenset(d.id for d in departments)
    domain = demo_nurse.email.split("@", 1)[1]
    readers = [(f"Demo nurse {n}", f"nurse{n}@{domain}", patient_ids[n:n + QUIET_READS])
               for n in range(2, 2 + QUIET_NURSES)]
    readers.append(("Demo agency nurse", f"agency.nurse@{domain}", patient_ids[:AGENCY_READS]))
    for name, email, files in readers:
        account = await institutions.create_account(
            services, institution, email=email, name=name, password=password, roles=["nurse"],
            departments=departments, is_demo=True)
        await _read_files(await acting_as(services, account, "nurse", everywhere), files, "full_name")


async def _read_files(ctx: Context, patient_ids: list[uuid.UUID], *fields: str) -> None:
    """Open each file and read some of its fields, as a client would; on the trail when done."""
    for patient_id in patient_ids:
        view = await access.find_patient(ctx, patient_id, action=Action.READ)
        for name in fields:
            access.read_patient_field(ctx, view, name)
    await access.flush_reads(ctx)


async def _break_glass(services: Services, acting_as: ActingAs, staff: dict[str, Staff],
                       departments: dict[str, Department], patient_ids: list[uuid.UUID]) -> None:
    """The orthodontist opens two General Dentistry files by breaking the glass and reads the allergies; the
    compliance officer has reviewed the first, the second waits in the queue."""
    orthodontics = frozenset({departments["Orthodontics"].id})
    general = departments["General Dentistry"].id
    in_general = set(await Patient.filter(id__in=patient_ids, department_id=general).values_list("id", flat=True))
    outside = [p for p in patient_ids if p in in_general][-len(BREAK_GLASS):]
    officer = await acting_as(services, staff["compliance_officer"], "compliance_officer", frozenset())
    for patient_id, (reason, review) in zip(outside, BREAK_GLASS, strict=False):
        doctor = await acting_as(services, staff["doctor"], "doctor", orthodontics)
        grant = await emergency.open_file(doctor, patient_id, reason)
        await _read_files(doctor, [patient_id], "full_name", "allergies")
        if review is not None:
            await emergency.review(officer, grant.row.id, "justified", review)


async def _disclosures(services: Services, client: PartnerClient, patient_ids: list[uuid.UUID]) -> None:
    """The home-care partner's app read the identity and phone of a few granted files: the accounting of
    disclosures shows them."""
    partner_id = client.partner_id
    principal = Principal(institution_id=client.institution_id, user_id=client.id, token_id=None, email="",
                          name=client.name, roles=frozenset({PARTNER}), department_ids=frozenset(), kind=PARTNER,
                          scopes=frozenset(partners.scope_vocabulary(services.guard)), partner_id=partner_id)
    ctx = Context(services=services, request=RequestMeta(request_id="demo-seed", user_agent="Sunrise care app"),
                  principal=principal,
                  keys=await services.keyring.get(client.institution_id), loaders=Loaders(client.institution_id))
    await _read_files(ctx, patient_ids, "full_name", "phone")

