"""Who the client of a request is: one answer for the limiter, the subnet allow lists, the
failed-login throttle, the audit log and the access log.

The TCP peer, unless a trusted proxy names the client: the PROXY protocol header (read once per
connection by the limiter's gate, and only from a trusted peer) or, for each request, the
`X-Forwarded-For` a trusted peer added (read from the right, `limiter/identity.py`). Worked out
once per connection, or once per request when a trusted proxy forwards it, and kept there.

And the scheme the client used, for the absolute URLs and cookies it is sent back (the token
realm, the console cookie's `Secure`): https over the gateway's own TLS; else what the same
trusted proxies say: the `X-Forwarded-Proto` the nearest one added, or the PROXY v2 header's
SSL TLV. A proxy that terminates TLS hands the gateway plain HTTP, and a realm saying http
would have docker send the user's password in the clear.
"""

from __future__ import annotations

from aiohttp import web

from ocigate.limiter import TrustedProxies, client_key
from ocigate.limiter.gate import ConnectionGate

_ADDRESS = "ocigate.client_address"  # request key: the address worked out for this request
_SCHEMES = frozenset({"http", "https"})


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

    def scheme(self, request: web.BaseRequest) -> str:
        """The scheme ("https" or "http") the client reached us with, or the proxy in front of us.

        SECURITY: a proxy's word counts only from the peers whose X-Forwarded-For counts (with
        the PROXY protocol: the client its header names is itself a trusted proxy), so a client
        can neither downgrade nor spoof the scheme; the gateway's own TLS is never downgraded."""
        if request.secure:
            return "https"
        transport = request.transport
        gate = transport.get_protocol() if transport is not None else None
        if isinstance(gate, ConnectionGate):
            trusted, proxy_tls = gate.forwarded_trusted, gate.client_tls
        else:
            trusted, proxy_tls = request.remote in self.trusted_proxies, False
        if trusted:
            proto = forwarded_proto(request.headers.getall("X-Forwarded-Proto", []))
            if proto is not None:
                return proto
        return "https" if proxy_tls else "http"

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


def forwarded_proto(headers: list[str]) -> str | None:
    """The scheme the nearest proxy wrote: the last value of the last `X-Forwarded-Proto` line
    (proxies that append do so on the right), if it is http or https; anything else: None."""
    if not headers:
        return None
    proto = headers[-1].rpartition(",")[2].strip().lower()
    return proto if proto in _SCHEMES else None


def client_scheme(request: web.Request) -> str:
    identity = request.config_dict.get(CLIENTS)
    return identity.scheme(request) if identity is not None else request.scheme


def client_key_of(request: web.Request) -> str:
    return request.config_dict[CLIENTS].key(request)
