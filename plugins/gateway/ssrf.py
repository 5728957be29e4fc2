"""Provider base URLs may not point into private networks (SSRF), checked on write and before each call."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import anyio.to_thread


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
        if not address.is_global:
            raise UnsafeURL(
                f"base URL {url!r} resolves to {address}, a non-public address; "
                "set PLUGHOST_GATEWAY_ALLOW_PRIVATE=1 to allow private providers"
            )


async def _resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await anyio.to_thread.run_sync(socket.getaddrinfo, host, port, 0, socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise UnsafeURL(f"cannot resolve {host!r}: {error}") from None
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]
