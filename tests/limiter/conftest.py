from __future__ import annotations

import pytest
import redis

from tests.services.redis import RedisServer


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied: every test here counts the same client, 127.0.0.1."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushdb()
    client.close()
    return redis_server.url


@pytest.fixture(params=["memory", "redis"])
def backend_url(request: pytest.FixtureRequest) -> str | None:
    """The limiter-backend suite runs over both backends."""
    if request.param == "memory":
        return None
    return request.getfixturevalue("redis_url")
