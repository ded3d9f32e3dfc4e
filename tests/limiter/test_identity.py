from __future__ import annotations

from ocigate.limiter.config import parse_networks
from ocigate.limiter.identity import TrustedProxies, client_key


def test_ipv4_counts_per_address_and_ipv6_per_prefix() -> None:
    assert client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("2001:db8:1:2:aaaa::1", 128) == "2001:db8:1:2:aaaa::1/128"
    assert client_key("2001:db8:1:2::1", 48) == "2001:db8:1::/48"


def test_ipv4_mapped_ipv6_is_the_ipv4_client() -> None:
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7"


def test_forwarded_for_counts_only_from_trusted_proxies() -> None:
    trusted = TrustedProxies(parse_networks("10.0.0.0/8, 192.168.1.1"))
    assert trusted.forwarded_client("10.1.2.3", "198.51.100.4") == "198.51.100.4"
    assert trusted.forwarded_client("192.168.1.1", "198.51.100.4") == "198.51.100.4"
    # SECURITY: an untrusted peer's header changes nothing
    assert trusted.forwarded_client("203.0.113.9", "198.51.100.4") == "203.0.113.9"


def test_a_spoofed_leftmost_entry_is_ignored() -> None:
    trusted = TrustedProxies(parse_networks("10.0.0.0/8"))
    # the client wrote "1.2.3.4" itself; our proxies appended the real address and their own
    header = "1.2.3.4, 198.51.100.4, 10.0.0.2"
    assert trusted.forwarded_client("10.0.0.1", header) == "198.51.100.4"
    assert trusted.forwarded_client("10.0.0.1", "garbage, 198.51.100.4") == "198.51.100.4"
    assert trusted.forwarded_client("10.0.0.1", "not-an-ip") == "10.0.0.1"


def test_no_trusted_proxies_trusts_nobody() -> None:
    trusted = TrustedProxies(())
    assert not trusted
    assert "127.0.0.1" not in trusted
    assert trusted.forwarded_client("127.0.0.1", "198.51.100.4") == "127.0.0.1"
