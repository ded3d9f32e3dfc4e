"""The limiter's counters: plain attributes bumped as connections and requests pass, exported
by the gateway's `/metrics` as `ocigate_limiter_<name>` (counters with `_total`). No client
addresses appear as labels: that would be unbounded cardinality.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LimiterMetrics:
    connections_refused: int = 0  # closed at accept time, over the per-client limit
    connections_admitted: int = 0
    connections_open: int = 0
    proxy_header_errors: int = 0  # PROXY protocol on, and the header was missing or broken
    proxy_untrusted_peers: int = 0  # PROXY protocol on, and the peer is not a trusted proxy
    requests_limited: int = 0  # answered 429
    requests_admitted: int = 0
    redis_errors: int = 0
    redis_fallbacks: int = 0  # times the limiter switched to per-process limits
    redis_up: int = 0  # 1 while shared limits hold; 0 without Redis or while it is unreachable


GAUGES = frozenset(("connections_open", "redis_up"))
HELP = {
    "connections_refused": "Connections closed at accept time because the client had too many open.",
    "connections_admitted": "Connections admitted by the connection limit.",
    "connections_open": "Connections open that hold a slot.",
    "proxy_header_errors": "Connections closed because their PROXY protocol header was missing or bad.",
    "proxy_untrusted_peers": "Connections closed at once: PROXY protocol is on and the peer is not trusted.",
    "requests_limited": "Requests answered 429 TOOMANYREQUESTS.",
    "requests_admitted": "Requests admitted by the rate limit.",
    "redis_errors": "Failed Redis calls of the limiter.",
    "redis_fallbacks": "Switches to per-process limits because Redis was unreachable.",
    "redis_up": "1 while limits are shared through Redis, 0 otherwise.",
}
