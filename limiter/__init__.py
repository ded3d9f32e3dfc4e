"""Per-client connection and request-rate limits. Knows clients, connections and rates; nothing
about registries, and nothing of `gateway/` (the gateway calls in, never the other way)."""

from .config import LimitConfig, ProxyConfig, parse_networks
from .gate import ConnectionGate, GateConfig
from .gcra import RateDecision, RateLimit
from .identity import TrustedProxies, client_key
from .limiter import ConnectionLease, Limiter
from .metrics import LimiterMetrics

__all__ = [
    "ConnectionGate",
    "ConnectionLease",
    "GateConfig",
    "LimitConfig",
    "Limiter",
    "LimiterMetrics",
    "ProxyConfig",
    "RateDecision",
    "RateLimit",
    "TrustedProxies",
    "client_key",
    "parse_networks",
]
