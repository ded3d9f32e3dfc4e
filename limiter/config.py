"""What the limiter enforces, and whom it trusts to name the client: the limits and proxies
sections of the settings (see storage/config.py for how a section is declared)."""

from __future__ import annotations

import ipaddress
from typing import Annotated, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
SECTION = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


class LimitConfig(BaseModel):
    """Per-client limits. 0 switches a limit off."""

    model_config = SECTION
    env_prefix: ClassVar[str] = "limit_"

    connections: int = Field(
        100,
        ge=0,
        description="concurrent connections per client; more are closed at accept time (0: unlimited)",
    )
    rps: float = Field(
        60.0, ge=0, description="requests per second per client; more get 429 TOOMANYREQUESTS (0: unlimited)"
    )
    burst: int = Field(
        0,
        ge=0,
        description="requests a client may send at once from idle (0: one second's worth, = the rate)",
    )
    ipv6_prefix: int = Field(
        64, ge=0, le=128, description="IPv6 clients are counted per network of this prefix length"
    )
    lease_seconds: float = Field(
        30.0, gt=0, description="a dead replica's connection slots are freed after this long (with Redis)"
    )

    @property
    def effective_burst(self) -> int:
        return self.burst if self.burst > 0 else max(1, round(self.rps))

    @property
    def enabled(self) -> bool:
        return self.connections > 0 or self.rps > 0

    def local_share(self, share: int) -> LimitConfig:
        """The part of the limits one of `share` processes enforces on its own, when they cannot
        see each other's counts (`--workers N` without Redis, or any worker while Redis is
        unreachable): 1/share of each, so the sum never exceeds the promise."""
        if share <= 1:
            return self
        return self.model_copy(
            update={
                "connections": max(1, self.connections // share) if self.connections else 0,
                "rps": self.rps / share,
                "burst": max(1, self.effective_burst // share) if self.rps else 0,
            }
        )


def parse_networks(text: str | None) -> tuple[IPNetwork, ...]:
    """`10.0.0.0/8, 192.168.1.7 fd00::/8` → networks (commas or spaces; a bare address is a /32 or /128)."""
    if not text:
        return ()
    items = text.replace(",", " ").split()
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def _networks(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        return parse_networks(value)
    except ValueError as exc:
        raise ValueError(f"must be addresses or CIDRs, separated by commas or spaces: {exc}") from None


class ProxyConfig(BaseModel):
    """Load balancers in front of the gateway, which may name the client they forward."""

    model_config = SECTION
    env_prefix: ClassVar[str] = ""

    trusted_proxies: Annotated[tuple[IPNetwork, ...], BeforeValidator(_networks)] = Field(
        (), description="CIDRs of proxies whose X-Forwarded-For / PROXY header names the client"
    )
    proxy_protocol: bool = Field(
        False, description="connections start with a PROXY v1/v2 header; only trusted proxies may connect"
    )

    @model_validator(mode="after")
    def _trusted_peers_only(self) -> ProxyConfig:
        # SECURITY: a PROXY header names the client, so one from anybody else would let them
        # pick their address (allow lists, limits, logs)
        if self.proxy_protocol and not self.trusted_proxies:
            raise ValueError(
                "`proxy_protocol` is on but `trusted_proxies` is empty: a PROXY header names the client, "
                "so only the load balancers listed there may send one (set it to their addresses, "
                "e.g. 10.0.0.0/8)"
            )
        return self
