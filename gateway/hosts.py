"""Which registry a request is for: `<name>.<domain>` (any port) names one; other hosts get
the default registry. And which Host headers are acceptable at all.

# SECURITY: the Host header reaches a response header (the challenge's realm), so a request
whose Host is not a plain `host[:port]` (a DNS name or IPv4 address, or an IPv6 address in
brackets) is refused with 400 before anything reads it (`errors.error_middleware`).
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from aiohttp import web

from ocigate.storage.errors import RegistryError

_HOST = re.compile(r"(?:\[([0-9A-Fa-f:.]{2,45})\]|[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252}))(?::([0-9]{1,5}))?")


class HostInvalid(RegistryError):
    code, status, message = "UNSUPPORTED", 400, "invalid Host header: expected host[:port]"


@lru_cache(maxsize=1024)  # every request checks it; clients send the same few hosts
def is_valid_host(host: str) -> bool:
    match = _HOST.fullmatch(host)
    if match is None:
        return False
    literal, port = match.groups()
    if port is not None and int(port) > 65535:
        return False
    if literal is not None:
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            return False
    return True


def check_host(request: web.Request) -> None:
    """Raise `HostInvalid` unless the Host header is valid (or absent, as HTTP/1.0 allows; a
    second Host header never gets this far: aiohttp's parser refuses it)."""
    host = request.headers.get("Host")
    if host is not None and not is_valid_host(host):
        raise HostInvalid()


def registry_name_for_host(host: str | None, domain: str | None, default: str) -> str:
    if not host or not domain:
        return default
    hostname = _strip_port(host).rstrip(".").lower()
    suffix = "." + domain.lower()
    if hostname.endswith(suffix):
        label = hostname[: -len(suffix)]
        if label and "." not in label:
            return label
    return default


def _strip_port(host: str) -> str:
    if host.startswith("["):  # [v6]:port
        return host[1 : host.find("]")] if "]" in host else host
    name, _, port = host.rpartition(":")
    return name if name and port.isdigit() else host
