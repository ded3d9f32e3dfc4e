"""Raw-socket probes for the gateway-level limiter tests."""

from __future__ import annotations

import ipaddress
import socket
import struct
import time

from ocigate.limiter.proxy_protocol import V2_SIGNATURE


def hold_connections(ports: list[int], count: int) -> list[socket.socket]:
    """`count` connections from 127.0.0.1, spread round-robin over `ports`, all held open."""
    return [socket.create_connection(("127.0.0.1", ports[i % len(ports)]), timeout=10) for i in range(count)]


def served(sockets: list[socket.socket], settle: float = 0.5) -> int:
    """Send one request on each held connection; count those answered (refused ones were closed)."""
    time.sleep(settle)  # every slot decided (a Redis round trip each)
    answered = 0
    for sock in sockets:
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: probe\r\n\r\n")
            answered += sock.recv(64).startswith(b"HTTP/1.1 200")
        except OSError:
            pass
    return answered


def close_all(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        sock.close()


def proxy_v1(source: str) -> bytes:
    return f"PROXY TCP4 {source} 127.0.0.1 40000 5000\r\n".encode()


def proxy_v2(source: str, destination: str = "127.0.0.1", command: int = 1, tlv: bytes = b"") -> bytes:
    """A PROXY v2 header (command 1: PROXY, 0: LOCAL) over TCP, with `tlv` after the addresses."""
    src, dst = ipaddress.ip_address(source), ipaddress.ip_address(destination)
    family = 0x11 if src.version == 4 else 0x21
    body = src.packed + dst.packed + struct.pack("!HH", 40000, 443) + tlv
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", len(body)) + body


def ssl_tlv(client: int = 0x01, subtlvs: bytes = b"") -> bytes:
    """PP2_TYPE_SSL: the client byte (0x01: PP2_CLIENT_SSL), the verify word (0: verified), and
    sub-TLVs (PP2_SUBTYPE_SSL_VERSION and the like)."""
    value = bytes([client]) + b"\x00\x00\x00\x00" + subtlvs
    return b"\x20" + struct.pack("!H", len(value)) + value
