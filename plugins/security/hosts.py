"""Which ``Host`` headers and which ``Origin``s are allowed: parsing and matching, nothing else."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_ALLOWED_HOSTS = (
    "localhost",
    "127.0.0.0/8",
    "::1",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
)
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
HOST_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def split_host_port(value: str) -> tuple[str, int | None]:
    """``"Example.com:80"`` -> ``("example.com", 80)``; ``"[::1]:5000"`` -> ``("::1", 5000)``."""
    value = value.strip().lower()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        host, _, port = value.partition(":")
    else:
        host, port = value, ""
    if port and not port.isdigit():
        raise ValueError(f"bad port in {value!r}")
    return host.rstrip("."), int(port) if port else None


@dataclass(frozen=True)
class HostRule:
    """One allow-list entry: a name, a ``*.suffix`` wildcard, an address or network, with an optional port."""

    name: str | None
    network: Network | None
    port: int | None

    @classmethod
    def parse(cls, entry: str) -> HostRule:
        host, port = split_host_port(entry) if "/" not in entry else (entry.strip(), None)
        try:
            return cls(None, ipaddress.ip_network(host, strict=False), port)
        except ValueError:
            pass
        label = host[2:] if host.startswith("*.") else host
        if host != "*" and not all(HOST_LABEL.match(part) for part in label.split(".")):
            raise ValueError(f"{entry!r} is not a host name, '*.domain' wildcard, IP address or network")
        return cls(host, None, port)

    def matches(self, host: str, port: int | None) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.network is not None:
            try:
                return ipaddress.ip_address(host) in self.network
            except ValueError:
                return False
        assert self.name is not None
        if self.name == "*":
            return True
        if self.name.startswith("*."):
            return host.endswith(self.name[1:]) and host != self.name[2:]
        return host == self.name


class HostAllowList:
    def __init__(self, entries: list[str]) -> None:
        self.rules = [HostRule.parse(entry) for entry in entries]

    def allows(self, host_header: str) -> bool:
        try:
            host, port = split_host_port(host_header)
        except ValueError:
            return False
        return any(rule.matches(host, port) for rule in self.rules)


def normalise_origin(origin: str) -> str | None:
    """``"HTTPS://Example.com:443"`` -> ``"https://example.com"``; ``None`` for anything not an http(s) origin."""
    try:
        parts = urlsplit(origin.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


class OriginPolicy:
    """Allowed origins: the configured ones (``*``, exact, or ``https://*.domain``) and always loopback."""

    def __init__(self, entries: list[str]) -> None:
        self.any = "*" in entries
        self.exact: set[str] = set()
        self.wildcards: list[tuple[str, str]] = []  # (scheme, ".domain")
        for entry in entries:
            if entry == "*":
                continue
            scheme, sep, rest = entry.partition("://*.")
            if sep:
                if scheme not in ("http", "https") or not rest:
                    raise ValueError(f"{entry!r} is not an origin wildcard such as 'https://*.example.com'")
                self.wildcards.append((scheme, "." + rest.lower()))
                continue
            normal = normalise_origin(entry)
            if normal is None:
                raise ValueError(f"{entry!r} is not an origin such as 'https://app.example.com'")
            self.exact.add(normal)

    def allows(self, origin: str) -> bool:
        normal = normalise_origin(origin)
        if normal is None:
            return False
        if self.any or normal in self.exact:
            return True
        parts = urlsplit(normal)
        host = parts.hostname or ""
        if host in LOOPBACK_NAMES or _is_loopback_address(host):
            return True
        return any(parts.scheme == scheme and host.endswith(suffix) for scheme, suffix in self.wildcards)


def same_origin(origin: str, scheme: str, host_header: str) -> bool:
    """Whether ``origin`` is the origin the request was addressed to."""
    return normalise_origin(origin) == normalise_origin(f"{scheme}://{host_header}")


def _is_loopback_address(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
