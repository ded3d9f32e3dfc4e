"""Who the client of a request is: one answer for the limiter, the subnet allow lists, the
failed-login throttle, the audit log and the access log.

The TCP peer, unless a trusted proxy names the client: the PROXY protocol header (read once per
connection by the limiter's gate, and only from a trusted peer) or, for each request, the
`X-Forwarded-For` a trusted peer added (read from the right, `limiter/identity.py`). Worked out
once per connection, or once per request when a trusted proxy forwards it, and kept there.
"""

from __future__ import annotations

from aiohttp import web

from ocigate.limiter import TrustedProxies, client_key
from ocigate.limiter.gate import ConnectionGate

_ADDRESS = "ocigate.client_address"  # request key: the address worked out for this request


class ClientIdentity:
    def __init__(self, trusted_proxies: TrustedProxies, ipv6_prefix: int = 64) -> None:
        self.trusted_proxies = trusted_proxies
        self.ipv6_prefix = ipv6_prefix

    def address(self, request: web.BaseRequest) -> str | None:
        transport = request.transport
        gate = transport.get_protocol() if transport is not None else None
        if isinstance(gate, ConnectionGate):
            if not gate.forwarded_trusted:
                return gate.client_address  # the common case: decided once per connection
            peer = gate.client_address
        else:
            peer = request.remote
            if peer not in self.trusted_proxies:
                return peer
        known = request.get(_ADDRESS)
        if known is None:
            forwarded = request.headers.get("X-Forwarded-For")
            known = self.trusted_proxies.forwarded_client(peer, forwarded) if peer and forwarded else peer
            request[_ADDRESS] = known
        return known

    def key(self, request: web.BaseRequest) -> str:
        """The counting key (IPv6 clients by network prefix) of the request's client."""
        return client_key(self.address(request), self.ipv6_prefix)


CLIENTS = web.AppKey("clients", ClientIdentity)


def client_address(request: web.BaseRequest) -> str | None:
    try:
        identity = request.config_dict.get(CLIENTS) if isinstance(request, web.Request) else None
    except AssertionError:  # never routed: malformed HTTP (aiohttp asserts there is no app)
        identity = None
    return identity.address(request) if identity is not None else request.remote  # before routing


def client_key_of(request: web.Request) -> str:
    return request.config_dict[CLIENTS].key(request)
