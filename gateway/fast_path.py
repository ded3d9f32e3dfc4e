"""`/v2/…` requests straight to their handler, past aiohttp's per-request routing.

For every request `Application._handle` walks the path's parents through the router's index,
builds, fills and freezes a match info and looks up the cached middleware chain: about a tenth of
a manifest GET's instructions (callgrind), for a route that is always the same one catch-all.
Here a request whose path the router would give to that catch-all gets a match info made once
(frozen, the same route and app: `request.app`, `request.match_info.route` and the metrics'
route labels read as before) and goes through the same middlewares, composed once. Anything
else (and a request with `Expect`, whose handling is the route's) goes the usual way.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware
from aiohttp.web_urldispatcher import UrlMappingMatchInfo

if TYPE_CHECKING:
    from .errors import Handler

__all__ = ["v2_fast_path"]

_BASE, _TAIL = "/v2", "/v2/{tail}"


def v2_fast_path(app: web.Application) -> Handler:
    """A request handler for `web.Server` in place of `app._handle` (the app frozen: started)."""
    fallback = app._handle
    infos: dict[str, UrlMappingMatchInfo] = {}
    for resource in app.router.resources():
        if resource.canonical in (_BASE, _TAIL):
            (route,) = resource  # one "*" route each (app.py)
            info = UrlMappingMatchInfo({}, route)
            info.add_app(app)
            info.freeze()
            infos[resource.canonical] = info
        elif resource.canonical.startswith(_BASE) or not resource.canonical.startswith("/"):
            raise RuntimeError(f"v2_fast_path: a route the router might prefer: {resource.canonical}")
    base, tail = infos[_BASE], infos[_TAIL]
    handler: Handler = base.handler  # the middlewares in Application._handle's order
    for middleware in reversed(app.middlewares):
        handler = _layer(middleware, handler)
    expect = hdrs.EXPECT

    async def handle(request: web.Request) -> web.StreamResponse:  # app._make_request made it
        path = request.rel_url.path_safe  # what the router matches on
        if path.startswith("/v2/"):
            info = tail
        elif path == _BASE:
            info = base
        else:
            return await fallback(request)
        if expect in request.headers:
            return await fallback(request)
        request._match_info = info
        return await handler(request)

    return handle


def _layer(middleware: Middleware, handler: Handler) -> Handler:
    """`middleware` around `handler`: a plain call (aiohttp's keyword partial costs a dict)."""

    def layer(request: web.Request) -> Awaitable[web.StreamResponse]:
        return middleware(request, handler)

    return layer
