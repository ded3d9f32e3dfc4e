"""What the limiter enforces, as plain values (the gateway maps its settings onto these)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # health and metrics are never limited


@dataclass(frozen=True, slots=True)
class LimitConfig:
    """Per-client limits. 0 switches a limit off.

    `share` divides the limits among processes that cannot see each other's counts (`--workers N`
    without Redis, or any worker while Redis is unreachable): each enforces 1/share of them, so the
    sum never exceeds the promise.
    """

    connections: int = 100
    rps: float = 60.0
    burst: int = 0  # 0: one second's worth (= rps)
    ipv6_prefix: int = 64
    trusted_proxies: tuple[IPNetwork, ...] = ()
    proxy_protocol: bool = False
    redis_url: str | None = None
    lease_seconds: float = 30.0
    share: int = 1
    exempt_paths: frozenset[str] = field(default_factory=lambda: EXEMPT_PATHS)

    @property
    def effective_burst(self) -> int:
        return self.burst if self.burst > 0 else max(1, round(self.rps))

    @property
    def enabled(self) -> bool:
        return self.connections > 0 or self.rps > 0

    def local_share(self) -> LimitConfig:
        """The part of the limits one process enforces on its own."""
        if self.share <= 1:
            return self
        return LimitConfig(
            connections=max(1, self.connections // self.share) if self.connections else 0,
            rps=self.rps / self.share,
            burst=max(1, self.effective_burst // self.share) if self.rps else 0,
            ipv6_prefix=self.ipv6_prefix,
            trusted_proxies=self.trusted_proxies,
            proxy_protocol=self.proxy_protocol,
            redis_url=self.redis_url,
            lease_seconds=self.lease_seconds,
            share=1,
            exempt_paths=self.exempt_paths,
        )


def parse_networks(text: str | None) -> tuple[IPNetwork, ...]:
    """`10.0.0.0/8, 192.168.1.7 fd00::/8` → networks (commas or spaces; a bare address is a /32 or /128)."""
    if not text:
        return ()
    items = text.replace(",", " ").split()
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)
