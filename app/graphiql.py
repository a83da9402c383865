"""GraphiQL, served whole by careloop in development: React, ReactDOM and GraphiQL are vendored in
``app/static/graphiql`` (versions and integrity in its VERSIONS.md), so the IDE works on a network without
internet, and the page's Content-Security-Policy allows nothing but this server."""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

STATIC = Path(__file__).resolve().parent / "static" / "graphiql"
ASSETS_PATH = "/graphql/assets"

# The vendored files as npm published them (unchanged: their sha384 is the one unpkg serves them with), in the
# order the page loads them. A file that differs from its pin is refused by the browser.
VENDORED = {
    "react.production.min.js": "sha384-tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8",
    "react-dom.production.min.js": "sha384-bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh",
    "graphiql.min.js": "sha384-HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie",
    "graphiql.min.css": "sha384-Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM",
}
OWN = ("careloop-graphiql.js", "careloop-graphiql.css")  # the page's script and style
MEDIA_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}

# Scripts, stylesheets, fonts and requests from this server only; fonts and images may also be data: URIs
# (GraphiQL's CSS carries them that way). No inline script, no eval, no framing. Inline <style> is allowed:
# GraphiQL's dialogs and menus inject one (react-remove-scroll-bar); with images, fonts and connections held
# to this server, a style cannot send anything elsewhere.
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data:",
    "font-src 'self' data:", "connect-src 'self'", "object-src 'none'", "base-uri 'none'",
    "form-action 'none'", "frame-ancestors 'none'",
))


def sha384(path: Path) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(path.read_bytes()).digest()).decode()


@cache
def integrity() -> dict[str, str]:
    """Every served file's integrity: the vendored files' pins, and our own files' as they are."""
    return {**VENDORED, **{name: sha384(STATIC / name) for name in OWN}}


def _tag(name: str) -> str:
    # Relative to /graphql, so the page also works behind a proxy that serves it under a prefix.
    src = f"graphql/assets/{name}"
    if name.endswith(".css"):
        return f'<link rel="stylesheet" href="{src}" integrity="{integrity()[name]}">'
    return f'<script src="{src}" integrity="{integrity()[name]}"></script>'


@cache
def page_html() -> str:
    styles = [name for name in (*VENDORED, *OWN) if name.endswith(".css")]
    scripts = [name for name in (*VENDORED, *OWN) if name.endswith(".js")]
    return "\n".join((
        "<!doctype html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        "<title>careloop GraphiQL</title>",
        *(_tag(name) for name in styles),
        "</head>",
        "<body>",
        '<div id="graphiql">Loading GraphiQL…</div>',
        *(_tag(name) for name in scripts),
        "</body>",
        "</html>",
    ))


def page() -> HTMLResponse:
    return HTMLResponse(page_html(), headers={"content-security-policy": CONTENT_SECURITY_POLICY})


async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in integrity():  # only the listed files: no path from the URL reaches the file system
        return Response(status_code=404)
    return FileResponse(STATIC / name, media_type=MEDIA_TYPES[Path(name).suffix])


def routes() -> list[Route]:
    """GraphiQL's files, in development only (production has no IDE)."""
    return [Route(ASSETS_PATH + "/{name}", asset, methods=["GET"])]
