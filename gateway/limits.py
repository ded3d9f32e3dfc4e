"""The gateway's side of the limiter: settings → limits, the rate-limit middleware, the gated
listening site, and the limiter's metrics.

Order matters: the connection gate runs at accept time (before HTTP), the middleware runs for
every request except health checks and metrics, and `error_middleware` wraps it so a 429 carries
the usual registry headers. Clients back off only on the words they know: containerd and
go-containerregistry read the `TOOMANYREQUESTS` body code, docker reads a `DENIED` body as
"pull access denied", so the code is exactly that.

`RateLimit-Limit/-Remaining/-Reset` are on every 429, and on admitted responses once the client
has used half of its burst, when they start to matter to it: three more headers on every
response cost about 2.5% of a manifest GET's CPU (callgrind), and the limiter's budget is 5%.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.typedefs import Middleware

from ocigate.limiter import (
    GateConfig,
    LimitConfig,
    Limiter,
    RateDecision,
    TrustedProxies,
    parse_networks,
)
from ocigate.limiter.gate import ConnectionGate, ProtocolFactory

from .authz import is_login_attempt, pause_refused_login
from .clients import CLIENTS, ClientIdentity
from .errors import Handler, oci_error
from .settings import Settings, env_name

log = logging.getLogger("ocigate.limits")

LIMITER = web.AppKey("limiter", Limiter)
METRICS = web.AppKey("metrics", list)  # more Prometheus text for `/metrics`: callables → str
_DECISION = "ocigate.rate_decision"


def limit_config(settings: Settings) -> LimitConfig:
    try:
        trusted = parse_networks(settings.trusted_proxies)
    except ValueError as exc:
        raise SystemExit(f"ocigate: invalid {env_name('trusted_proxies')}: {exc}") from None
    if settings.proxy_protocol and not trusted:
        raise SystemExit(
            f"ocigate: {env_name('proxy_protocol')} is on but {env_name('trusted_proxies')} is empty: "
            "a PROXY header names the client, so only the load balancers listed there may send one "
            "(set it to their addresses, e.g. 10.0.0.0/8)"
        )
    if not 0 <= settings.limit_ipv6_prefix <= 128:
        raise SystemExit(f"ocigate: invalid {env_name('limit_ipv6_prefix')}: {settings.limit_ipv6_prefix}")
    return LimitConfig(
        connections=max(settings.limit_connections, 0),
        rps=max(settings.limit_rps, 0.0),
        burst=max(settings.limit_burst, 0),
        ipv6_prefix=settings.limit_ipv6_prefix,
        trusted_proxies=trusted,
        proxy_protocol=settings.proxy_protocol,
        redis_url=settings.redis_url,
        lease_seconds=settings.limit_lease_seconds,
        share=max(settings.workers, 1),
    )


def install_limits(app: web.Application, settings: Settings) -> None:
    """Add the limiter to an application that is still being built."""
    config = limit_config(settings)
    limiter = Limiter(config)
    app[LIMITER] = limiter
    app[CLIENTS] = ClientIdentity(TrustedProxies(config.trusted_proxies), config.ipv6_prefix)
    if config.rps > 0:
        app.middlewares.append(_rate_middleware(limiter, config, app[CLIENTS]))
    app.setdefault(METRICS, [])

    async def _start(app: web.Application) -> None:
        await limiter.start()
        _log_limits(config)

    async def _stop(app: web.Application) -> None:
        await limiter.close()

    app.on_startup.append(_start)
    app.on_cleanup.append(_stop)


def gate_for(app: web.Application) -> GateConfig | None:
    """The accept-time gate of this app's listener; None when there is nothing to do there."""
    limiter = app[LIMITER]
    config = limiter.config
    # With rate limits on, the gate is worth it even without a connection limit: it works out
    # the client once per connection instead of once per request.
    if not limiter.limits_connections and not limiter.limits_rate and not config.proxy_protocol:
        return None
    return GateConfig(
        limiter, TrustedProxies(config.trusted_proxies), config.proxy_protocol, config.ipv6_prefix
    )


class GatedTCPSite(web.TCPSite):
    """`web.TCPSite` whose connections are served by `handler` (a protocol factory: aiohttp's
    server or a protocol of its kind), after passing the limiter's gate when there is one."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        gate: GateConfig | None,
        handler: ProtocolFactory,
        *,
        backlog: int = 128,
        reuse_address: bool | None = None,
        reuse_port: bool | None = None,
    ) -> None:
        super().__init__(
            runner, host, port, backlog=backlog, reuse_address=reuse_address, reuse_port=reuse_port
        )
        self._gate = gate
        self._handler = handler
        self._reuse = reuse_address, reuse_port

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with the runner, as TCPSite does
        factory = self._handler if self._gate is None else self._gate.factory(self._handler)
        server = await asyncio.get_running_loop().create_server(
            factory,
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=self._reuse[0],
            reuse_port=self._reuse[1],
        )
        self._server = server
        if server.sockets:
            self._bound_port = server.sockets[0].getsockname()[1]


def listening_site(
    runner: web.AppRunner,
    app: web.Application,
    host: str,
    port: int,
    handler: ProtocolFactory,
    *,
    backlog: int = 128,
    reuse_address: bool | None = None,
    reuse_port: bool | None = None,
) -> web.TCPSite:
    return GatedTCPSite(
        runner,
        host,
        port,
        gate_for(app),
        handler,
        backlog=backlog,
        reuse_address=reuse_address,
        reuse_port=reuse_port,
    )


def _rate_middleware(limiter: Limiter, config: LimitConfig, clients: ClientIdentity) -> Middleware:
    exempt = config.exempt_paths

    @web.middleware
    async def rate_limits(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.raw_path
        if path in exempt or ("?" in path and path.partition("?")[0] in exempt):
            return await handler(request)
        transport = request.transport
        gate = transport.get_protocol() if transport is not None else None
        if isinstance(gate, ConnectionGate) and not gate.forwarded_trusted:
            key = gate.client_key  # the common case, worked out once per connection
        else:
            key = clients.key(request)
        decision = limiter.hit_now(key) or await limiter.hit(key)
        if decision.allowed:
            request[_DECISION] = decision  # for handlers that stream: see apply_rate_headers
            response = await handler(request)
            if decision.half_used and not response.prepared:
                decision.apply(response.headers)
            return response
        headers = decision.headers()
        if is_login_attempt(request):
            await pause_refused_login()
        return oci_error(
            429,
            "TOOMANYREQUESTS",
            f"too many requests: retry after {headers['Retry-After']} s",
            {"limit": headers["RateLimit-Limit"], "burst": config.effective_burst},
            headers,
        )

    return rate_limits


def apply_rate_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`RateLimit-*` on a response that its handler prepares itself (a streamed blob), before
    `prepare()`. Other responses get them from the middleware. (An `on_response_prepare` signal
    would do it for all, but costs every response a dispatch; see loadtests/limiter_overhead.py.)"""
    decision: RateDecision | None = request.get(_DECISION)
    if decision is not None and decision.half_used:
        decision.apply(response.headers)


def metrics_text(app: web.Application) -> str:
    """The limiter's part of `/metrics` and what others added to `METRICS` (the authenticator)."""
    return "".join([app[LIMITER].metrics.render(), *(render() for render in app[METRICS])])


def _log_limits(config: LimitConfig) -> None:
    shared = "shared through Redis" if config.redis_url else "per process"
    if config.share > 1 and not config.redis_url:
        shared += f", each of {config.share} workers enforcing 1/{config.share} (OCIGATE_REDIS_URL: exact)"
    log.info(
        "limits per client: %s connections, %s requests/s (burst %s), %s",
        config.connections or "unlimited",
        f"{config.rps:g}" if config.rps else "unlimited",
        config.effective_burst if config.rps else "-",
        shared,
    )
