"""Rotating an institution's data key: recorded on its trail, old data still opens, new data seals
with the new version once every worker can open it, blind indexes stay comparable."""

from __future__ import annotations

import struct
import uuid
from datetime import UTC, datetime

import pytest

from core.errors import BadUserInput
from models import InstitutionKey, Patient
from models.keyring import SEALS_AFTER, KeyRing
from resolvers import institution as institutions
from resolvers.context import Services
from tests.factories import Tenant, make_patient

READ = "query($id: ID!) { patient(id: $id) { phone nationalId } }"
BY_PHONE = "query($phone: String!) { patients(filter: {phone: $phone}) { nodes { id } } }"


def key_version(envelope: bytes) -> int:
    return struct.unpack_from(">BI", bytes(envelope))[1]


async def age_keys(tenant: Tenant) -> None:
    """As if the rotation happened long enough ago for every worker to know the new version."""
    await InstitutionKey.filter(institution_id=tenant.id).update(created_at=datetime.now(UTC) - 2 * SEALS_AFTER)


async def test_a_rotation_is_on_the_trail_and_old_data_still_opens(tenant: Tenant, services: Services) -> None:
    before = await make_patient(tenant, phone="+8613800138000")

    version = await institutions.rotate_key(services, tenant.id)

    assert version == 2
    [event] = await tenant.audit_events(action="key_rotation")
    row = await InstitutionKey.get(institution_id=tenant.id, version=2)
    assert (event.actor_kind, event.resource_type, event.resource_id, event.fields_read) == (
        "system", "institution_key", row.id, "version")
    reply = await tenant.call("front_desk", READ, id=str(before))
    assert reply.errors == [] and reply.data["patient"]["phone"] == "+8613800138000"


async def test_a_new_version_seals_only_once_every_worker_knows_it(tenant: Tenant, services: Services) -> None:
    await institutions.rotate_key(services, tenant.id)
    fresh = await make_patient(tenant, phone="+8613800138001")
    assert key_version((await Patient.get(id=fresh)).phone) == 1  # too new to seal: another worker may lack it

    await age_keys(tenant)
    worker = KeyRing(services.master_key)  # a worker loading the keys now
    keys = await worker.get(tenant.id)
    assert (keys.current, sorted(keys.versions)) == (2, [1, 2])


async def test_data_sealed_with_the_new_version_opens_and_indexes_stay_comparable(
        tenant: Tenant, services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    old = await make_patient(tenant, phone="+8613800138002", nationalIdType="PASSPORT", nationalId="E12345678")
    await institutions.rotate_key(services, tenant.id)
    await age_keys(tenant)
    monkeypatch.setattr("models.keyring.REFRESH", 0.0)  # the service's copy of the keys is due for a reload

    new = await make_patient(tenant, phone="+8613800138002", nationalIdType="PASSPORT", nationalId="E12345678")

    stored = await Patient.get(id=new)
    assert (key_version(stored.phone), key_version(stored.national_id)) == (2, 2)
    assert key_version((await Patient.get(id=old)).phone) == 1
    for patient in (old, new):
        reply = await tenant.call("front_desk", READ, id=str(patient))
        assert reply.data["patient"] == {"phone": "+8613800138002", "nationalId": "E12345678"}
    found = await tenant.call("front_desk", BY_PHONE, phone="+8613800138002")
    assert [node["id"] for node in found.data["patients"]["nodes"]] == [str(old), str(new)]


async def test_rotating_an_unknown_institution_is_refused(services: Services) -> None:
    with pytest.raises(BadUserInput):
        await institutions.rotate_key(services, uuid.uuid4())
