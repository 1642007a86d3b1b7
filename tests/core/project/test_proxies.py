"""X-Forwarded-For is believed only from a trusted proxy; without one the client is the
connection's own address, whatever header a script sends."""

from __future__ import annotations

import pytest

from core.project.proxies import client_address, parse_trusted_proxies

NONE = parse_trusted_proxies("")


def test_without_a_trusted_proxy_a_forged_header_does_not_change_the_client():
    assert client_address("203.0.113.9", "6.6.6.6", NONE) == "203.0.113.9"
    assert client_address(None, "6.6.6.6, 7.7.7.7", NONE) == "localhost"
    assert client_address("203.0.113.9", None, NONE) == "203.0.113.9"


def test_behind_a_trusted_proxy_the_client_is_the_hop_the_proxy_saw():
    trusted = parse_trusted_proxies("10.0.0.0/8, localhost")
    assert client_address("10.1.2.3", "203.0.113.9", trusted) == "203.0.113.9"
    # a client's own forged hops come first; the proxy appends what it saw, right-most
    assert client_address("10.1.2.3", "6.6.6.6, 203.0.113.9", trusted) == "203.0.113.9"
    # chained trusted proxies are skipped from the right
    assert client_address(None, "203.0.113.9, 10.9.9.9", trusted) == "203.0.113.9"
    # no header, or only proxies in it: the connection itself
    assert client_address("10.1.2.3", None, trusted) == "10.1.2.3"
    assert client_address("10.1.2.3", "10.4.4.4", trusted) == "10.1.2.3"
    # a trusted network does not make every connection a proxy
    assert client_address("198.51.100.1", "203.0.113.9", trusted) == "198.51.100.1"


def test_ipv6_proxies_and_addresses():
    trusted = parse_trusted_proxies("fd00::/8")
    assert client_address("fd00::1", "2001:db8::5", trusted) == "2001:db8::5"
    assert client_address("2001:db8::7", "2001:db8::5", trusted) == "2001:db8::7"


@pytest.mark.parametrize("value", ["10.0.0.300", "proxy.internal", "10.0.0.0/40"])
def test_a_setting_that_is_not_an_address_is_named(value):
    with pytest.raises(ValueError, match=rf"CERVIXSCOPE_TRUSTED_PROXIES: '{value}' is not an IP"):
        parse_trusted_proxies(f"127.0.0.1, {value}")
