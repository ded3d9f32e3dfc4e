"""Redis going away must neither block traffic nor lift the limits; replicas that die must not
keep their connection slots."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from ocigate.limiter import LimitConfig, Limiter
from tests.limiter.lifecycle import running
from tests.services.redis import RedisServer


async def test_redis_dying_falls_back_to_per_process_limits(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisServer(tmp_path / "redis")
    limiter = Limiter(LimitConfig(rps=5, burst=3, connections=2), redis_url=server.url)
    await limiter.start()
    try:
        assert limiter.metrics.redis_up == 1
        assert (await limiter.hit("c")).allowed
        server.stop()
        with caplog.at_level(logging.WARNING, logger="ocigate.limiter"):
            decisions = [await limiter.hit("c") for _ in range(6)]
        # still limited (the local bucket starts full: 3 pass), never all refused
        assert [d.allowed for d in decisions] == [True, True, True, False, False, False]
        assert limiter.metrics.redis_up == 0
        assert limiter.metrics.redis_fallbacks == 1
        assert "Redis unreachable" in caplog.text
        leases = [await limiter.acquire("c") for _ in range(3)]
        assert [lease is not None for lease in leases] == [True, True, False]
    finally:
        await limiter.close()
        server.stop()


async def test_redis_unreachable_at_start_still_serves_with_limits() -> None:
    limiter = Limiter(LimitConfig(rps=5, burst=2), redis_url="redis://127.0.0.1:1/0")
    async with running(limiter):
        assert [(await limiter.hit("c")).allowed for _ in range(3)] == [True, True, False]
        assert limiter.metrics.redis_up == 0


async def test_a_dead_replicas_connection_slots_expire(redis_url: str) -> None:
    config = LimitConfig(connections=2, lease_seconds=1.0)
    dead, alive = Limiter(config, redis_url=redis_url), Limiter(config, redis_url=redis_url)
    async with running(dead, alive):
        assert await dead.acquire("c") is not None
        assert await dead.acquire("c") is not None
        assert dead._refresher is not None
        dead._refresher.cancel()  # as if the process were killed: no refresh, no release
        assert await alive.acquire("c") is None
        await asyncio.sleep(1.3)
        assert await alive.acquire("c") is not None


async def test_live_leases_are_refreshed_past_their_ttl(redis_url: str) -> None:
    config = LimitConfig(connections=1, lease_seconds=0.6)
    holder, other = Limiter(config, redis_url=redis_url), Limiter(config, redis_url=redis_url)
    async with running(holder, other):
        assert await holder.acquire("c") is not None
        await asyncio.sleep(1.5)  # several TTLs; the holder keeps its lease alive
        assert await other.acquire("c") is None
