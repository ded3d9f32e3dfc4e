"""Raw-socket probes for the gateway-level limiter tests."""

from __future__ import annotations

import socket
import time


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
