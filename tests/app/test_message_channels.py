"""A message goes by a channel it can leave by (found in review): a patient preferring SMS, with an e-mail address
too, got nothing while the institution had no SMS gateway (or had switched it off, "the channel is not used"): in
production each message failed for good as ``no_gateway``. The outbox now passes a channel without an active
gateway over for the patient's next consented, addressed one; with no other, the message fails as before. Driven
through the API (patients, gateways, the log) and the outbox as its worker runs it."""

from __future__ import annotations

from typing import Any

from app.senders import GatewayOrLog, LoggingSender, WebhookSender, senders_from_settings
from core.messages import Outgoing, needs_gateway
from core.settings import Settings
from models import Communication, MessageGateway
from resolvers import communication
from resolvers.context import Services
from tests.app.test_message_hooks import GATEWAY_SET, set_gateway
from tests.app.test_message_outbox import DAY, Recorder, log, queue, reachable
from tests.factories import Tenant


class GatewayRecorder(Recorder):
    """A sender that, like the production SMS and WeChat sender, sends only through the institution's gateway."""

    needs_gateway = True

    async def send(self, message: Outgoing) -> str | None:
        assert message.gateway is not None, "handed a message with no gateway"
        return await super().send(message)


def production_like(by_gateway: Recorder, by_mail: Recorder) -> dict[str, Any]:
    return {"sms": by_gateway, "wechat": by_gateway, "email": by_mail, "app": by_mail}


async def test_with_no_sms_gateway_a_message_goes_by_the_patients_next_channel(
        tenant: Tenant, services: Services) -> None:
    patient = await reachable(tenant)  # SMS preferred, e-mail consented too
    message = await queue(tenant, patient)
    by_gateway, by_mail = GatewayRecorder(), Recorder()

    assert await communication.deliver_due(services, production_like(by_gateway, by_mail), now=DAY) == 1

    stored = await Communication.get(id=message.id)
    assert (stored.status, stored.channel, stored.last_error) == ("sent", "email", "")
    assert by_gateway.sent == [] and [m.channel for m in by_mail.sent] == ["email"]
    assert [(m["channel"], m["status"]) for m in await log(tenant, patient)] == [("EMAIL", "SENT")]


async def test_with_an_active_sms_gateway_the_preferred_channel_is_kept(tenant: Tenant, services: Services) -> None:
    await set_gateway(tenant, "SMS")
    patient = await reachable(tenant)
    message = await queue(tenant, patient)
    by_gateway, by_mail = GatewayRecorder(), Recorder()

    assert await communication.deliver_due(services, production_like(by_gateway, by_mail), now=DAY) == 1

    stored = await Communication.get(id=message.id)
    assert (stored.status, stored.channel) == ("sent", "sms")
    assert [m.channel for m in by_gateway.sent] == ["sms"] and by_mail.sent == []


async def test_a_gateway_switched_off_is_passed_over_as_a_missing_one(tenant: Tenant, services: Services) -> None:
    await set_gateway(tenant, "SMS")
    reply = await tenant.call("admin", GATEWAY_SET, input={"channel": "SMS", "active": False})
    assert not reply.errors, reply.errors
    assert await MessageGateway.filter(institution_id=tenant.id, channel="sms", active=False).exists()
    patient = await reachable(tenant)
    message = await queue(tenant, patient)
    by_gateway, by_mail = GatewayRecorder(), Recorder()

    await communication.deliver_due(services, production_like(by_gateway, by_mail), now=DAY)

    assert (await Communication.get(id=message.id)).channel == "email" and by_gateway.sent == []


async def test_with_no_other_channel_the_message_still_fails_as_no_gateway(
        tenant: Tenant, services: Services) -> None:
    patient = await reachable(tenant, contactChannels=["SMS"], email=None)
    message = await queue(tenant, patient)
    by_mail = Recorder()

    await communication.deliver_due(services, {**production_like(Recorder(), by_mail), "sms": WebhookSender()},
                                    now=DAY)

    stored = await Communication.get(id=message.id)
    assert (stored.status, stored.last_error) == ("failed", "no_gateway") and by_mail.sent == []


async def test_the_real_production_sender_is_passed_over_too(tenant: Tenant, services: Services) -> None:
    patient = await reachable(tenant)
    message = await queue(tenant, patient)
    by_mail, webhook = Recorder(), WebhookSender()
    try:
        await communication.deliver_due(services, {"sms": webhook, "wechat": webhook, "email": by_mail,
                                                   "app": by_mail}, now=DAY)
    finally:
        await webhook.aclose()

    assert (await Communication.get(id=message.id)).channel == "email" and len(by_mail.sent) == 1


def test_only_productions_gateway_sender_needs_a_gateway() -> None:
    """Outside production SMS without a gateway is logged (development), so nothing is passed over there."""
    production = senders_from_settings(Settings(environment="production"))
    development = senders_from_settings(Settings(environment="development"))
    assert needs_gateway(production["sms"]) and needs_gateway(production["wechat"])
    assert not any(needs_gateway(development[c]) for c in ("sms", "wechat", "email", "app"))
    assert not needs_gateway(production["email"]) and not needs_gateway(production["app"])
    assert not needs_gateway(LoggingSender()) and not needs_gateway(GatewayOrLog(WebhookSender(), LoggingSender()))
