"""Which addresses a webhook may be sent to: the SSRF guard's rules, in one place.

A webhook endpoint's URL comes from whoever registers it, so the worker must not become a way
into the deployment's own network. An address is refused when it is loopback, private
(RFC 1918, IPv6 unique-local), link-local (169.254/16 holds the cloud metadata service),
a cloud metadata address, shared (CGNAT 100.64/10), multicast, unspecified, reserved or
documentation space, the union of the lists of Svix's webhook client and Stripe's smokescreen
(https://github.com/svix/svix-webhooks, https://github.com/stripe/smokescreen). IPv6 addresses
that carry an IPv4 address (mapped, 6to4, NAT64, Teredo) are judged by that IPv4 address too.

The rules are applied twice: when an endpoint is saved (:func:`check_url`, every address its
name resolves to) and when a delivery connects (the worker's resolver hands the connection only
the addresses that pass, so a name that changes its answer in between gains nothing).
``ORDER_DISPATCH_WEBHOOKS_ALLOW_PRIVATE=true`` turns the guard off (and allows plain http).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4: list[tuple[str, str]] = [
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared (CGNAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.169.254/32", "cloud metadata"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "reserved"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "reserved"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("255.255.255.255/32", "broadcast"),
]
_V6: list[tuple[str, str]] = [
    ("::1/128", "loopback"),
    ("::/128", "unspecified"),
    ("fd00:ec2::254/128", "cloud metadata"),
    ("fc00::/7", "private"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("100::/64", "reserved"),
    ("5f00::/16", "reserved"),
]
_NETS = [(ipaddress.ip_network(net), why) for net, why in _V4 + _V6]
_NAT64 = [ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48")]


class EndpointRefused(ValueError):
    """A webhook URL the guard refuses; the message says which rule and which address."""


def refusal(address: str | IPAddress) -> str | None:
    """Why ``address`` is refused (``loopback``, ``private``, ``cloud metadata``, ...), or None
    when a webhook may go there."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    for net, why in _NETS:
        if ip.version == net.version and ip in net:
            return why
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and any(ip in net for net in _NAT64):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            inner = refusal(embedded)
            return f"{inner} (inside an IPv6 address)" if inner else None
    return None


@dataclass(frozen=True, slots=True)
class CheckedUrl:
    """A URL the guard accepted: its host and port, and the addresses it resolved to."""

    url: str
    host: str
    port: int
    addresses: tuple[str, ...]


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise EndpointRefused(f"cannot resolve {host!r}: {exc}") from None
    return sorted({str(info[4][0]) for info in infos})


def check_url(url: str, *, allow_private: bool, resolve: bool = True) -> CheckedUrl:
    """Check a webhook URL when it is saved: https (unless ``allow_private``), a host, no
    user name or password in it, and every address the host resolves to allowed
    (:class:`EndpointRefused` says why not)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise EndpointRefused(f"not a URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise EndpointRefused(f"the URL must be https (got {scheme or 'no scheme'!r})")
    if scheme == "http" and not allow_private:
        raise EndpointRefused(
            "the URL must be https (plain http only with ORDER_DISPATCH_WEBHOOKS_ALLOW_PRIVATE)"
        )
    if parts.username is not None or parts.password is not None:
        raise EndpointRefused("the URL may not carry a user name or password")
    host = parts.hostname
    if not host:
        raise EndpointRefused("the URL has no host")
    port = port or (443 if scheme == "https" else 80)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    addresses = [str(literal)] if literal is not None else []
    if literal is None and resolve:
        addresses = _resolve(host, port)
    if not allow_private:
        for address in addresses:
            why = refusal(address)
            if why is not None:
                shown = host if literal is not None else f"{host} resolves to {address}, which"
                raise EndpointRefused(f"{shown} is {why}")
    return CheckedUrl(url, host, port, tuple(addresses))
