"""The limiter the gateway talks to: rates and connection slots, shared or per process.

With Redis, counts are shared; without it, or while it is unreachable, each process counts on
its own with its share of the limits (`LimitConfig.local_share`: 1/share, `share` being the
number of processes that count apart). A Redis failure never blocks
traffic and never lifts the limits: the request or connection at hand is decided locally, the
switch is logged once and shown in the metrics, and Redis is tried again every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import socket
import time
import uuid

from .config import LimitConfig
from .gcra import RateDecision, RateLimit
from .memory import MemoryBackend
from .metrics import LimiterMetrics
from .redis_backend import RedisBackend

log = logging.getLogger("ocigate.limiter")

_RETRY_REDIS_AFTER = 2.0  # seconds of per-process limits before Redis is tried again


class ConnectionLease:
    """One connection's slot; `release()` gives it back (idempotent)."""

    __slots__ = ("_limiter", "key", "member")

    def __init__(self, limiter: Limiter, key: str, member: str | None) -> None:
        self._limiter: Limiter | None = limiter
        self.key = key
        self.member = member  # None: held in process memory

    def release(self) -> None:
        limiter, self._limiter = self._limiter, None
        if limiter is not None:
            limiter._release(self)


class Limiter:
    def __init__(
        self,
        config: LimitConfig,
        *,
        redis_url: str | None = None,
        share: int = 1,
        metrics: LimiterMetrics | None = None,
    ) -> None:
        self.config = config
        self.redis_url = redis_url
        self.share = share
        self.metrics = metrics or LimiterMetrics()
        local = config.local_share(share)
        self.local = MemoryBackend(
            RateLimit(local.rps, local.effective_burst) if local.rps > 0 else None, local.connections
        )
        self.shared: RedisBackend | None = None
        if redis_url:
            self.shared = RedisBackend(
                redis_url,
                RateLimit(config.rps, config.effective_burst) if config.rps > 0 else None,
                config.connections,
                config.lease_seconds,
            )
            self.shared.on_error = self._redis_failed
        self.limits_rate = config.rps > 0
        self.limits_connections = config.connections > 0
        self._holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._sequence = itertools.count()
        self._leases: dict[str, set[str]] = {}  # Redis leases this process holds, by client
        self._degraded = False  # Redis failed lately: decide locally until _degraded_until
        self._degraded_until = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._refresher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.shared is None:
            return
        try:
            await self.shared.ping()
        except Exception as exc:
            self._redis_failed(exc)
        else:
            self.metrics.redis_up = 1
            log.info("limits shared through Redis")
        self._refresher = asyncio.get_running_loop().create_task(self._refresh_forever())

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=1)
        if self.shared is not None:
            await self.shared.close()

    @property
    def shared_now(self) -> bool:
        """True when decisions go to Redis (so they are awaited), False when made locally."""
        if self._degraded and time.monotonic() >= self._degraded_until:
            self._degraded = False  # time to try Redis again
        return self.shared is not None and not self._degraded

    # -- rates ------------------------------------------------------------------------------

    async def hit(self, key: str) -> RateDecision:
        """Count one request of `key` and say whether it may pass."""
        if self.shared_now:
            assert self.shared is not None
            credited = self.shared.hit_on_credit(key)
            if credited is not None:
                self.metrics.requests_admitted += 1
                return credited
            try:
                decision = await self.shared.hit(key)
            except Exception as exc:
                self._redis_failed(exc)
            else:
                if not self.metrics.redis_up:
                    self._redis_answered()
                self._count(decision)
                return decision
        decision = self.local.hit(key)
        self._count(decision)
        return decision

    def hit_now(self, key: str) -> RateDecision | None:
        """The decision when it needs no waiting (in-process, or on credit); None: `await hit()`."""
        shared = self.shared
        if shared is None or (self._degraded and not self.shared_now):
            decision = self.local.hit(key)
        else:
            credited = shared.hit_on_credit(key)
            if credited is None:
                return None
            decision = credited
        if decision.allowed:
            self.metrics.requests_admitted += 1
        else:
            self.metrics.requests_limited += 1
        return decision

    def hit_local(self, key: str) -> RateDecision:
        decision = self.local.hit(key)
        self._count(decision)
        return decision

    def _count(self, decision: RateDecision) -> None:
        if decision.allowed:
            self.metrics.requests_admitted += 1
        else:
            self.metrics.requests_limited += 1

    # -- connections --------------------------------------------------------------------------

    def acquire_local(self, key: str) -> ConnectionLease | None:
        """A slot from process memory, decided at once (no Redis, or Redis unreachable)."""
        if not self.local.acquire(key):
            self._refused()
            return None
        return self._admitted(ConnectionLease(self, key, None))

    async def acquire(self, key: str) -> ConnectionLease | None:
        """A slot for a new connection of `key`, or None when it has too many open."""
        if not self.shared_now:
            return self.acquire_local(key)
        assert self.shared is not None
        member = f"{self._holder}:{next(self._sequence)}"
        try:
            admitted = await self.shared.acquire(key, member)
        except Exception as exc:
            self._redis_failed(exc)
            return self.acquire_local(key)
        if not self.metrics.redis_up:
            self._redis_answered()
        if not admitted:
            self._refused()
            return None
        self._leases.setdefault(key, set()).add(member)
        return self._admitted(ConnectionLease(self, key, member))

    def _admitted(self, lease: ConnectionLease) -> ConnectionLease:
        self.metrics.connections_admitted += 1
        self.metrics.connections_open += 1
        return lease

    def _refused(self) -> None:
        self.metrics.connections_refused += 1

    def _release(self, lease: ConnectionLease) -> None:
        self.metrics.connections_open -= 1
        if lease.member is None:
            self.local.release(lease.key)
            return
        members = self._leases.get(lease.key)
        if members is not None:
            members.discard(lease.member)
            if not members:
                del self._leases[lease.key]
        if self.shared is not None and self.shared_now:
            task = asyncio.get_running_loop().create_task(self._release_shared(lease.key, lease.member))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # else: Redis is away; the lease expires there on its own

    async def _release_shared(self, key: str, member: str) -> None:
        assert self.shared is not None
        try:
            await self.shared.release(key, member)
        except Exception as exc:
            self._redis_failed(exc)

    async def _refresh_forever(self) -> None:
        assert self.shared is not None
        period = max(self.config.lease_seconds / 3, 0.2)
        while True:
            await asyncio.sleep(period if self.shared_now else min(period, _RETRY_REDIS_AFTER))
            leases = [(key, tuple(members)) for key, members in self._leases.items()]
            try:
                if leases:
                    await self.shared.refresh(leases)
                else:
                    await self.shared.ping()
            except Exception as exc:
                self._redis_failed(exc)
            else:
                self._redis_answered()

    # -- Redis health -------------------------------------------------------------------------

    def _redis_failed(self, exc: BaseException) -> None:
        self.metrics.redis_errors += 1
        if not self._degraded:
            if self.metrics.redis_up or self.metrics.redis_fallbacks == 0:
                log.warning(
                    "limiter: Redis unreachable (%s): per-process limits until it answers",
                    str(exc) or type(exc).__name__,
                )
                self.metrics.redis_fallbacks += 1
            self.metrics.redis_up = 0
        self._degraded = True
        self._degraded_until = time.monotonic() + _RETRY_REDIS_AFTER

    def _redis_answered(self) -> None:
        if not self.metrics.redis_up:
            log.warning("limiter: Redis answers again: limits shared across processes")
            self.metrics.redis_up = 1
            self._degraded = False
