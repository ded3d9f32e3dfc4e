"""Operations endpoints: `/healthz` (the process answers), `/readyz` (it can serve: the metadata
store and the blob store answer now) and `/metrics` (the limiter's and the stores' figures)."""

from __future__ import annotations

from aiohttp import web

from ocigate.storage.health import render
from ocigate.storage.registries import Registries

from .limits import metrics_text


def install_health(app: web.Application, registries: Registries) -> None:
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        checks = await registries.check()
        ready = all(result == "ok" for result in checks.values())
        # not logged: the stores log their outages once each; probes come every few seconds
        return web.json_response(
            {"status": "ok" if ready else "unavailable", **checks}, status=200 if ready else 503
        )

    async def metrics(request: web.Request) -> web.Response:
        text = metrics_text(request.app) + render(registries.health)
        return web.Response(text=text, content_type="text/plain", charset="utf-8")

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
