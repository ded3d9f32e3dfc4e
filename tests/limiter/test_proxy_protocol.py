from __future__ import annotations

import ipaddress
import struct

import pytest

from ocigate.limiter.proxy_protocol import V2_SIGNATURE, ProxyProtocolError, parse_proxy_header


def v2(source: str, destination: str, command: int = 1, tlv: bytes = b"") -> bytes:
    src, dst = ipaddress.ip_address(source), ipaddress.ip_address(destination)
    family = 0x11 if src.version == 4 else 0x21
    body = src.packed + dst.packed + struct.pack("!HH", 40000, 443) + tlv
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(body)) + body


def test_v1_tcp4_and_tcp6() -> None:
    data = b"PROXY TCP4 198.51.100.4 10.0.0.1 40000 443\r\nGET / HTTP/1.1\r\n"
    header = parse_proxy_header(data)
    assert header is not None
    assert header.source == "198.51.100.4"
    assert data[header.length :].startswith(b"GET /")
    header = parse_proxy_header(b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 443\r\n")
    assert header is not None
    assert header.source == "2001:db8::7"


def test_v1_unknown_is_the_proxy_itself() -> None:
    header = parse_proxy_header(b"PROXY UNKNOWN\r\n")
    assert header is not None
    assert header.source is None


def test_v2_ipv4_ipv6_local_and_tlvs() -> None:
    data = v2("198.51.100.4", "10.0.0.1", tlv=b"\x04\x00\x01x") + b"GET"
    header = parse_proxy_header(data)
    assert header is not None
    assert (header.source, data[header.length :]) == ("198.51.100.4", b"GET")
    header = parse_proxy_header(v2("2001:db8::7", "2001:db8::1"))
    assert header is not None
    assert header.source == "2001:db8::7"
    header = parse_proxy_header(v2("198.51.100.4", "10.0.0.1", command=0))
    assert header is not None
    assert header.source is None


@pytest.mark.parametrize(
    "data", [b"PROXY TCP4 198.51", b"PRO", V2_SIGNATURE[:5], v2("198.51.100.4", "10.0.0.1")[:20]]
)
def test_a_partial_header_asks_for_more(data: bytes) -> None:
    assert parse_proxy_header(data) is None


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n",
        b"\x16\x03\x01\x02\x00",  # a TLS ClientHello, as skopeo sends first
        b"PROXY TCP4 nonsense 10.0.0.1 1 2\r\n",
        b"PROXY TCP4 2001:db8::1 10.0.0.1 1 2\r\n",
        b"PROXY " + b"A" * 200,
        b"\r\n\r\nXXXXXXXXXXXXXXXX",
    ],
)
def test_anything_else_is_refused(data: bytes) -> None:
    with pytest.raises(ProxyProtocolError):
        parse_proxy_header(data)
