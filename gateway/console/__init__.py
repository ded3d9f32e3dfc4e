"""The web console: static files the gateway serves at `/ui/` on every host.

Plain ES modules, CSS and one HTML page (`static/`), no build step: the pages call the
management API (`/api/…`) with `fetch`, signed in with a console session. The files are read
once at start; `index.html` names the others under a version path (a hash of all of them), so
they are cached for good and a new version is fetched at once. Every answer carries a strict
Content-Security-Policy (scripts and styles from this origin only, no inline code, no framing)
and the other security headers, set here by the handlers: nothing is added on `/v2/`, whose
requests never reach this code.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from importlib import resources

from aiohttp import web

__all__ = ["install_console"]

PREFIX = "/ui/"
_VERSION_MARK = "{{version}}"
_ASSET = r"{version:[0-9a-f]{16}}/{path:[a-z0-9/_.-]+}"
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}
_IMMUTABLE = "public, max-age=31536000, immutable"
_REVALIDATE = "no-cache"


@dataclass(frozen=True, slots=True)
class _File:
    body: bytes
    content_type: str
    etag: str


def _file(name: str, body: bytes) -> _File:
    suffix = name[name.rfind(".") :]
    content_type = _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return _File(body, content_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


class ConsoleFiles:
    def __init__(self) -> None:
        root = resources.files(__name__).joinpath("static")
        found: dict[str, bytes] = {}
        pending = [("", root)]
        while pending:
            prefix, folder = pending.pop()
            for entry in folder.iterdir():
                if entry.is_dir():
                    pending.append((f"{prefix}{entry.name}/", entry))
                elif not entry.name.startswith("."):
                    found[prefix + entry.name] = entry.read_bytes()
        digest = hashlib.sha256()
        for name in sorted(found):
            digest.update(name.encode() + b"\0" + found[name] + b"\0")
        self.version = digest.hexdigest()[:16]
        index = found.pop("index.html").replace(_VERSION_MARK.encode(), self.version.encode())
        self.index = _file("index.html", index)
        self.assets = {name: _file(name, body) for name, body in found.items()}

    async def redirect(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=302, headers={**_SECURITY_HEADERS, "Location": PREFIX})

    async def serve_index(self, request: web.Request) -> web.StreamResponse:
        return _answer(request, self.index, _REVALIDATE)

    async def serve_asset(self, request: web.Request) -> web.StreamResponse:
        found = self.assets.get(request.match_info["path"])
        if found is None:
            return web.Response(status=404, text="not found", headers=_SECURITY_HEADERS)
        # a page of another version (a replica not yet upgraded) still gets the file, uncached
        same = request.match_info["version"] == self.version
        return _answer(request, found, _IMMUTABLE if same else _REVALIDATE)


def _answer(request: web.Request, found: _File, cache_control: str) -> web.Response:
    headers = {**_SECURITY_HEADERS, "Cache-Control": cache_control, "ETag": found.etag}
    if found.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    # aiohttp sends no body to a HEAD request, and the GET's Content-Length
    return web.Response(body=found.body, headers=headers, content_type=found.content_type, charset="utf-8")


def install_console(app: web.Application) -> None:
    files = ConsoleFiles()
    for method in ("GET", "HEAD"):
        app.router.add_route(method, "/ui", files.redirect)
        app.router.add_route(method, PREFIX, files.serve_index)
        app.router.add_route(method, PREFIX + _ASSET, files.serve_asset)
