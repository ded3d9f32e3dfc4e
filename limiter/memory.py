"""In-process limiter state: the embedded default, and the fallback while Redis is away."""

from __future__ import annotations

import time

from .gcra import RateDecision, RateLimit

_EPSILON = 1e-9
_PRUNE_EVERY = 30.0  # seconds; idle clients (TAT in the past) are forgotten then


class MemoryBackend:
    def __init__(self, rate: RateLimit | None, connections: int) -> None:
        self.rate = rate
        self.connections = connections
        self._tats: dict[str, float] = {}
        self._open: dict[str, int] = {}
        self._next_prune = time.monotonic() + _PRUNE_EVERY

    def hit(self, key: str) -> RateDecision:
        """`gcra.step` for one request, inlined: this runs for every request."""
        rate = self.rate
        assert rate is not None
        now = time.monotonic()
        if now >= self._next_prune:
            self._prune(now)
        tat = self._tats.get(key, now)
        if tat < now:
            tat = now
        if tat - now > rate.tolerance + _EPSILON:
            return RateDecision(False, rate, tat - now)
        tat += rate.interval
        self._tats[key] = tat
        return RateDecision(True, rate, tat - now)

    def acquire(self, key: str) -> bool:
        count = self._open.get(key, 0)
        if self.connections and count >= self.connections:
            return False
        self._open[key] = count + 1
        return True

    def release(self, key: str) -> None:
        count = self._open.get(key, 0) - 1
        if count > 0:
            self._open[key] = count
        else:
            self._open.pop(key, None)

    def open_connections(self, key: str) -> int:
        return self._open.get(key, 0)

    def _prune(self, now: float) -> None:
        self._tats = {key: tat for key, tat in self._tats.items() if tat > now}
        self._next_prune = now + _PRUNE_EVERY
