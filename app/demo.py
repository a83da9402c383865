"""The demo institution "Demo Dental Clinic": one account per role and realistic patients.

Patients are registered through careloop's own code path (validation, encryption, audit),
as the demo nurse, so the demo database looks exactly like a real one.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from app.demo_data import DemoPatient, demo_patients
from audit.events import RequestMeta
from core.principal import ROLES, Principal
from models import Department, Institution
from resolvers import contact as contacts
from resolvers import institution as institutions
from resolvers import patient as patients
from resolvers.context import Context, Services
from resolvers.loaders import Loaders

DEMO_NAME = "Demo Dental Clinic"
DEMO_DOMAIN = "demo.careloop.test"
DEPARTMENTS = ("General Dentistry", "Orthodontics", "Implants and Restoration")
# Which departments each demo account works in.
ROLE_DEPARTMENTS = {"nurse": DEPARTMENTS, "doctor": ("Orthodontics",), "department_head": ("Orthodontics",)}


@dataclass(frozen=True)
class DemoResult:
    created: bool
    password: str | None  # only when generated here, to be shown once


def demo_email(role: str) -> str:
    return f"{role}@{DEMO_DOMAIN}"


async def seed(services: Services, *, password: str | None, patients_count: int = 200,
               progress: Callable[[int, int], None] | None = None) -> DemoResult:
    if await Institution.exists(name=DEMO_NAME):
        return DemoResult(created=False, password=None)
    generated = password is None
    password = password or secrets.token_urlsafe(12)
    institution = await institutions.create(services, DEMO_NAME, "dental")
    departments = {name: await institutions.create_department(institution, name) for name in DEPARTMENTS}
    accounts = {}
    for role in ROLES:
        member_of = [departments[d] for d in ROLE_DEPARTMENTS.get(role, ())]
        accounts[role] = await institutions.create_account(
            services, institution, email=demo_email(role), name=f"Demo {role.replace('_', ' ')}",
            password=password, roles=[role], departments=member_of, is_demo=True)
    nurse = accounts["nurse"]
    ctx = Context(
        services=services,
        request=RequestMeta(request_id="demo-seed", user_agent="careloop demo"),
        principal=Principal(institution_id=institution.id, user_id=nurse.id, token_id=None, email=nurse.email,
                            name=nurse.name, roles=frozenset({"nurse"}),
                            department_ids=frozenset(d.id for d in departments.values())),
        keys=await services.keyring.get(institution.id),
        loaders=Loaders(institution.id),
    )
    services.guard.sync_roles(ctx.require_principal().subject, institution.id, ["nurse"])
    department_list = list(departments.values())
    for n, demo in enumerate(demo_patients(patients_count), start=1):
        await _register(ctx, demo, department_list[n % len(department_list)])
        if progress:
            progress(n, patients_count)
    return DemoResult(created=True, password=password if generated else None)


async def _register(ctx: Context, demo: DemoPatient, department: Department) -> None:
    data = {
        name: getattr(demo, name)
        for name in (
            "full_name", "sex", "birth_date", "occupation", "address", "national_id_type", "national_id", "phone",
            "alt_phone", "email", "preferred_channel", "preferred_language", "contact_consent", "medical_history",
            "diagnoses", "allergies", "current_medication", "diet_preferences", "activity_preferences",
            "special_needs",
        )
        if getattr(demo, name) is not None
    }
    data |= {"contact_channels": list(demo.contact_channels), "segments": list(demo.segments),
             "tags": list(demo.tags), "department_id": department.id}
    result = await patients.create(ctx, data, register_anyway=True)
    assert result.patient is not None
    for contact in demo.contacts:
        await contacts.create(ctx, result.patient.row.id, {
            "name": contact.name, "relationship": contact.relationship, "phone": contact.phone,
            "is_emergency": contact.is_emergency, "may_receive_information": contact.may_receive_information,
            "notes": contact.notes,
        })
