"""GraphiQL from careloop's own files (development only).

- The page loads React, ReactDOM and GraphiQL from /graphql/assets/, never from another host, each with an
  ``integrity`` that matches what is served; the vendored files are the pinned ones (VERSIONS.md).
- The page's Content-Security-Policy allows scripts, connections, fonts and images from this server only.
- Production serves neither the page nor its files.

That it renders in a browser without the internet, and that a login fills the Authorization header, is in
``test_browser.py``.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
from html.parser import HTMLParser

import httpx
import pytest

from app import graphiql
from app.main import create_app
from core.settings import Settings
from resolvers.context import Services

HTML = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


class Assets(HTMLParser):
    """The page's scripts and stylesheets: (url, integrity)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script":
            assert named.get("src"), "no inline script: the CSP would block it"
            self.found.append((named["src"] or "", named.get("integrity")))
        elif tag == "link" and named.get("rel") == "stylesheet":
            self.found.append((named.get("href") or "", named.get("integrity")))


def sri(content: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(content).digest()).decode()


async def test_the_page_loads_only_its_own_files_each_with_its_integrity(client: httpx.AsyncClient) -> None:
    page = await client.get("/graphql", headers=HTML)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "unpkg" not in page.text and "://" not in page.text
    parser = Assets()
    parser.feed(page.text)
    assert [url for url, _ in parser.found] == [f"graphql/assets/{name}" for name in (
        "graphiql.min.css", "careloop-graphiql.css", "react.production.min.js", "react-dom.production.min.js",
        "graphiql.min.js", "careloop-graphiql.js")]
    for url, integrity in parser.found:
        asset = await client.get(f"/{url}")
        assert asset.status_code == 200
        assert asset.headers["content-type"].startswith("text/css" if url.endswith(".css") else "text/javascript")
        assert integrity == sri(asset.content), url


async def test_the_page_allows_nothing_but_this_server(client: httpx.AsyncClient) -> None:
    policy = (await client.get("/graphql", headers=HTML)).headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"  # no inline script, no eval
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert not [value for value in directives.values() if "http" in value or "*" in value]


def test_the_vendored_files_are_the_pinned_ones() -> None:
    versions = (graphiql.STATIC / "VERSIONS.md").read_text()
    listed = dict(re.findall(r"^\| `([\w.-]+)` \|.*\| `(sha384-[\w+/=]+)` \|$", versions, re.MULTILINE))
    assert listed == graphiql.VENDORED
    for name, pin in graphiql.VENDORED.items():
        assert sri((graphiql.STATIC / name).read_bytes()) == pin, name


@pytest.mark.parametrize("path", ["/graphql/assets/VERSIONS.md", "/graphql/assets/LICENSE.react",
                                  "/graphql/assets/..%2Fgraphiql.py", "/graphql/assets/nothing.js"])
async def test_only_the_listed_files_are_served(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 404


async def test_production_serves_no_ide_and_no_assets(database: str, settings: Settings,
                                                      services: Services) -> None:
    app = create_app(dataclasses.replace(settings, environment="production"), services, manage_database=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://careloop.test") as http:
        page = await http.get("/graphql", headers=HTML)
        assets = [await http.get(f"/graphql/assets/{name}") for name in graphiql.integrity()]
    assert page.status_code == 405 and "graphiql" not in page.text.lower()
    assert [response.status_code for response in assets] == [404] * len(assets)
