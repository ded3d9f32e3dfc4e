"""Health endpoints: `/healthz` (the process answers) and `/readyz` (it can serve: the metadata
store and the blob store answer now, and it is not draining)."""

from __future__ import annotations

from aiohttp import web

from ocigate.storage.registries import Registries

from .drain import Drain


def install_health(app: web.Application, registries: Registries, drain: Drain) -> None:
    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(request: web.Request) -> web.Response:
        if drain.draining:  # first: a load balancer must see it however slow the stores are
            return web.json_response({"status": "draining"}, status=503)
        checks = await registries.check()
        ready = all(result == "ok" for result in checks.values())
        # not logged: the stores log their outages once each; probes come every few seconds
        return web.json_response(
            {"status": "ok" if ready else "unavailable", **checks}, status=200 if ready else 503
        )

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
