"""A throwaway redis-server on a free loopback port, for the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.redis import RedisProcess as RedisServer

__all__ = ["RedisServer", "redis_server"]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()
