"""`/metrics`: the figures of every part of the gateway in Prometheus' text format, each part
rendering its own lines (the limiter, the authenticator, the stores)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aiohttp import web

Render = Callable[[], str]


def install_metrics(app: web.Application, parts: Sequence[Render]) -> None:
    async def metrics(request: web.Request) -> web.Response:
        text = "".join(render() for render in parts)
        return web.Response(text=text, content_type="text/plain", charset="utf-8")

    app.router.add_get("/metrics", metrics)
