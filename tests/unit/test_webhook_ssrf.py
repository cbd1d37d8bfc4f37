"""The SSRF guard: HTTPS only, every resolved address public unless the operator allows
its range, and the address checked is the one returned for connecting."""

from __future__ import annotations

import ipaddress

import pytest

from ocrvault.errors import ErrorCode
from ocrvault.webhooks.ssrf import AddressGuard, AddressRefused, guard_for, parse_cidrs

REFUSED = {
    "loopback": ["127.0.0.1", "127.8.9.10", "::1"],
    "private": ["10.0.0.1", "172.16.0.1", "172.31.255.254", "192.168.1.1", "fc00::1",
                "fd12:3456::1"],
    "link-local": ["169.254.169.254", "169.254.0.1", "fe80::1"],
    "multicast": ["224.0.0.1", "239.255.255.250", "ff02::1"],
    "unspecified": ["0.0.0.0", "::"],
    "reserved": ["240.0.0.1", "255.255.255.255", "100.64.0.1", "192.0.2.1", "198.18.0.1",
                 "2001:db8::1"],
    # IPv4 in IPv6 clothing is judged as the IPv4 address it carries.
    "mapped": ["::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe"],
}


def _url(address: str) -> str:
    return f"https://[{address}]/hook" if ":" in address else f"https://{address}/hook"


@pytest.mark.parametrize("address", [a for group in REFUSED.values() for a in group])
def test_every_non_public_range_is_refused(address: str) -> None:
    with pytest.raises(AddressRefused) as refused:
        AddressGuard().check(_url(address))
    assert refused.value.code is ErrorCode.WEBHOOK_URL_REFUSED
    assert "OCRVAULT_WEBHOOK_ALLOW_CIDRS" in refused.value.detail


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "::1"])
def test_an_allow_listed_range_is_let_through_and_nothing_beside_it(address: str) -> None:
    network = ipaddress.ip_network(address)
    guard = AddressGuard(allow_cidrs=[network])
    assert guard.check(_url(address)).address == address
    neighbour = str(ipaddress.ip_address(address) + 1)
    with pytest.raises(AddressRefused):
        guard.check(_url(neighbour))


def test_a_public_address_passes_and_is_the_one_to_connect_to() -> None:
    target = AddressGuard().check("https://1.1.1.1:8443/path?q=1")
    assert (target.address, target.host, target.port, target.path) == (
        "1.1.1.1", "1.1.1.1", 8443, "/path?q=1")


def test_a_name_resolving_to_loopback_is_refused_without_the_allow_list() -> None:
    # The system resolver, as deliveries use it: localhost is 127.0.0.1 (or ::1).
    with pytest.raises(AddressRefused, match="'localhost' resolves to"):
        AddressGuard().check("https://localhost/hook")
    allowed = guard_for(False, "127.0.0.0/8, ::1/128")
    assert ipaddress.ip_address(allowed.check("https://localhost/hook").address).is_loopback


def test_one_non_public_address_among_a_names_addresses_refuses_it() -> None:
    answers = {"mixed.example": ["93.184.216.34", "10.0.0.7"]}
    guard = AddressGuard(resolver=lambda host, port: answers[host])
    with pytest.raises(AddressRefused, match=r"10\.0\.0\.7"):
        guard.check("https://mixed.example/")


def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(AddressRefused, match="does not resolve"):
        AddressGuard().check("https://no-such-host.invalid/")


@pytest.mark.parametrize(("url", "reason"), [
    ("http://1.1.1.1/", "https"), ("ftp://1.1.1.1/", "https"), ("file:///etc/passwd", "https"),
    ("https://user:secret@1.1.1.1/", "credentials"), ("https:///path", "host"),
    ("https://1.1.1.1/a b", "spaces"), ("https://1.1.1.1/#frag", "fragment"),
    ("https://1.1.1.1:99999/", "port"), ("https://1.1.1.1/" + "a" * 2100, "2048"),
])
def test_malformed_or_plain_http_urls_are_refused(url: str, reason: str) -> None:
    with pytest.raises(AddressRefused, match=reason):
        AddressGuard().check(url)


def test_plain_http_only_where_the_operator_allows_it() -> None:
    assert AddressGuard(allow_http=True).check("http://1.1.1.1/").scheme == "http"


def test_allow_cidrs_parse_from_the_setting_and_a_typo_fails_at_start() -> None:
    assert [str(n) for n in parse_cidrs(" 10.0.0.0/8,,::1/128 ")] == ["10.0.0.0/8", "::1/128"]
    assert parse_cidrs("") == ()
    with pytest.raises(ValueError, match=r"10\.0\.0\.300"):
        guard_for(False, "10.0.0.300/8")
