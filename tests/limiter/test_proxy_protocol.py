from __future__ import annotations

import struct

import pytest

from ocigate.limiter.proxy_protocol import V2_SIGNATURE, ProxyProtocolError, parse_proxy_header

from .probes import proxy_v2 as v2
from .probes import ssl_tlv


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


VERSION = b"\x21\x00\x07TLSv1.3"  # PP2_SUBTYPE_SSL_VERSION
NOOP = b"\x04\x00\x02ab"  # PP2_TYPE_NOOP


@pytest.mark.parametrize(
    ("tlvs", "tls"),
    [
        (b"", False),
        (NOOP, False),
        (ssl_tlv(0x01), True),
        (ssl_tlv(0x01, VERSION), True),
        (NOOP + ssl_tlv(0x07, VERSION) + NOOP, True),  # CLIENT_SSL with CERT_CONN and CERT_SESS
        (ssl_tlv(0x00), False),  # the proxy took the connection in the clear
        (ssl_tlv(0x06), False),  # certificate bits without PP2_CLIENT_SSL
    ],
    ids=["none", "noop", "ssl", "ssl-version", "ssl-among-others", "ssl-clear", "cert-bits-only"],
)
def test_v2_ssl_tlv_says_whether_the_client_used_tls(tlvs: bytes, tls: bool) -> None:
    data = v2("198.51.100.4", "10.0.0.1", tlv=tlvs) + b"GET"
    header = parse_proxy_header(data)
    assert header is not None
    assert (header.source, header.tls, data[header.length :]) == ("198.51.100.4", tls, b"GET")
    header = parse_proxy_header(v2("2001:db8::7", "2001:db8::1", tlv=tlvs))
    assert header is not None
    assert (header.source, header.tls) == ("2001:db8::7", tls)


def test_a_local_header_is_the_proxy_speaking_for_itself_whatever_its_tlvs() -> None:
    header = parse_proxy_header(v2("198.51.100.4", "10.0.0.1", command=0, tlv=ssl_tlv()))
    assert header is not None
    assert (header.source, header.tls) == (None, False)


def test_v1_never_says_tls() -> None:
    header = parse_proxy_header(b"PROXY TCP4 198.51.100.4 10.0.0.1 40000 443\r\n")
    assert header is not None
    assert header.tls is False


@pytest.mark.parametrize(
    "tlvs",
    [
        b"\x20",  # a type without a length
        b"\x20\x00",
        ssl_tlv()[:-1],  # the value runs past the header
        b"\x20\x00\x04\x01\x00\x00\x00",  # an SSL TLV without its verify word
        b"\x20\x00\x00",  # an empty SSL TLV
        NOOP + b"\x04\xff\xff",  # a length past the end, after a good TLV
        ssl_tlv() + b"\x04",  # a good SSL TLV, then a truncated one
    ],
    ids=["type-only", "half-length", "overrun", "no-verify", "empty-ssl", "overrun-after", "truncated-after"],
)
def test_malformed_tlvs_are_refused(tlvs: bytes) -> None:
    with pytest.raises(ProxyProtocolError):
        parse_proxy_header(v2("198.51.100.4", "10.0.0.1", tlv=tlvs))


def test_an_address_block_shorter_than_its_family_is_refused() -> None:
    unix = V2_SIGNATURE + b"\x21\x31" + struct.pack("!H", 100) + bytes(100)  # AF_UNIX needs 216
    with pytest.raises(ProxyProtocolError):
        parse_proxy_header(unix)
    inet = V2_SIGNATURE + b"\x21\x11" + struct.pack("!H", 8) + bytes(8)
    with pytest.raises(ProxyProtocolError):
        parse_proxy_header(inet)


def test_a_unix_socket_header_names_no_client_but_may_say_tls() -> None:
    block = bytes(216) + ssl_tlv()
    header = parse_proxy_header(V2_SIGNATURE + b"\x21\x31" + struct.pack("!H", len(block)) + block)
    assert header is not None
    assert (header.source, header.tls, header.length) == (None, True, 16 + len(block))
