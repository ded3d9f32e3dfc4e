"""The console's files at /ui/ on every host: security and cache headers, versioned assets,
and nothing added to the registry's /v2/ answers."""

from __future__ import annotations

import re
from pathlib import Path

import requests

from tests.servers import DOMAIN, Gateway

STATIC = Path(__file__).resolve().parents[2] / "gateway" / "console" / "static"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _get(gateway: Gateway, path: str, host: str | None = None, **headers: str) -> requests.Response:
    if host is not None:
        headers["Host"] = f"{host}:{gateway.port}"
    return requests.get(gateway.url + path, headers=headers, allow_redirects=False, timeout=30)


def _assert_locked_down(response: requests.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value, name
    policy = dict(
        part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"  # no inline scripts, no eval
    assert policy["style-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"


def test_the_console_is_served_on_every_host_with_strict_headers(gateway: Gateway) -> None:
    for host in (None, f"alpha.{DOMAIN}", "anything.example"):
        page = _get(gateway, "/ui/", host)
        assert page.status_code == 200
        assert page.headers["Content-Type"] == "text/html; charset=utf-8"
        assert page.headers["Cache-Control"] == "no-cache"
        _assert_locked_down(page)
        assert "<script" in page.text
        assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)  # no inline script
        assert " style=" not in page.text
    moved = _get(gateway, "/ui")
    assert moved.status_code == 302
    assert moved.headers["Location"] == "/ui/"


def test_assets_are_versioned_and_cached_for_good(gateway: Gateway) -> None:
    page = _get(gateway, "/ui/")
    linked = re.findall(r'(?:src|href)="(/ui/[0-9a-f]{16}/[^"]+)"', page.text)
    assert {path.rsplit("/", 1)[1] for path in linked} == {"app.js", "console.css", "favicon.svg"}
    version = linked[0].split("/")[2]
    every_file = [path for path in STATIC.rglob("*") if path.is_file() and path.name != "index.html"]
    assert len(every_file) > 8
    for path in every_file:
        name = path.relative_to(STATIC).as_posix()
        response = _get(gateway, f"/ui/{version}/{name}")
        assert response.status_code == 200, name
        assert response.content == path.read_bytes()
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        _assert_locked_down(response)
        if name.endswith(".js"):
            assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
    # the browser's revalidation of the page costs no body
    unchanged = _get(gateway, "/ui/", **{"If-None-Match": page.headers["ETag"]})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    # a page of another version (a replica not yet upgraded) still gets files, not cached for good
    other = _get(gateway, "/ui/0000000000000000/js/app.js")
    assert other.status_code == 200
    assert other.headers["Cache-Control"] == "no-cache"
    for missing in (f"/ui/{version}/js/nothing.js", f"/ui/{version}/../README.md", "/ui/x/js/app.js"):
        assert _get(gateway, missing).status_code == 404, missing


def test_the_registry_api_gets_none_of_it(gateway: Gateway) -> None:
    for path in ("/v2/", "/v2/test/x/manifests/latest", "/token"):
        response = _get(gateway, path, f"alpha.{DOMAIN}")
        assert response.status_code in (401, 404)
        assert "Content-Security-Policy" not in response.headers
        assert "X-Frame-Options" not in response.headers
