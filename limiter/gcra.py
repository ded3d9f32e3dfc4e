"""The request-rate rule: GCRA (generic cell rate algorithm), a token bucket kept as one number.

Per client we keep only the theoretical arrival time (TAT) of its next request. With an emission
interval T = 1/rps and a tolerance tau = (burst - 1) * T, a request at `now` passes when
max(TAT, now) - now <= tau, and then TAT advances by T. So `burst` requests pass back to back
from idle, and over any window of W seconds at most rps * W + burst pass: the bound the load
tests check. One number per client is also what makes the Redis version a single atomic script.
See ITU-T I.371 annex A, or https://brandur.org/rate-limiting.
"""

from __future__ import annotations

import math
from collections.abc import MutableMapping

from multidict import istr

_EPSILON = 1e-9  # float noise must not turn an exact fit into a refusal
# case-insensitive keys made once: a multidict then skips folding them on every response
LIMIT_HEADER = istr("RateLimit-Limit")
REMAINING_HEADER = istr("RateLimit-Remaining")
RESET_HEADER = istr("RateLimit-Reset")
RETRY_AFTER_HEADER = istr("Retry-After")
_TABLE = 4096
_NUMBERS = [str(number) for number in range(_TABLE)]


class RateLimit:
    __slots__ = ("burst", "interval", "limit_header", "rps", "tolerance")

    def __init__(self, rps: float, burst: int) -> None:
        self.rps = rps
        self.burst = burst
        self.interval = 1.0 / rps
        self.tolerance = (burst - 1) * self.interval
        self.limit_header = str(int(rps)) if rps == int(rps) else f"{rps:g}"

    def __repr__(self) -> str:
        return f"RateLimit(rps={self.rps:g}, burst={self.burst})"

    def decide(self, allowed: bool, backlog: float) -> RateDecision:
        """A backend's answer; `backlog` is TAT - now in seconds, after this request when it
        passed, as found when it did not."""
        return RateDecision(allowed, self, backlog)


class RateDecision:
    """One request's verdict. Plain slots and lazy numbers: this is made for every request."""

    __slots__ = ("allowed", "backlog", "limit")

    def __init__(self, allowed: bool, limit: RateLimit, backlog: float) -> None:
        self.allowed = allowed
        self.limit = limit
        self.backlog = backlog

    @property
    def half_used(self) -> bool:
        """The client has used at least half of its burst: from here on headers inform."""
        return self.backlog * 2 >= self.limit.tolerance

    @property
    def remaining(self) -> int:
        """Requests that would pass right now."""
        if not self.allowed:
            return 0
        limit = self.limit
        return max(0, math.floor((limit.tolerance - self.backlog) / limit.interval + _EPSILON) + 1)

    @property
    def retry_after(self) -> float:
        """Seconds until one request would pass (0 when this one passed)."""
        return 0.0 if self.allowed else max(self.backlog - self.limit.tolerance, 0.0)

    @property
    def reset_after(self) -> float:
        """Seconds until the full burst is available again."""
        return self.backlog

    def headers(self) -> dict[str, str]:
        """`RateLimit-*` (draft-ietf-httpapi-ratelimit-headers) and, when refused, `Retry-After`."""
        headers: dict[str, str] = {}
        self.apply(headers)
        return headers

    def apply(self, headers: MutableMapping[str, str]) -> None:
        """Set the headers straight on a response's. This runs for every response, so it avoids
        function calls (math.floor/ceil, str) where a comparison or a table lookup will do."""
        limit, backlog = self.limit, self.backlog
        remaining = 0
        if self.allowed:
            room = (limit.tolerance - backlog) * limit.rps + _EPSILON
            if room >= 0:
                remaining = int(room) + 1
        reset = int(backlog)
        if backlog - reset > _EPSILON:
            reset += 1
        headers[LIMIT_HEADER] = limit.limit_header
        headers[REMAINING_HEADER] = _NUMBERS[remaining] if remaining < _TABLE else str(remaining)
        headers[RESET_HEADER] = _NUMBERS[reset] if reset < _TABLE else str(reset)
        if not self.allowed:
            # whole seconds, rounded up, never 0: clients sleep on it (RFC 9110 §10.2.3)
            headers[RETRY_AFTER_HEADER] = str(max(1, math.ceil(self.retry_after - _EPSILON)))


def step(tat: float, now: float, limit: RateLimit, cost: int = 1) -> tuple[int, float, float]:
    """Admit up to `cost` requests at `now`: (admitted, new TAT, backlog as defined in `decide`).

    The reference form of the rule: memory.py inlines it for one request, redis_backend.py's Lua
    script is the same with a count per client; tests/limiter/test_gcra.py checks it."""
    tat = max(tat, now)
    backlog = tat - now
    room = math.floor((limit.tolerance - backlog) / limit.interval + _EPSILON) + 1
    admitted = min(cost, max(room, 0))
    if admitted == 0:
        return 0, tat, backlog
    tat += admitted * limit.interval
    return admitted, tat, tat - now
