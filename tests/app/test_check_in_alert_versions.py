"""The check-in alert's visit carries its ``version`` (``Int!``, the visit row's counter), over graphql-transport-ws
against the real app served by uvicorn, for staff and for a partner. (An alert is sent only to a caller who reads the
identity class of the file, so here the version, read under that class until it became ``Int!``, was never null.) The
refused twin: a role that reads no visit is refused the subscription, on the trail (tests/api/test_journey_versions.py
has the queries and mutations)."""

from __future__ import annotations

from models import AuditEvent, Visit
from tests.app.test_check_in_alerts import check_in, flagged_patient, subscribe
from tests.app.test_partner_subscriptions import arrive_a_visit_it_recorded
from tests.factories import Tenant
from tests.partners import ALL_SCOPES, make_partnership
from tests.patients import mark

SUBSCRIBE = "subscription { checkInAlerts { visit { id version } } }"


async def test_staff_are_told_the_version_of_the_visit_checked_in(tenant: Tenant, ws_url: str) -> None:
    pid = await flagged_patient(tenant)
    desk = await subscribe(ws_url, tenant.tokens["front_desk"], query=SUBSCRIBE)
    nurse = await subscribe(ws_url, tenant.tokens["nurse"], query=SUBSCRIBE)
    visit_id = await check_in(tenant, pid)
    version = (await Visit.get(id=visit_id)).version
    assert version == 2  # recorded, then checked in
    for live in (desk, nurse):
        seen, errors = await live.alert()
        assert (seen, errors) == ({"visit": {"id": visit_id, "version": version}}, [])
        await live.close()


async def test_a_partner_is_told_the_version_of_the_visit_it_recorded(tenant: Tenant, ws_url: str) -> None:
    partnership = await make_partnership(tenant, [*ALL_SCOPES, "visit:create", "visit:read", "flag:read"])
    live = await subscribe(ws_url, partnership.token, query=SUBSCRIBE)
    visit_id = await arrive_a_visit_it_recorded(partnership)
    await Visit.filter(id=visit_id).update(version=5)  # as if changed four times: the row's own counter is told
    seen, errors = await live.alert(within=6)
    assert (seen, errors) == ({"visit": {"id": visit_id, "version": 5}}, [])
    await live.close()


async def test_a_role_that_reads_no_visit_is_refused_and_it_is_recorded(tenant: Tenant, ws_url: str) -> None:
    seq = await mark(tenant.id)
    live = await subscribe(ws_url, tenant.tokens["compliance_officer"], query=SUBSCRIBE)
    refused = await live.next()
    assert (refused["type"], refused["payload"]["data"]) == ("next", None)
    assert [e["extensions"]["code"] for e in refused["payload"]["errors"]] == ["FORBIDDEN"]
    await live.close()
    await mark(tenant.id)
    assert await AuditEvent.filter(institution_id=tenant.id, seq__gt=seq, outcome="denied",
                                   resource_type="visit").count() == 1
