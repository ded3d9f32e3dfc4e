"""Which registry a request is for: `<name>.<domain>` (any port) names one; other hosts get
the default registry."""

from __future__ import annotations


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
