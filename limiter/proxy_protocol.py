"""PROXY protocol v1 (text) and v2 (binary) headers, as HAProxy, AWS NLB and others send them.

Spec: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt. Only the source address is
used, and of the v2 TLVs only PP2_TYPE_SSL (§2.2.5): whether the client reached the proxy over TLS
(a balancer that terminates TLS, e.g. an NLB with a TLS listener), so the gateway tells clients
to come back over https (`gateway/clients.py`). The header comes before any HTTP byte, so
`gate.py` parses it before the HTTP parser sees the connection.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
_V1_PREFIX = b"PROXY "
_V1_MAX = 107  # spec §2.1: the longest v1 line, CRLF included
_FAMILIES = {0x1: 4, 0x2: 16}  # address family → bytes of one address
_ADDRESS_BLOCKS = {0x1: 12, 0x2: 36, 0x3: 216}  # family → bytes of addresses and ports (§2.2)
_PP2_TYPE_SSL = 0x20
_PP2_CLIENT_SSL = 0x01  # in the SSL TLV's first byte: the client connected over TLS


class ProxyProtocolError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    source: str | None  # None: LOCAL / UNKNOWN, i.e. the proxy speaking for itself (health checks)
    length: int  # bytes of the header, to skip before HTTP starts
    tls: bool = False  # the client reached the proxy over TLS (v2 only: PP2_CLIENT_SSL)


def parse_proxy_header(data: bytes) -> ProxyHeader | None:
    """The header at the start of `data`; None while more bytes are needed."""
    if data[:1] == b"\r":
        return _parse_v2(data)
    if data[:1] == b"P":
        return _parse_v1(data)
    raise ProxyProtocolError("connection does not start with a PROXY protocol header")


def _parse_v1(data: bytes) -> ProxyHeader | None:
    if not data.startswith(_V1_PREFIX[: len(data)]):
        raise ProxyProtocolError("bad PROXY v1 header")
    end = data.find(b"\r\n", 0, _V1_MAX)
    if end < 0:
        if len(data) >= _V1_MAX:
            raise ProxyProtocolError("PROXY v1 header too long")
        return None
    parts = data[:end].decode("ascii", "replace").split(" ")
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        return ProxyHeader(None, end + 2)
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise ProxyProtocolError("bad PROXY v1 header")
    try:
        source = ipaddress.ip_address(parts[2])
        ipaddress.ip_address(parts[3])
        ports = int(parts[4]), int(parts[5])
    except ValueError:
        raise ProxyProtocolError("bad PROXY v1 address") from None
    if source.version != (4 if parts[1] == "TCP4" else 6) or not all(0 <= p <= 65535 for p in ports):
        raise ProxyProtocolError("bad PROXY v1 address")
    return ProxyHeader(str(source), end + 2)


def _parse_v2(data: bytes) -> ProxyHeader | None:
    if not V2_SIGNATURE.startswith(data[:12]):
        raise ProxyProtocolError("bad PROXY v2 signature")
    if len(data) < 16:
        return None
    version, command = data[12] >> 4, data[12] & 0x0F
    if version != 2 or command > 1:
        raise ProxyProtocolError("bad PROXY v2 version or command")
    length = 16 + int.from_bytes(data[14:16], "big")
    if len(data) < length:
        return None
    family = data[13] >> 4
    if command == 0 or family not in _ADDRESS_BLOCKS:  # LOCAL (the proxy itself), or AF_UNSPEC
        return ProxyHeader(None, length)
    tlvs = 16 + _ADDRESS_BLOCKS[family]
    if length < tlvs:
        raise ProxyProtocolError("PROXY v2 address block too short")
    tls = _client_tls(data[tlvs:length])
    if family not in _FAMILIES:  # AF_UNIX: no address to name the client by
        return ProxyHeader(None, length, tls)
    source = ipaddress.ip_address(data[16 : 16 + _FAMILIES[family]])
    return ProxyHeader(str(source), length, tls)


def _client_tls(tlvs: bytes) -> bool:
    """Whether the TLVs hold PP2_TYPE_SSL with PP2_CLIENT_SSL set. Every TLV must fit in the
    header (as haproxy checks); the SSL one carries at least its client byte and verify word."""
    offset = 0
    tls = False
    while offset < len(tlvs):
        if len(tlvs) - offset < 3:
            raise ProxyProtocolError("PROXY v2 TLV truncated")
        kind, size = tlvs[offset], int.from_bytes(tlvs[offset + 1 : offset + 3], "big")
        value = tlvs[offset + 3 : offset + 3 + size]
        if len(value) < size:
            raise ProxyProtocolError("PROXY v2 TLV longer than the header")
        if kind == _PP2_TYPE_SSL:
            if size < 5:
                raise ProxyProtocolError("PROXY v2 SSL TLV too short")
            tls = bool(value[0] & _PP2_CLIENT_SSL)
        offset += 3 + size
    return tls
