"""Where a registry must be reached for docker to verify its certificate: docker treats every
registry in 127.0.0.0/8 as insecure (it skips verification), so TLS tests listen on the
machine's own address, under a name of their own in /etc/hosts."""

from __future__ import annotations

import socket
import subprocess

import pytest

_SPARE_ADDRESS = "198.51.100.7"


def machine_address() -> str:
    """An IPv4 address of this machine outside 127.0.0.0/8."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True, check=False
    ).stdout
    for line in out.splitlines():
        address = line.split()[3].split("/")[0]
        if not address.startswith("127."):
            return address
    # none (an isolated machine): one of TEST-NET-2 on the loopback interface will do
    add = ["ip", "addr", "add", f"{_SPARE_ADDRESS}/32", "dev", "lo"]
    added = subprocess.run(add, capture_output=True, text=True, check=False)
    if added.returncode != 0 and "already assigned" not in added.stderr:
        pytest.fail(f"no IPv4 address outside 127.0.0.0/8, and none could be added: {added.stderr}")
    return _SPARE_ADDRESS


def resolve(name: str, address: str) -> None:
    try:
        if socket.gethostbyname(name) == address:
            return
    except socket.gaierror:
        pass
    with open("/etc/hosts", "a") as hosts:
        hosts.write(f"\n{address} {name}\n")
    assert socket.gethostbyname(name) == address, f"{name} does not resolve to {address} (/etc/hosts)"
