"""Failed-login throttling: after a handful of failed password checks, further attempts are
refused (429) before any hash is computed.

Three counts, each the GCRA rule of `limiter/gcra.py` applied to failures instead of requests
(`failures` may happen at once, then one more per `window / failures`):

- per client address and username: `failures` per `window` (default 10 per 5 minutes). A client
  that keeps failing for one username gets one attempt per 30 s after its first ten.
- per client address, whatever the username: five times as many (one password sprayed over
  many usernames).
- per username, from all addresses: `failures` per `window`, enforced only on addresses that
  have themselves failed for that username lately. Once a username is under attack, each
  guessing address gets about one guess per 30 s; the user, from an address where they have not
  just failed, still logs in. So nobody can lock a user out by naming them, and the lockout an
  address sees is bounded by its own failures (at most `window`).

An attempt counts as a failure before the hash runs and is given back once the password proves
right, so guesses sent at once on many connections cannot all pass a check that none of their
failures has reached yet. Robot-token passwords (`ogt_…`, 256-bit secrets) count per address
only. Counts are shared through Redis when it is configured (one Lua script, Redis's clock),
kept per process otherwise and while Redis is unreachable.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

import redis.asyncio as aioredis

log = logging.getLogger("ocigate.auth")

ADDRESS_FACTOR = 5  # an address may fail this many times more often over all usernames
_PRUNE_EVERY = 30.0
_LOG_REDIS_EVERY = 60.0
_PEEK, _CHARGE, _REFUND = "peek", "charge", "refund"

# KEYS: address [, address+username, username]; ARGV[1]: mode; ARGV[2i], ARGV[2i+1]: the
# interval and tolerance of key i, in microseconds. Returns the wait in microseconds (0: go).
_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local mode = ARGV[1]
local n = #KEYS
local backlog = {}
for i = 1, n do
  local tat = tonumber(redis.call('GET', KEYS[i]))
  if tat and tat > now then backlog[i] = tat - now else backlog[i] = 0 end
end
if mode == 'refund' then
  for i = 1, n do
    local left = backlog[i] - tonumber(ARGV[2 * i])
    if left > 0 then
      redis.call('SET', KEYS[i], string.format('%.0f', now + left), 'PX', math.ceil(left / 1000) + 1000)
    else
      redis.call('DEL', KEYS[i])
    end
  end
  return 0
end
local wait = 0
for i = 1, math.min(n, 2) do
  local over = backlog[i] - tonumber(ARGV[2 * i + 1])
  if over > wait then wait = over end
end
if n == 3 and backlog[2] > 0 then
  local over = math.min(backlog[3] - tonumber(ARGV[7]), backlog[2])
  if over > wait then wait = over end
end
if wait > 0 or mode == 'peek' then return math.floor(wait) end
for i = 1, n do
  local b = backlog[i] + tonumber(ARGV[2 * i])
  redis.call('SET', KEYS[i], string.format('%.0f', now + b), 'PX', math.ceil(b / 1000) + 1000)
end
return 0
"""


class Throttled(Exception):
    """Too many failed logins: refused without checking the password."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(
            f"too many failed logins from your address or for this user: retry after {self.seconds} s"
        )

    @property
    def seconds(self) -> int:
        """Whole seconds to wait, rounded up, never 0 (clients sleep on `Retry-After`)."""
        return max(1, math.ceil(self.retry_after))


@dataclass(frozen=True, slots=True)
class _Rule:
    interval: float  # seconds for one failure to drain
    tolerance: float  # backlog (seconds) at which the next attempt is refused

    @classmethod
    def of(cls, failures: int, window: float) -> _Rule:
        interval = window / failures
        return cls(interval, (failures - 1) * interval)


def _wait(backlogs: list[float], rules: tuple[_Rule, ...]) -> float:
    """Seconds until an attempt may go, given each key's backlog (the rules of the docstring)."""
    wait = 0.0
    for backlog, rule in zip(backlogs[:2], rules, strict=False):
        wait = max(wait, backlog - rule.tolerance)
    if len(backlogs) == 3 and backlogs[1] > 0:
        wait = max(wait, min(backlogs[2] - rules[2].tolerance, backlogs[1]))
    return wait


@dataclass(frozen=True, slots=True)
class Attempt:
    """A password check under way: its failure is already counted (`LoginThrottle.begin`)."""

    keys: tuple[str, ...]


class _Memory:
    def __init__(self) -> None:
        self._tats: dict[str, float] = {}  # key → theoretical arrival time (monotonic)
        self._next_prune = time.monotonic() + _PRUNE_EVERY

    def run(self, keys: tuple[str, ...], rules: tuple[_Rule, ...], mode: str) -> float:
        now = time.monotonic()
        if now >= self._next_prune:
            self._tats = {key: tat for key, tat in self._tats.items() if tat > now}
            self._next_prune = now + _PRUNE_EVERY
        tats = self._tats
        backlogs = [max(tats.get(key, now) - now, 0.0) for key in keys]
        if mode == _REFUND:
            for key, rule, backlog in zip(keys, rules, backlogs, strict=False):
                if backlog > rule.interval:
                    tats[key] = now + backlog - rule.interval
                else:
                    tats.pop(key, None)
            return 0.0
        wait = _wait(backlogs, rules)
        if wait > 0 or mode == _PEEK:
            return max(wait, 0.0)
        for key, rule, backlog in zip(keys, rules, backlogs, strict=False):
            tats[key] = now + backlog + rule.interval
        return 0.0


class LoginThrottle:
    def __init__(
        self, failures: int, window: float, redis_url: str | None = None, prefix: str = "ocigate:login:"
    ) -> None:
        self.enabled = failures > 0 and window > 0
        self.failures, self.window = failures, window
        if self.enabled:
            self._rules = (
                _Rule.of(failures * ADDRESS_FACTOR, window),
                _Rule.of(failures, window),
                _Rule.of(failures, window),
            )
        self._memory = _Memory()
        self._prefix = prefix
        self._redis: aioredis.Redis | None = None
        if redis_url and self.enabled:
            self._redis = aioredis.Redis.from_url(
                redis_url, socket_timeout=0.5, socket_connect_timeout=0.5, retry_on_timeout=False
            )
            self._script = self._redis.register_script(_SCRIPT)
        self._redis_logged = 0.0
        self.throttled = 0  # attempts refused (metrics)

    async def check(self, client: str, username: str | None) -> None:
        """Raise `Throttled` if an attempt would be refused now; counts nothing (for credentials
        that need no hash, e.g. found in the verified-credentials cache)."""
        if self.enabled:
            self._raise_if(await self._run(self._keys(client, username), _PEEK))

    async def begin(self, client: str, username: str | None) -> Attempt:
        """Count an attempt as failed, or raise `Throttled`; `succeeded()` gives it back."""
        keys = self._keys(client, username) if self.enabled else ()
        if keys:
            self._raise_if(await self._run(keys, _CHARGE))
        return Attempt(keys)

    async def succeeded(self, attempt: Attempt) -> None:
        if attempt.keys:
            await self._run(attempt.keys, _REFUND)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()

    def _raise_if(self, wait: float) -> None:
        if wait > 0:
            self.throttled += 1
            raise Throttled(wait)

    def _keys(self, client: str, username: str | None) -> tuple[str, ...]:
        address = "a:" + client
        if username is None:
            return (address,)
        # hashed: a username is whatever the client sent, of any length or alphabet
        user = hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return address, f"p:{client}:{user}", "u:" + user

    async def _run(self, keys: tuple[str, ...], mode: str) -> float:
        rules = self._rules[: len(keys)]
        if self._redis is not None:
            arguments: list[str | int] = [mode]
            for rule in rules:
                arguments += (round(rule.interval * 1e6), round(rule.tolerance * 1e6))
            try:
                waited = await self._script(keys=[self._prefix + key for key in keys], args=arguments)
            except Exception as exc:
                self._redis_failed(exc)
            else:
                return int(waited) / 1e6
        return self._memory.run(keys, rules, mode)

    def _redis_failed(self, exc: Exception) -> None:
        now = time.monotonic()
        if now >= self._redis_logged + _LOG_REDIS_EVERY:
            self._redis_logged = now
            log.warning(
                "login throttle: Redis unreachable (%s): failed logins counted per process meanwhile",
                str(exc) or type(exc).__name__,
            )
