"""The aiohttp application: the `/v2/` dispatcher, health checks, lifecycle."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from storage.errors import RegistryUnknown
from storage.registries import DEFAULT_REGISTRY, Registries
from storage.registry import Registry

from .errors import error_middleware, oci_error
from .handlers import blobs, listings, manifests, uploads
from .hosts import registry_name_for_host
from .routes import Endpoint, parse_route
from .settings import Settings

log = logging.getLogger("ocigate.gateway")

V2Handler = Callable[[web.Request, Registry, str, str], Awaitable[web.StreamResponse]]

_HANDLERS: dict[tuple[Endpoint, str], V2Handler] = {
    (Endpoint.BASE, "GET"): listings.base,
    (Endpoint.BASE, "HEAD"): listings.base,
    (Endpoint.CATALOG, "GET"): listings.catalog,
    (Endpoint.TAGS, "GET"): listings.tags,
    (Endpoint.MANIFEST, "GET"): manifests.head_or_get,
    (Endpoint.MANIFEST, "HEAD"): manifests.head_or_get,
    (Endpoint.MANIFEST, "PUT"): manifests.put,
    (Endpoint.MANIFEST, "DELETE"): manifests.delete,
    (Endpoint.BLOB, "GET"): blobs.head_or_get,
    (Endpoint.BLOB, "HEAD"): blobs.head_or_get,
    (Endpoint.BLOB, "DELETE"): blobs.delete,
    (Endpoint.UPLOADS, "POST"): uploads.start,
    (Endpoint.UPLOAD, "PATCH"): uploads.patch,
    (Endpoint.UPLOAD, "PUT"): uploads.put,
    (Endpoint.UPLOAD, "GET"): uploads.status,
    (Endpoint.UPLOAD, "DELETE"): uploads.cancel,
    (Endpoint.REFERRERS, "GET"): listings.referrers,
}

_ALLOWED: dict[Endpoint, str] = {}
for _endpoint, _method in _HANDLERS:
    _ALLOWED[_endpoint] = ", ".join(filter(None, (_ALLOWED.get(_endpoint), _method)))

REGISTRIES = web.AppKey("registries", Registries)


class DistributionApi:
    """Every `/v2/…` request: route it, find the registry its Host names, call the handler."""

    def __init__(self, registries: Registries, domain: str | None) -> None:
        self._registries = registries
        self._domain = domain

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        route = parse_route(request.raw_path)
        if route is None:
            return oci_error(404, "NOT_FOUND", "no such endpoint", request.path)
        handler = _HANDLERS.get((route.endpoint, request.method))
        if handler is None:
            return oci_error(
                405,
                "UNSUPPORTED",
                f"{request.method} is not supported here",
                headers={"Allow": _ALLOWED[route.endpoint]},
            )
        name = registry_name_for_host(request.host, self._domain, DEFAULT_REGISTRY)
        registry = await self._registries.resolve(name)
        if registry is None:
            raise RegistryUnknown(name)
        return await handler(request, registry, route.repository, route.argument)


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    registries = request.app[REGISTRIES]
    try:
        await registries.metadata.get_registry(DEFAULT_REGISTRY)
    except Exception as exc:
        log.warning("readiness check failed: %s", exc)
        return web.json_response({"status": "unavailable"}, status=503)
    return web.json_response({"status": "ok"})


def build_app(settings: Settings, registries: Registries) -> web.Application:
    app = web.Application(middlewares=[error_middleware], handler_args={"max_field_size": 16384})
    app[REGISTRIES] = registries
    api = DistributionApi(registries, settings.domain)
    app.router.add_route("*", "/v2", api)
    app.router.add_route("*", "/v2/{tail:.*}", api)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)

    async def _close(app: web.Application) -> None:
        await registries.close()

    app.on_cleanup.append(_close)
    return app
