"""The client's address as the limiter established it (PROXY header or a trusted proxy's
`X-Forwarded-For`), or the TCP peer."""

from __future__ import annotations

from aiohttp import web

from ocigate.limiter.gate import ConnectionGate


def client_address(request: web.Request) -> str | None:
    transport = request.transport
    gate = transport.get_protocol() if transport is not None else None
    if isinstance(gate, ConnectionGate):
        return gate.client_address
    return request.remote
