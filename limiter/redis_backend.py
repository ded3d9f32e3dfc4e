"""Limiter state shared through Redis, so limits hold across workers and replicas.

Rates: the GCRA of `gcra.py` as one Lua script, so read-modify-write is atomic. Requests that
arrive while a call is in flight are batched into the next call (one script run for many
clients, with a count per client): one round trip serves a whole event-loop tick of requests.
And a client far from its limit is admitted on credit: when Redis answers that it may still send
R requests at once, this process admits up to R/8 more without asking, and charges them to
Redis with the next batch (within 50 ms). Near the limit R is small, there is no credit, and
every request is decided by Redis: exact where it matters, one round trip per batch elsewhere.

Connections: one lease per open connection, a sorted-set member scored by its expiry. The
process holding it refreshes all its leases every `lease_seconds / 3`; leases of a replica that
died expire on their own, so counts heal without anyone cleaning up (a bare counter would leak
forever). Both scripts read the clock with `TIME` on the Redis server, so replicas' clocks do not
need to agree. Keys of one batch may hash to different Redis Cluster slots: use a plain Redis
(or a primary with replicas), not Cluster.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence

import redis.asyncio as aioredis

from .gcra import RateDecision, RateLimit

_MAX_IN_FLIGHT = 2  # concurrent batch calls; more queue up and ride the next batch
_CREDIT_SHARE = 8  # a process may admit 1/8 of a client's remaining burst before asking again
_CHARGE_DELAY = 0.05  # seconds before requests admitted on credit are counted in Redis
_MAX_CREDITS = 65536
_REFRESH_CHUNK = 500  # client keys per refresh call

_GCRA_BATCH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local out = {}
for i, key in ipairs(KEYS) do
  local cost = tonumber(ARGV[2 * i + 1])
  local charged = tonumber(ARGV[2 * i + 2])
  local tat = tonumber(redis.call('GET', key))
  if not tat or tat < now then tat = now end
  tat = tat + charged * interval
  local room = math.floor((tolerance - (tat - now)) / interval + 1e-9) + 1
  if room < 0 then room = 0 end
  local admitted = math.min(cost, room)
  tat = tat + admitted * interval
  local backlog = tat - now
  if admitted > 0 or charged > 0 then
    redis.call('SET', key, string.format('%.0f', tat), 'PX', math.ceil(backlog / 1000) + 1000)
  end
  out[#out + 1] = admitted
  out[#out + 1] = math.floor(backlog)
end
return out
"""

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

_REFRESH = """
local t = redis.call('TIME')
local expiry = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  for member in string.gmatch(ARGV[i + 1], '%S+') do
    redis.call('ZADD', key, expiry, member)
  end
  redis.call('PEXPIRE', key, ARGV[1])
end
return #KEYS
"""


class RedisBackend:
    def __init__(
        self,
        url: str,
        rate: RateLimit | None,
        connections: int,
        lease_seconds: float,
        prefix: str = "ocigate:limit:",
        timeout: float = 0.5,
    ) -> None:
        self.rate = rate
        self.connections = connections
        self.lease_ms = int(lease_seconds * 1000)
        self._prefix = prefix
        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False
        )
        self._gcra = self._redis.register_script(_GCRA_BATCH)
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._refresh = self._redis.register_script(_REFRESH)
        self._pending: dict[str, list[asyncio.Future[RateDecision]]] = {}
        self._charges: dict[str, int] = {}  # admitted on credit, not yet counted in Redis
        self._credit: dict[str, int] = {}  # key → requests this process may admit on credit
        self._flush_scheduled = False
        self._charge_timer: asyncio.TimerHandle | None = None
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.on_error: Callable[[BaseException], None] | None = None  # a failed call nobody awaited

    async def ping(self) -> None:
        await self._redis.ping()

    async def close(self) -> None:
        if self._charge_timer is not None:
            self._charge_timer.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=1)
        await self._redis.aclose()

    # -- rates ------------------------------------------------------------------------------

    def hit_on_credit(self, key: str) -> RateDecision | None:
        """Admit at once, without a round trip, while Redis last said that `key` is far from its
        limit; the request is charged to Redis with the next batch. None: ask Redis."""
        allowance = self._credit.get(key, 0)
        rate = self.rate
        if allowance <= 0 or rate is None:  # credit is granted under a rate limit only
            return None
        self._credit[key] = allowance - 1
        charges = self._charges
        charges[key] = charges.get(key, 0) + 1
        if self._charge_timer is None and not self._flush_scheduled:
            self._charge_timer = asyncio.get_running_loop().call_later(_CHARGE_DELAY, self._charge_due)
        # No fresh backlog without asking; none is needed: on credit, the client is far from its
        # limit and its headers are not sent (gateway/limits.py).
        return RateDecision(True, rate, 0.0)

    def hit(self, key: str) -> asyncio.Future[RateDecision]:
        """A future decision; it fails with the Redis error when Redis does not answer."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[RateDecision] = loop.create_future()
        waiting = self._pending.get(key)
        if waiting is None:
            self._pending[key] = [future]
        else:
            waiting.append(future)
        self._schedule_flush(loop)
        return future

    def _charge_due(self) -> None:
        self._charge_timer = None
        self._schedule_flush(asyncio.get_running_loop())

    def _schedule_flush(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._flush_scheduled or self._in_flight >= _MAX_IN_FLIGHT:
            return
        if self._pending or self._charges:
            self._flush_scheduled = True
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._charge_timer is not None:
            self._charge_timer.cancel()
            self._charge_timer = None
        batch, self._pending = self._pending, {}
        charges, self._charges = self._charges, {}
        if batch or charges:
            self._in_flight += 1
            task = asyncio.get_running_loop().create_task(self._run(batch, charges))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(
        self, batch: dict[str, list[asyncio.Future[RateDecision]]], charges: dict[str, int]
    ) -> None:
        rate = self.rate
        assert rate is not None
        keys = list(batch.keys() | charges.keys())
        arguments: list[float] = [rate.interval * 1e6, rate.tolerance * 1e6]
        for key in keys:
            arguments += (len(batch.get(key, ())), charges.get(key, 0))
        try:
            result = await self._gcra(keys=[self._prefix + "r:" + key for key in keys], args=arguments)
        except Exception as exc:
            self._credit.clear()
            for futures in batch.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            if not batch and self.on_error is not None:
                self.on_error(exc)
        else:
            if len(self._credit) > _MAX_CREDITS:
                self._credit.clear()
            for index, key in enumerate(keys):
                admitted, backlog = int(result[2 * index]), int(result[2 * index + 1]) / 1e6
                self._grant_credit(key, backlog)
                for position, future in enumerate(batch.get(key, ())):
                    if future.done():
                        continue
                    if position < admitted:  # the earlier ones passed, each with its own backlog
                        own = backlog - (admitted - 1 - position) * rate.interval
                        future.set_result(rate.decide(True, own))
                    else:
                        future.set_result(rate.decide(False, backlog))
        finally:
            self._in_flight -= 1
            loop = asyncio.get_running_loop()
            if self._pending:  # requests are waiting: go now
                self._schedule_flush(loop)
            elif self._charges and self._charge_timer is None:  # only charges: they can wait a little
                self._charge_timer = loop.call_later(_CHARGE_DELAY, self._charge_due)

    def _grant_credit(self, key: str, backlog: float) -> None:
        """Let this process admit 1/_CREDIT_SHARE of what `key` may still send, minus what it
        already admitted on credit since this answer was asked for."""
        rate = self.rate
        assert rate is not None
        remaining = math.floor((rate.tolerance - backlog) / rate.interval + 1e-9) + 1
        allowance = remaining // _CREDIT_SHARE - self._charges.get(key, 0)
        if allowance > 0:
            self._credit[key] = allowance
        else:
            self._credit.pop(key, None)

    # -- connections --------------------------------------------------------------------------

    async def acquire(self, key: str, member: str) -> bool:
        result = await self._acquire(
            keys=[self._prefix + "c:" + key], args=[self.connections, self.lease_ms, member]
        )
        return bool(result)

    async def release(self, key: str, member: str) -> None:
        await self._redis.zrem(self._prefix + "c:" + key, member)

    async def refresh(self, leases: Sequence[tuple[str, Sequence[str]]]) -> None:
        """Extend every lease this process holds (re-adding any that Redis lost in a restart)."""
        for start in range(0, len(leases), _REFRESH_CHUNK):
            chunk = leases[start : start + _REFRESH_CHUNK]
            keys = [self._prefix + "c:" + key for key, _ in chunk]
            await self._refresh(keys=keys, args=[self.lease_ms, *(" ".join(m) for _, m in chunk)])
