"""The two doors of the messages to patients that open without a sign-in.

- ``POST /hooks/messages/{institutionId}/{channel}``: an SMS or WeChat gateway reports what became of a
  message it was handed: ``{"id": <its message id>, "status": "delivered" | "failed", "reason": "..."}``,
  signed as our webhooks are (``X-Careloop-Timestamp``, ``X-Careloop-Signature`` = hex HMAC-SHA256 of
  ``timestamp + "." + body`` under the institution's gateway secret). Answers 204; 401 for a missing,
  stale (more than 5 minutes either way) or wrong signature, and for an institution without that gateway
  (nothing to check it against; one switched off still reports on what it was handed); a report on a message
  with no sent record yet (the gateway reported before the worker's write committed) is kept a day for that
  record and applied once it is written (204 too); 404 only when
  the institution keeps 10,000 such reports of the channel already (``communication.EARLY_REPORTS_MAX``); 400 for a body
  that is not such an object; 503 when the institution's gateway secret does not open (ours to mend: the gateway
  tries again later). No answer says more. Each refusal is counted by reason
  (``careloop_delivery_callbacks_refused_total``) and logged at most once a minute per reason, with a count of
  the rest (``app.logs.RefusalLines``): a stranger posting junk cannot fill the logs.
- ``/unsubscribe?token=...``: the signed, single-purpose link every message carries (a message to a patient's
  contact carries the contact's own link, which stops messages to that contact only and never touches the
  patient's consent). ``GET`` shows which messages the link stops and a button; ``POST`` (that button, or a
  mail client's RFC 8058 one-click ``List-Unsubscribe=One-Click``) stops them. ``GET`` changes nothing
  because mail scanners and link previews follow links on their own: a patient must not lose their
  appointment reminders to one. A forged link, or one re-signed for another purpose, patient, contact or kind
  of link, is a 400 and nothing is recorded.
"""

from __future__ import annotations

import html
import json
import logging
import time
import uuid
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from app import metrics
from app.logs import RefusalLines
from app.senders import GATEWAY_ID_MAX, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_matches
from audit.events import RequestMeta
from core.crypto import DecryptionError
from models.messaging import GATEWAY_CHANNELS
from resolvers import communication, messaging
from resolvers.communication import Link, LinkRefused
from resolvers.context import Services

log = logging.getLogger("careloop.messages")

CALLBACK_MAX_BYTES = 4096
UNSUBSCRIBE_MAX_BYTES = 1024  # the one-click form is "List-Unsubscribe=One-Click"
FRESH_SECONDS = 300  # a callback's timestamp may be this far from our clock either way (replays, skew)
REASON_MAX = 200
DELIVERY_STATUSES = ("delivered", "failed")
# A refused callback's reason (the metric's label, the log's key) -> its answer and what the log line says.
REFUSALS = {
    "unknown_path": (404, "no such institution or channel"),
    "unsigned": (401, "stale or unsigned"),
    "bad_signature": (401, "bad signature"),
    "bad_report": (400, "not a delivery report"),
    # ours to mend (a row restored or copied from elsewhere, a key lost): the gateway tries again later
    "gateway_secret": (503, "the gateway's secret does not open"),
    "unknown_message": (404, "no such message, and too many reports kept for messages to come"),
}
REFUSAL_LOG_SECONDS = 60.0
# The pages hold no script, no image, nothing from elsewhere; the button posts back here only.
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'"

PURPOSE_NAMES = {  # what each purpose means to a patient, in both languages of the pages
    "care": ("预约确认、就诊提醒和随访通知", "appointment confirmations, reminders and follow-up notices"),
    "greeting": ("生日和节日问候", "birthday and holiday greetings"),
    "campaign": ("健康资讯和活动通知", "newsletters and campaigns"),
}
CONTACT_NAMES = ("发给您（患者的家属或联系人）的消息", "messages to you as a patient's family member or contact")


def routes(services: Services) -> list[Route]:
    refusals = RefusalLines(log, "delivery callback", seconds=REFUSAL_LOG_SECONDS)

    async def delivery_callback(request: Request) -> Response:
        refusal = await _record_callback(services, request)
        if refusal is None:
            return Response(status_code=204)
        status, why = REFUSALS[refusal]
        metrics.count_refused_callback(refusal)
        channel = request.path_params["channel"]
        refusals.refused(refusal, "delivery callback on %s refused: %s",
                         channel if channel in GATEWAY_CHANNELS else "an unknown channel", why)
        return Response(status_code=status)

    async def unsubscribe_page(request: Request) -> Response:
        token = request.query_params.get("token", "")
        try:
            link = communication.read_link(services.master_key.token_key, token)
        except LinkRefused:
            return _refused_page()
        return _page(200, "退订确认 / Unsubscribe", _confirm_text(link, token))

    async def unsubscribe(request: Request) -> Response:
        await request.body()  # the one-click form or the button's: read within the limit, nothing in it counts
        token = request.query_params.get("token", "")
        try:
            link = await communication.follow_link(services, token, _meta(request))
        except LinkRefused:
            return _refused_page()
        return _page(200, "已退订 / Unsubscribed", _done_text(link))

    return [
        Route("/hooks/messages/{institution_id}/{channel}", delivery_callback, methods=["POST"],
              max_body_size=CALLBACK_MAX_BYTES),
        Route("/unsubscribe", unsubscribe_page, methods=["GET"]),
        Route("/unsubscribe", unsubscribe, methods=["POST"], max_body_size=UNSUBSCRIBE_MAX_BYTES),
    ]


# -- delivery callbacks -------------------------------------------------------------------------------


async def _record_callback(services: Services, request: Request) -> str | None:
    """The report recorded (None), or why it was refused (a key of ``REFUSALS``). The cheap checks first: junk
    never reaches the database."""
    channel = request.path_params["channel"]
    try:
        institution_id = uuid.UUID(request.path_params["institution_id"])
    except ValueError:
        return "unknown_path"
    if channel not in GATEWAY_CHANNELS:
        return "unknown_path"
    timestamp = request.headers.get(TIMESTAMP_HEADER, "")
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not _fresh(timestamp) or not signature:
        return "unsigned"
    body = await request.body()
    try:
        # switched off too: it still reports on what it was handed before (found in review: refused, 401, and a
        # failure it reported was lost, the message left "sent")
        gateway = await messaging.gateway(institution_id, channel, services.keyring, switched_off_too=True)
    except DecryptionError:  # found in review: a 500, its traceback logged, for every report the gateway sent
        return "gateway_secret"
    if gateway is None or not signature_matches(gateway.secret, timestamp, body, signature):
        return "bad_signature"
    report = _report(body)
    if report is None:
        return "bad_report"
    message_id, status, reason = report
    outcome = await communication.record_delivery(institution_id, channel, message_id, status, reason)
    return "unknown_message" if outcome is communication.Delivery.UNKNOWN else None


def _fresh(timestamp: str) -> bool:
    return timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12 and \
        abs(time.time() - int(timestamp)) <= FRESH_SECONDS


def _report(body: bytes) -> tuple[str, str, str] | None:
    """(gateway message id, status, reason) from a well-formed report, else None."""
    try:
        report: Any = json.loads(body)
    except (ValueError, RecursionError):  # also a body that is not UTF-8, or one nested past the parser's limit
        return None
    if not isinstance(report, dict):
        return None
    message_id, status, reason = report.get("id"), report.get("status"), report.get("reason", "")
    if isinstance(message_id, int) and not isinstance(message_id, bool):
        message_id = str(message_id)  # as the sender keeps an id the gateway answered as a number
    # printable, as the sender keeps ids (``senders._gateway_id``): PostgreSQL refused a NUL in the lookup, a 500
    if not isinstance(message_id, str) or not 0 < len(message_id) <= GATEWAY_ID_MAX or not message_id.isprintable():
        return None
    if status not in DELIVERY_STATUSES or not isinstance(reason, str):
        return None
    return message_id, status, reason[:REASON_MAX]


# -- unsubscribe pages --------------------------------------------------------------------------------


def _meta(request: Request) -> RequestMeta:
    return RequestMeta(getattr(request.state, "request_id", ""), request.client.host if request.client else "",
                       request.headers.get("user-agent", "")[:200])


def _names(link: Link) -> tuple[str, str]:
    """What the link stops, in both languages: a purpose of the patient's messages, or a contact's messages."""
    return CONTACT_NAMES if link.contact else PURPOSE_NAMES[link.purpose]


def _confirm_text(link: Link, token: str) -> str:
    chinese, english = _names(link)
    action = html.escape(f"/unsubscribe?token={quote(token, safe='')}")
    others = ("发给患者本人的消息不受影响。/ Messages to the patient are not affected." if link.contact else
              "其他消息不受影响。/ Other messages are not affected.")
    return (f"<p>不再接收：{chinese}。</p><p>Stop receiving: {english}.</p>"
            f'<form method="post" action="{action}"><button type="submit">确认退订 / Unsubscribe</button></form>'
            f"<p>{others}</p>")


def _done_text(link: Link) -> str:
    chinese, english = _names(link)
    again = ("如需恢复，请联系医院。<br>To receive them again, call the clinic." if link.contact else
             "如需恢复，请在患者门户的通知设置中重新开启，或联系医院。<br>"
             "To receive them again, turn them back on in the patient portal or call the clinic.")
    return f"<p>已为您停止：{chinese}。</p><p>You will no longer receive {english}.</p><p>{again}</p>"


def _refused_page() -> Response:
    return _page(400, "链接无效 / Invalid link",
                 "<p>此退订链接无效，未做任何更改。请使用消息中的完整链接，或联系医院。</p>"
                 "<p>This unsubscribe link is not valid; nothing was changed. Use the whole link from the "
                 "message, or call the clinic.</p>")


def _page(status: int, title: str, text: str) -> Response:
    """A small page in Chinese and English; every value in it is ours (names of purposes, an escaped link)."""
    document = (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
                f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>'
                "<style>body{font-family:sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;"
                "line-height:1.6}</style></head>"
                f"<body><h1>{title}</h1>{text}</body></html>")
    return HTMLResponse(document, status_code=status, headers={"content-security-policy": PAGE_POLICY})
