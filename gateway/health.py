"""Health endpoints: `/healthz` (the process answers) and `/readyz` (it can serve: the metadata
store and the blob store answer now)."""

from __future__ import annotations

from aiohttp import web

from ocigate.storage.registries import Registries


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

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
