"""The aiohttp application: the `/v2/` dispatcher, `/token`, the management API, health checks,
metrics, lifecycle."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from ocigate.auth.service import Authenticator, RegistryRef
from ocigate.storage.errors import RegistryUnknown
from ocigate.storage.registries import DEFAULT_REGISTRY, Registries
from ocigate.storage.registry import Registry
from ocigate.storage.usage import UsageCounters

from .authz import ACCESS, ANONYMOUS_ALLOWED, AUTHENTICATOR, BearerDecisions, Denied, authorize
from .clients import client_address
from .console import install_console
from .drain import DRAIN, Drain
from .errors import error_middleware, oci_error
from .gc import install_gc_schedule
from .handlers import blobs, listings, manifests, token, uploads
from .health import install_health
from .hosts import registry_name_for_host
from .http import BODY_TIMEOUT
from .limits import LIMITER, install_limits
from .management import install_management
from .metric_feeds import exporter_for
from .metrics import install_metrics
from .request_stats import ENDPOINT, REGISTRY, RequestStats
from .routes import Endpoint, parse_route
from .settings import Settings
from .subnets import address_allowed, has_allow_list
from .tracing import install_tracing
from .upkeep import UploadReclaim, install_upkeep
from .usage import install_usage

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
REQUEST_STATS = web.AppKey("request_stats", RequestStats)  # with OCIGATE_METRICS on


class DistributionApi:
    """Every `/v2/…` request: route it, find the registry its Host names, call the handler."""

    def __init__(
        self, registries: Registries, domain: str | None, authenticator: Authenticator | None
    ) -> None:
        self._registries = registries
        self._domain = domain
        self._authenticator = authenticator
        self._decisions = BearerDecisions(authenticator) if authenticator is not None else None
        # one per bound registry (Registries.bind: one object per record, so never stale)
        self._refs: dict[Registry, RegistryRef] = {}

    async def registry_for(self, request: web.Request) -> tuple[Registry, RegistryRef]:
        """The registry the Host names, once the client's address may reach it."""
        name = request[REGISTRY] = registry_name_for_host(request.host, self._domain, DEFAULT_REGISTRY)
        registry = await self._registries.resolve(name)
        if registry is None:
            raise RegistryUnknown(name)
        record = registry.record
        properties = record.properties
        if has_allow_list(properties) and not address_allowed(properties, client_address(request)):
            raise Denied(message="this registry does not accept requests from your network")
        ref = self._refs.get(registry)
        if ref is None:
            if len(self._refs) >= 1024:
                self._refs.clear()
            service = f"{record.name}.{self._domain}" if self._domain else record.name
            ref = self._refs[registry] = RegistryRef(record.id, record.account_id, service)
        return registry, ref

    async def token(self, request: web.Request) -> web.StreamResponse:
        if self._authenticator is None:
            return oci_error(404, "UNSUPPORTED", "authentication is off (OCIGATE_AUTH=none)")
        _, ref = await self.registry_for(request)
        return await token.issue(request, self._authenticator, ref)

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        route = parse_route(request.raw_path)
        if route is None:
            return oci_error(404, "NOT_FOUND", "no such endpoint", request.path)
        request[ENDPOINT] = route.endpoint
        handler = _HANDLERS.get((route.endpoint, request.method))
        if handler is None:
            return oci_error(
                405,
                "UNSUPPORTED",
                f"{request.method} is not supported here",
                headers={"Allow": _ALLOWED[route.endpoint]},
            )
        registry, ref = await self.registry_for(request)
        if self._authenticator is None:
            request[ACCESS] = ANONYMOUS_ALLOWED
        else:
            request[ACCESS] = await authorize(request, self._authenticator, ref, route, self._decisions)
        return await handler(request, registry, route.repository, route.argument)


def build_app(
    settings: Settings, registries: Registries, authenticator: Authenticator | None = None
) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    app[REGISTRIES] = registries
    app[BODY_TIMEOUT] = settings.http.body_timeout
    api = DistributionApi(registries, settings.server.domain, authenticator)
    app.router.add_route("GET", "/token", api.token)
    app.router.add_route("POST", "/token", api.token)
    # the bound method, not the instance: aiohttp wraps a callable that is not a coroutine
    # function in a per-request shim that checks what it returned
    app.router.add_route("*", "/v2", api.__call__)
    app.router.add_route("*", r"/v2/{tail:[\s\S]*}", api.__call__)  # [\s\S]: %0A too
    app[DRAIN] = Drain(settings.drain.delay, settings.drain.timeout)
    install_health(app, registries, app[DRAIN])
    usage = UsageCounters(registries.metadata.views)
    install_usage(app, usage)
    install_management(app, settings, registries, authenticator, usage)
    install_console(app)
    install_limits(app, settings)
    uploads = settings.storage.uploads
    install_upkeep(
        app, registries, UploadReclaim(uploads.ttl, uploads.pressure_ttl, settings.storage.min_free_space)
    )
    install_gc_schedule(app, registries, settings.storage.gc.grace)
    if authenticator is not None:
        app[AUTHENTICATOR] = authenticator
    stats = RequestStats() if settings.server.metrics else None
    if stats is not None:
        app[REQUEST_STATS] = stats
    exporter = exporter_for(
        registries, app[LIMITER].metrics, authenticator, stats, settings.server.metrics_usage_interval
    )
    install_metrics(app, exporter)
    install_tracing(app)

    async def _close(app: web.Application) -> None:
        if authenticator is not None:
            await authenticator.close()
        await registries.close()

    app.on_cleanup.append(_close)
    return app
