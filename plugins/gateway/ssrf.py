"""Provider base URLs may not point into private networks (SSRF), checked on write and before each call.

IPv6 forms that carry an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, IPv4-translated
``::ffff:0:a.b.c.d``, IPv4-compatible ``::a.b.c.d``, NAT64 ``64:ff9b::/96`` and
``64:ff9b:1::/48``, 6to4 ``2002::/16``, Teredo, ISATAP interface identifiers) are decoded
and the IPv4 address is checked as well. Without ``allow_private``, the
gateway's HTTP client resolves names with ``PublicResolver`` (:mod:`.upstream`), so the
addresses it connects to are checked too.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import anyio.to_thread

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

NAT64 = ipaddress.ip_network("64:ff9b::/96")
LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")
"""SIIT (RFC 2765): ``::ffff:0:a.b.c.d`` stands for the IPv4 address; Python's ``ipaddress`` does not decode it."""
ISATAP_IDS = (0x0000_5EFE, 0x0200_5EFE)
"""ISATAP (RFC 5214): an interface identifier ``[02]00:5efe:a.b.c.d`` under any /64 reaches that IPv4 address."""


class UnsafeURL(ValueError):
    """The URL is not https, or its host resolves to a private, loopback or link-local address."""


async def check_base_url(url: str, *, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnsafeURL(f"base URL {url!r} must be an absolute https URL")
    if allow_private:
        return
    if parts.scheme != "https":
        raise UnsafeURL(f"base URL {url!r} must use https (PLUGHOST_GATEWAY_ALLOW_PRIVATE=1 allows http)")
    for address in await _resolve(parts.hostname, parts.port or 443):
        if not is_public(address):
            raise UnsafeURL(
                f"base URL {url!r} resolves to {address}, a non-public address; "
                "set PLUGHOST_GATEWAY_ALLOW_PRIVATE=1 to allow private providers"
            )


def is_public(address: Address) -> bool:
    """Globally reachable, and so is every IPv4 address the IPv6 form embeds."""
    if not address.is_global:
        return False
    return all(embedded.is_global for embedded in embedded_ipv4(address))


def embedded_ipv4(address: Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address routes to or stands for (none for IPv4)."""
    if isinstance(address, ipaddress.IPv4Address):
        return []
    value, found = int(address), []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if value >> 32 == 0 and value > 1:  # IPv4-compatible ::a.b.c.d (deprecated, still routed by some stacks)
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if address in NAT64 or address in IPV4_TRANSLATED or (value >> 32) & 0xFFFF_FFFF in ISATAP_IDS:
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if address in LOCAL_NAT64:  # RFC 8215: the IPv4 address sits at an operator-chosen place; refuse the range
        found.append(ipaddress.IPv4Address("0.0.0.0"))
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)
    return found


async def _resolve(host: str, port: int) -> list[Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await anyio.to_thread.run_sync(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise UnsafeURL(f"cannot resolve {host!r}: {error}") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
