"""Limiters started for a block of a test and closed after it, whatever the block does."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from ocigate.limiter import Limiter


@contextlib.asynccontextmanager
async def running(*limiters: Limiter) -> AsyncIterator[None]:
    for limiter in limiters:
        await limiter.start()
    try:
        yield
    finally:
        for limiter in limiters:
            await limiter.close()
