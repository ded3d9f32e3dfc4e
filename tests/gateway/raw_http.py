"""Reading an HTTP/1.1 response off a raw socket (plain or TLS), for tests that drive the
connection byte by byte."""

from __future__ import annotations

import socket


def read_response_head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and the body bytes that came with the head."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        assert piece, f"connection closed before a response: {data!r}"
        data += piece
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, rest


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response with a Content-Length body."""
    status, headers, body = read_response_head(sock)
    while len(body) < int(headers.get("content-length", "0")):
        piece = sock.recv(65536)
        assert piece, "connection closed inside a response body"
        body += piece
    return status, headers, body
