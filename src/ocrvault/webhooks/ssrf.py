"""The SSRF guard: where a webhook may be sent.

A webhook URL is the one place where a caller makes this server open a connection, so a
URL that reaches the server's own network (a database, a cloud metadata service at
169.254.169.254, an admin port on loopback) would turn webhooks into a proxy. Every URL is
checked at registration and again before each attempt, since DNS can change in between:

- HTTPS only; plain HTTP only when the operator sets ``OCRVAULT_WEBHOOK_ALLOW_HTTP``;
- no credentials in the URL, a host name or address, a port in range;
- the host is resolved and *every* address must be public: loopback, private, shared
  (100.64/10), link-local, multicast, unspecified, reserved and documentation ranges are
  refused (an IPv4 address mapped into IPv6, or embedded by NAT64, is judged as IPv4),
  unless it lies in a CIDR of ``OCRVAULT_WEBHOOK_ALLOW_CIDRS``.

The caller connects to the address checked here (:class:`Target`), never to a second
resolution of the name, so a DNS answer that changes between the check and the connect
(rebinding) cannot slip through. Redirects are never followed (delivery.py).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from ocrvault.errors import ErrorCode, InputRejected

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]

MAX_URL_CHARS = 2048
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Public by the registry but not a place a webhook should go.
_ALSO_REFUSED = tuple(ipaddress.ip_network(net) for net in (
    "100.64.0.0/10",  # carrier-grade NAT (shared address space)
    "192.0.0.0/24", "192.0.2.0/24", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
    "2001:db8::/32",
))


class AddressRefused(InputRejected):
    """A webhook URL this server will not send to; the detail says why (never an address
    the caller did not give)."""

    def __init__(self, detail: str) -> None:
        super().__init__(ErrorCode.WEBHOOK_URL_REFUSED, detail)


@dataclass(frozen=True, slots=True)
class Target:
    """A checked URL: where to connect (``address``) and what to name there (``host``, for
    the Host header and TLS SNI and certificate check)."""

    url: str
    scheme: str
    host: str
    port: int
    address: str  # the first checked address, the one to connect to
    path: str  # path and query, as given


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (getaddrinfo); AddressRefused if none."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise AddressRefused(f"The host {host[:100]!r} does not resolve.") from error
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def parse_cidrs(text: str) -> tuple[Network, ...]:
    """``OCRVAULT_WEBHOOK_ALLOW_CIDRS``: CIDRs separated by commas (ValueError if one is bad)."""
    return tuple(ipaddress.ip_network(part.strip()) for part in text.split(",") if part.strip())


def _as_ipv4(address: Address) -> Address:
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def refusal(address: Address) -> str | None:
    """Why ``address`` is no place for a webhook (the kind of range), or None if public."""
    address = _as_ipv4(address)
    checks: tuple[tuple[bool, str], ...] = (
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address.is_unspecified, "unspecified"),
        (address.is_reserved, "reserved"),
        (address.is_private, "private"),
        (any(address in net for net in _ALSO_REFUSED if net.version == address.version),
         "reserved"),
        (not address.is_global, "non-public"),
    )
    return next((kind for refused, kind in checks if refused), None)


class AddressGuard:
    def __init__(self, *, allow_http: bool = False, allow_cidrs: Sequence[Network] = (),
                 resolver: Resolver = system_resolver) -> None:
        self.allow_http = allow_http
        self.allow_cidrs = tuple(allow_cidrs)
        self.resolver = resolver

    def check(self, url: str) -> Target:
        """The target of ``url``, resolved now and every address checked; AddressRefused
        with the reason otherwise."""
        scheme, host, port, path = self._parse(url)
        try:
            literal: Address | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        addresses = [str(literal)] if literal is not None else list(self.resolver(host, port))
        if not addresses:
            raise AddressRefused(f"The host {host[:100]!r} does not resolve.")
        for text in addresses:
            address = ipaddress.ip_address(text.split("%", 1)[0])
            kind = refusal(address)
            if kind is not None and not any(address in net for net in self.allow_cidrs
                                            if net.version == address.version):
                named = "" if literal is not None else f"{host[:100]!r} resolves to "
                raise AddressRefused(
                    f"Webhooks are not sent to {kind} addresses: {named}{address}. The "
                    "operator may allow a range with OCRVAULT_WEBHOOK_ALLOW_CIDRS.")
        return Target(url=url, scheme=scheme, host=host, port=port, address=addresses[0],
                      path=path)

    def _parse(self, url: str) -> tuple[str, str, int, str]:
        if len(url) > MAX_URL_CHARS or any(c.isspace() or ord(c) < 32 for c in url):
            raise AddressRefused(f"A webhook URL is at most {MAX_URL_CHARS} characters, "
                                 "without spaces or control characters.")
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme != "https" and not (scheme == "http" and self.allow_http):
            raise AddressRefused("A webhook URL must use https (plain http only where the "
                                 "operator allows it with OCRVAULT_WEBHOOK_ALLOW_HTTP).")
        if parts.username is not None or parts.password is not None:
            raise AddressRefused("A webhook URL must not hold credentials.")
        if parts.fragment:
            raise AddressRefused("A webhook URL must not have a fragment.")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError as error:
            raise AddressRefused("The webhook URL's port is not valid.") from error
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise AddressRefused("A webhook URL needs a host.")
        path = parts.path or "/"
        return scheme, host, port, f"{path}?{parts.query}" if parts.query else path


def guard_for(allow_http: bool, allow_cidrs: str) -> AddressGuard:
    """The guard the operator's settings (``OCRVAULT_WEBHOOK_ALLOW_*``) ask for; ValueError
    for a CIDR that does not parse, so a typo fails at start-up rather than at delivery."""
    return AddressGuard(allow_http=allow_http, allow_cidrs=parse_cidrs(allow_cidrs))
