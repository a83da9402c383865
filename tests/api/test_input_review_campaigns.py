"""A review of the relationship domains' mutations against careless or hostile input (December 2026): what it
found in campaigns. A campaign's cohort code is the code as visits record it, checked as there."""

from __future__ import annotations

from typing import Any

import pytest

from models import AuditEvent, Campaign
from tests.api import test_visits as visits
from tests.api.test_campaigns import CREATE, PREVIEW, draft, ok, patient
from tests.factories import Tenant


async def coded_patient(tenant: Tenant, kind: str, code: str) -> None:
    vid = (await visits.a_visit(tenant, await patient(tenant), role="nurse"))["id"]
    ok(await tenant.call("nurse", visits.ADD_CODE, id=vid, input={"kind": kind, "code": code}), "visitCodeAdd")


async def written(tenant: Tenant) -> tuple[int, int]:
    return (await Campaign.filter(institution_id=tenant.id).count(),
            await AuditEvent.filter(institution_id=tenant.id, resource_type="campaign").count())


@pytest.mark.parametrize(("kind", "recorded", "system", "asked"), [
    ("CONDITION", "K021", "ICD10", "K021"),  # stored as WHO writes it, K02.1: asked as typed on the visit
    ("CONDITION", "K02.1", "ICD10", "k02.1"),
    ("PROCEDURE", "Implant-2", "SERVICE", "Implant-2"),  # a catalogue code as the institution wrote it
])
async def test_a_cohort_is_found_by_its_code_as_visits_take_it(tenant: Tenant, kind: str, recorded: str,
                                                               system: str, asked: str) -> None:
    """Found in review: the audience's code was upper-cased and compared as typed, so an ICD-10 code without its
    dot (K021, which a visit records as K02.1) or a catalogue code written in lower case matched nobody, and the
    campaign went to no one without a word."""
    if system == "SERVICE":
        ok(await tenant.call("admin", visits.CATALOGUE, code=recorded), "serviceItemCreate")
    await coded_patient(tenant, kind, recorded)
    audience: dict[str, Any] = {"code": asked, "codeSystem": system}

    preview = ok(await tenant.call("admin", PREVIEW, purpose="CAMPAIGN", audience=audience), "campaignPreview")

    assert (preview["audience"], preview["recipients"]) == (1, 1)


@pytest.mark.parametrize(("code", "system"), [("NOTACODE", "ICD10"), ("K02.1 OR 1", "ICD10"), ("a b", "SERVICE"),
                                              ("IMPLANT_2", "SERVICE")])
async def test_a_code_that_is_none_is_bad_input_and_nothing_is_written(tenant: Tenant, code: str,
                                                                       system: str) -> None:
    """Found in review: a code no visit can hold was taken, the campaign made for an audience of none."""
    before = await written(tenant)

    reply = await tenant.call("admin", CREATE, input=draft(code=code, codeSystem=system))
    preview = await tenant.call("admin", PREVIEW, purpose="CAMPAIGN", audience={"code": code, "codeSystem": system})

    for refused in (reply, preview):
        assert refused.codes == ["BAD_USER_INPUT"], refused.errors
        assert (refused.errors[0]["extensions"]["field"], refused.errors[0]["extensions"]["reason"]) == (
            "input.audience.code" if refused is reply else "audience.code", "invalid")
    assert await written(tenant) == before
