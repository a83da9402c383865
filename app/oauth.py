"""``POST /oauth/token``: a partner's API client exchanges its credentials for an access token
(OAuth 2.0 client credentials, RFC 6749 §4.4), as SMART Backend Services clients expect.

The form carries ``grant_type=client_credentials`` and ``scope`` (space-separated, e.g.
``patient.identity:read contact:read``; all the client's scopes when absent); the credentials
come as HTTP Basic or as ``client_id`` and ``client_secret`` in the form. The answer is
``{"access_token", "token_type": "Bearer", "expires_in", "scope"}``, or an RFC 6749 §5.2 error.
"""

from __future__ import annotations

import base64
from urllib.parse import parse_qsl, unquote_plus

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.graphql import presented_credentials
from audit.events import Action, RequestMeta
from resolvers import partner as partners
from resolvers import sign_in_limit
from resolvers.context import Services

MAX_FORM_BYTES = 4096
_STATUS = {"invalid_client": 401, "slow_down": 429}


def routes(services: Services, sign_ins_per_minute: int) -> list[Route]:
    """The token route; its requests count as sign-ins of their address (``sign_ins_per_minute``)."""

    async def token(request: Request) -> JSONResponse:
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return _refuse("invalid_request", "Send an application/x-www-form-urlencoded form.")
        try:  # a small urlencoded form: parsed here, no multipart parser needed
            pairs = parse_qsl((await request.body()).decode(), max_num_fields=10)
        except (UnicodeDecodeError, ValueError):
            return _refuse("invalid_request", "Not a valid form.")
        form = dict(pairs)
        ambiguity = _ambiguity(request, form, len(pairs))
        if ambiguity is not None:
            return _refuse("invalid_request", ambiguity)
        if form.get("grant_type") != "client_credentials":
            return _refuse("unsupported_grant_type", "Only client_credentials is supported.")
        client_id, secret = _credentials(request, str(form.get("client_id") or ""),
                                         str(form.get("client_secret") or ""))
        meta = RequestMeta(getattr(request.state, "request_id", ""), request.client.host if request.client else "",
                           request.headers.get("user-agent", "")[:200])
        try:  # counted as a sign-in of the address, before the client is looked up
            await sign_in_limit.admit_request(services, meta, 1, sign_ins_per_minute, action=Action.TOKEN,
                                              resource_type="partner_token")
            issued = await partners.issue_token(services, meta, client_id, secret, str(form.get("scope") or ""))
        except partners.TokenRefused as refused:
            return _refuse(refused.error, refused.description)
        except sign_in_limit.TooManySignIns as refused:
            return _refuse("slow_down", refused.message, {"retry-after": str(refused.retry_after)})
        return JSONResponse({"access_token": issued.token, "token_type": "Bearer", "expires_in": issued.expires_in,
                             "scope": " ".join(issued.scopes)}, headers={"pragma": "no-cache"})

    return [Route("/oauth/token", token, methods=["POST"], max_body_size=MAX_FORM_BYTES)]


def _ambiguity(request: Request, form: dict[str, str], sent: int) -> str | None:
    """What makes a form ambiguous, in words; None when it says one thing. RFC 6749 sends each parameter once
    (§3.2) and the client's credentials by one method (§2.3); found in review: the last of two scopes, or the Basic
    header over a secret in the form, was taken silently, where a proxy or the client's own log may take the other."""
    if len(form) < sent:
        return "A parameter is sent more than once."
    if form.get("client_secret") and _basic(request) is not None:
        return "Send the client's secret once: HTTP Basic or the form, not both."
    return None


def _basic(request: Request) -> str | None:
    """The value of an HTTP Basic Authorization header; None without one."""
    scheme, _, value = (presented_credentials(request) or "").partition(" ")
    return value if scheme.lower() == "basic" else None


def _credentials(request: Request, client_id: str, secret: str) -> tuple[str, str]:
    """HTTP Basic (client_secret_basic) when given, else the form's (client_secret_post)."""
    value = _basic(request)
    if value is None:
        return client_id, secret
    try:  # ValueError covers bad base64 (binascii.Error), bytes that are not UTF-8, and a header that is not
        # ASCII, which b64decode refuses with a bare ValueError (found in review: answered as a server error)
        user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
    except ValueError:
        return "", ""
    return unquote_plus(user), unquote_plus(password)


def _refuse(error: str, description: str, headers: dict[str, str] | None = None) -> JSONResponse:
    headers = {**(headers or {}), **({"www-authenticate": "Basic"} if error == "invalid_client" else {})}
    return JSONResponse({"error": error, "error_description": description}, status_code=_STATUS.get(error, 400),
                        headers=headers)
