"""A registry's `apiSubnetAllowList`: when set, only clients inside it reach its v2 and token routes."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

import orjson

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=1024)
def _allow_list(properties: str) -> tuple[Network, ...] | None:
    cidrs = orjson.loads(properties).get("apiSubnetAllowList") or []
    if not cidrs:
        return None
    return tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)


def has_allow_list(properties: str) -> bool:
    """Whether the client's address matters at all (working it out costs a tenth of a manifest GET)."""
    return _allow_list(properties) is not None


def address_allowed(properties: str, address: str | None) -> bool:
    networks = _allow_list(properties)
    if networks is None:
        return True
    if address is None:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
