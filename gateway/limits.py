"""The gateway's side of the limiter: the rate-limit middleware and the accept-time gate of the
listener (server.py).

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

import logging

from aiohttp import web
from aiohttp.typedefs import Middleware

from ocigate.limiter import GateConfig, LimitConfig, Limiter, RateDecision, TrustedProxies
from ocigate.limiter.gate import ConnectionGate

from .authz import is_login_attempt, pause_refused_login
from .clients import CLIENTS, ClientIdentity
from .errors import Handler, oci_error
from .settings import Settings

log = logging.getLogger("ocigate.limits")

LIMITER = web.AppKey("limiter", Limiter)
GATE = web.AppKey("gate", GateConfig)  # absent: nothing to do at accept time
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # health and metrics are never limited
_DECISION = "ocigate.rate_decision"


def install_limits(app: web.Application, settings: Settings) -> None:
    """Add the limiter to an application that is still being built: the rate middleware, and the
    gate its listener puts in front of every connection (server.py)."""
    config, proxies = settings.limits, settings.proxies
    limiter = Limiter(config, redis_url=settings.redis.shared_url, share=settings.server.workers)
    trusted = TrustedProxies(proxies.trusted_proxies)
    app[LIMITER] = limiter
    app[CLIENTS] = ClientIdentity(trusted, config.ipv6_prefix)
    if config.rps > 0:
        app.middlewares.append(_rate_middleware(limiter, config, app[CLIENTS]))
    # With rate limits on, the gate is worth it even without a connection limit: it works out
    # the client once per connection instead of once per request.
    if limiter.limits_connections or limiter.limits_rate or proxies.proxy_protocol:
        app[GATE] = GateConfig(limiter, trusted, proxies.proxy_protocol, config.ipv6_prefix)

    async def _start(app: web.Application) -> None:
        await limiter.start()
        _log_limits(limiter)

    async def _stop(app: web.Application) -> None:
        await limiter.close()

    app.on_startup.append(_start)
    app.on_cleanup.append(_stop)


def _rate_middleware(limiter: Limiter, config: LimitConfig, clients: ClientIdentity) -> Middleware:
    exempt = EXEMPT_PATHS

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


def _log_limits(limiter: Limiter) -> None:
    config, share = limiter.config, limiter.share
    shared = "shared through Redis" if limiter.redis_url else "per process"
    if share > 1 and not limiter.redis_url:
        shared += f", each of {share} workers enforcing 1/{share} (OCIGATE_REDIS_URL: exact)"
    log.info(
        "limits per client: %s connections, %s requests/s (burst %s), %s",
        config.connections or "unlimited",
        f"{config.rps:g}" if config.rps else "unlimited",
        config.effective_burst if config.rps else "-",
        shared,
    )
