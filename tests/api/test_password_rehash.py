"""A password hash made with older parameters is replaced at the next successful login."""

from __future__ import annotations

import dataclasses

import httpx

from app.main import create_app
from core.passwords import HashParameters, Passwords
from core.settings import Settings
from models import Staff
from resolvers.context import Services
from tests.factories import PASSWORD, Tenant, login


async def test_login_rehashes_with_new_parameters(tenant: Tenant, settings: Settings, services: Services) -> None:
    staff_id = tenant.staff_ids["nurse"]
    old_hash = (await Staff.get(id=staff_id)).password_hash
    assert "m=1024,t=1,p=1" in old_hash

    stronger = HashParameters(time_cost=2, memory_cost_kib=2048, parallelism=1)
    upgraded = dataclasses.replace(services, passwords=Passwords(stronger))
    app = create_app(dataclasses.replace(settings, password_hashing=stronger), upgraded, manage_database=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://careloop.test") as client:
        await login(client, tenant.emails["nurse"])

    new_hash = (await Staff.get(id=staff_id)).password_hash
    assert "m=2048,t=2,p=1" in new_hash
    assert new_hash != old_hash
    await login(tenant.client, tenant.emails["nurse"], PASSWORD)  # the old service still verifies the new hash
