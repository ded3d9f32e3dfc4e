"""Who a client is: the address a limit is counted against.

The peer address of the TCP connection, unless the peer is a proxy we trust: then the PROXY
protocol header (read by `gate.py`) or `X-Forwarded-For`. IPv6 clients are grouped by prefix
(/64 by default) because one host commonly owns a whole /64 and could rotate through it.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from .config import IPNetwork

UNKNOWN_CLIENT = "unknown"


@lru_cache(maxsize=65536)
def client_key(address: str | None, ipv6_prefix: int = 64) -> str:
    """The counting key for an address: IPv4 as is, IPv6 as its /prefix network."""
    if not address:
        return UNKNOWN_CLIENT
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # a dual-stack socket's view of an IPv4 client
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, ipv6_prefix), strict=False))
    return str(ip)


class TrustedProxies:
    """The peers whose word about the client's address we take."""

    def __init__(self, networks: tuple[IPNetwork, ...]) -> None:
        self._networks = networks
        self._cache: dict[str, bool] = {}

    def __bool__(self) -> bool:
        return bool(self._networks)

    def __contains__(self, address: object) -> bool:
        if not isinstance(address, str) or not self._networks:
            return False
        known = self._cache.get(address)
        if known is None:
            known = self._match(address)
            if len(self._cache) > 65536:
                self._cache.clear()
            self._cache[address] = known
        return known

    def _match(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self._networks)

    def forwarded_client(self, peer: str, forwarded_for: str | None) -> str:
        """The client address behind a trusted `peer`, from `X-Forwarded-For`.

        SECURITY: the header is read from the right, skipping our own trusted proxies; the first
        address a trusted hop did not add itself is the client. Anything left of it was written
        by the client and may be forged, so it is never used.
        """
        if not forwarded_for or peer not in self:
            return peer
        client = peer
        for hop in reversed(forwarded_for.split(",")):
            hop = hop.strip()
            try:
                ipaddress.ip_address(hop.split("%", 1)[0])
            except ValueError:
                break  # garbage: stop at the last address a trusted hop vouched for
            client = hop
            if hop not in self:
                break
        return client
