"""One suite for both limiter backends: in-process memory and Redis."""

from __future__ import annotations

import asyncio
import time

import pytest

from ocigate.limiter import LimitConfig, Limiter
from tests.limiter.lifecycle import running


async def test_rate_admits_the_burst_then_refuses(backend_url: str | None) -> None:
    limiter = Limiter(LimitConfig(rps=0.5, burst=3), redis_url=backend_url)  # nothing refills meanwhile
    async with running(limiter):
        decisions = [await limiter.hit("198.51.100.4") for _ in range(5)]
        assert [d.allowed for d in decisions] == [True, True, True, False, False]
        assert [d.remaining for d in decisions[:3]] == [2, 1, 0]
        assert decisions[3].headers()["Retry-After"] == "2"
        assert (await limiter.hit("198.51.100.5")).allowed  # another client has its own bucket
        assert limiter.metrics.requests_limited == 2


async def test_concurrent_hits_are_counted_exactly(backend_url: str | None) -> None:
    """Many requests in one event-loop tick (batched into one Redis call) still add up."""
    limiter = Limiter(LimitConfig(rps=10, burst=50), redis_url=backend_url)
    async with running(limiter):
        decisions = await asyncio.gather(*(limiter.hit("198.51.100.4") for _ in range(80)))
        assert sum(d.allowed for d in decisions) == 50
        remaining = sorted((d.remaining for d in decisions if d.allowed), reverse=True)
        assert remaining == list(range(49, -1, -1))


async def test_rate_over_time_stays_within_the_bound(backend_url: str | None) -> None:
    limiter = Limiter(LimitConfig(rps=20, burst=5), redis_url=backend_url)
    async with running(limiter):
        # flat out for a second: never more than the bound (a slow machine only sends fewer)
        admitted, started = 0, time.monotonic()
        while time.monotonic() - started < 1.0:
            results = await asyncio.gather(*(limiter.hit("c") for _ in range(10)))
            admitted += sum(d.allowed for d in results)
            await asyncio.sleep(0.005)
        window = time.monotonic() - started
        assert admitted <= 20 * window + 5
        # at half the rate, every request passes (a slow machine only leaves more room)
        await asyncio.sleep(5 / 20)  # the burst is back
        for _ in range(10):
            assert (await limiter.hit("c")).allowed
            await asyncio.sleep(2 / 20)


async def test_connection_slots_are_limited_and_given_back(backend_url: str | None) -> None:
    limiter = Limiter(LimitConfig(connections=3), redis_url=backend_url)
    async with running(limiter):
        leases = [await limiter.acquire("198.51.100.4") for _ in range(3)]
        assert all(lease is not None for lease in leases)
        assert await limiter.acquire("198.51.100.4") is None
        assert await limiter.acquire("198.51.100.5") is not None
        assert limiter.metrics.connections_refused == 1
        first = leases[0]
        assert first is not None
        first.release()
        first.release()  # idempotent
        await asyncio.sleep(0.05)  # a Redis release is sent in the background
        assert await limiter.acquire("198.51.100.4") is not None
        assert await limiter.acquire("198.51.100.4") is None


async def test_two_replicas_share_limits_through_redis(redis_url: str) -> None:
    replicas = [Limiter(LimitConfig(rps=0.5, burst=4, connections=4), redis_url=redis_url) for _ in range(2)]
    async with running(*replicas):
        hits = [await replicas[i % 2].hit("c") for i in range(8)]
        assert sum(d.allowed for d in hits) == 4
        leases = [await replicas[i % 2].acquire("c") for i in range(6)]
        assert sum(lease is not None for lease in leases) == 4


async def test_without_redis_each_of_n_workers_enforces_its_share() -> None:
    limiter = Limiter(LimitConfig(rps=60, burst=60, connections=100), share=2)
    assert limiter.local.connections == 50
    assert limiter.local.rate is not None
    assert (limiter.local.rate.rps, limiter.local.rate.burst) == (30, 30)


async def test_far_from_the_limit_requests_pass_on_credit_and_are_charged(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = Limiter(LimitConfig(rps=1000, burst=10000), redis_url=redis_url)
    await limiter.start()
    assert limiter.shared is not None
    calls = 0
    script = limiter.shared._gcra

    async def counted(keys: list[str], args: list[str | int]) -> object:
        nonlocal calls
        calls += 1
        return await script(keys=keys, args=args)

    monkeypatch.setattr(limiter.shared, "_gcra", counted)
    try:
        started = time.monotonic()
        decisions = [await limiter.hit("c") for _ in range(2000)]
        assert all(d.allowed for d in decisions)
        assert calls < 200  # most passed on credit, without a round trip each
        await asyncio.sleep(0.2)  # the charges reach Redis
        fresh = Limiter(LimitConfig(rps=1000, burst=10000), redis_url=redis_url)  # no credit: asks
        await fresh.start()
        answer = await fresh.hit("c")
        await fresh.close()
        refilled = 1000 * (time.monotonic() - started)  # the bucket refills at 1000/s meanwhile
        assert answer.allowed
        # every request was counted: what is left is the burst less the 2001 requests, plus no
        # more than the refill (a fixed allowance made this fail on a slow machine)
        assert 10000 - 2001 - 300 <= answer.remaining <= 10000 - 2001 + refilled + 1
    finally:
        await limiter.close()


async def test_credit_never_lets_replicas_past_the_bound(redis_url: str) -> None:
    replicas = [Limiter(LimitConfig(rps=50, burst=200), redis_url=redis_url) for _ in range(2)]
    async with running(*replicas):
        admitted, started = 0, time.monotonic()
        while time.monotonic() - started < 1.5:
            results = await asyncio.gather(*(replicas[i % 2].hit("c") for i in range(20)))
            admitted += sum(d.allowed for d in results)
        window = time.monotonic() - started
        # never past the bound; and at least the burst, which is there at once whatever the speed
        assert 200 <= admitted <= 50 * window + 200
