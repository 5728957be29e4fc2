"""SSRF: redirects are not followed, provider error bodies are not relayed, IPv6 forms of private IPv4 are refused."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from core.testing import client_for
from plugins.gateway.ssrf import is_public
from plugins.gateway.tests.kit import API_KEY, KEK, configure
from plugins.gateway.upstream import PublicResolver


@pytest.fixture(scope="module")
def public_only(module_make_app: Any) -> Iterator[Any]:
    """One gateway that refuses private provider addresses, for this module's refused secrets: a refused
    secret is never stored, so the tests share it."""
    with client_for(module_make_app(["gateway"], {"gateway": {"allow_private": False, "kek": KEK}})) as client:
        yield client


def test_a_redirect_is_a_provider_error_and_never_followed(base: str, provider: Any) -> None:
    provider_url, seen = provider
    configure(base, provider_url, "moved", [("moved", "openai", "redirect", 1)])
    for stream in (False, True):
        response = httpx.post(
            f"{base}/gateway/moved/invocations", json={"messages": [{"role": "user", "content": "x"}], "stream": stream}
        )
        assert response.status_code == 502 and "redirect" in response.json()["error"]["message"]
        assert "never relay" not in response.text
    assert [call["path"] for call in seen] == ["/v1/chat/completions"] * 2  # /v1/elsewhere was never asked


def test_a_provider_error_body_is_not_relayed_only_its_json_message(base: str, provider: Any) -> None:
    configure(base, provider[0], "html", [("html", "openai", "html-error", 1)])
    configure(base, provider[0], "picky", [("picky", "anthropic", "bad-request", 1)])
    html = httpx.post(f"{base}/gateway/html/invocations", json={"messages": [{"role": "user", "content": "x"}]})
    assert html.status_code == 502 and html.json()["error"]["message"] == "html: the provider answered 404"
    picky = httpx.post(f"{base}/gateway/picky/invocations", json={"messages": [{"role": "user", "content": "x"}]})
    assert (
        picky.status_code == 400
        and picky.json()["error"]["message"] == "picky: the provider answered 400: temperature too hot"
    )


@pytest.mark.parametrize(
    "address",
    [
        "::127.0.0.1",  # IPv4-compatible
        "::ffff:127.0.0.1",  # IPv4-mapped
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
        "64:ff9b:1::a00:1",  # local-use NAT64
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "::ffff:0:127.0.0.1",  # IPv4-translated (SIIT)
        "::ffff:0:a9fe:a9fe",  # IPv4-translated 169.254.169.254
        "2001:db9::5efe:7f00:1",  # ISATAP of 127.0.0.1 under a global-looking prefix
        "2606:4700::200:5efe:a00:1",  # ISATAP (universal bit) of 10.0.0.1
    ],
)
def test_ipv6_forms_of_private_ipv4_addresses_are_refused(public_only: Any, address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))
    response = public_only.post(
        "/api/gateway/secrets", json={"name": "k", "api_key": API_KEY, "base_url": f"https://[{address}]/v1"}
    )
    assert response.status_code == 400 and "non-public address" in response.json()["detail"]


def test_ipv6_forms_of_public_ipv4_addresses_pass() -> None:
    assert all(
        is_public(ipaddress.ip_address(a))
        for a in ("64:ff9b::808:808", "2002:808:808::", "2606:4700:4700::1111", "8.8.8.8", "::ffff:0:808:808")
    )


def test_the_connection_time_resolver_refuses_names_of_private_addresses() -> None:
    async def resolve() -> None:
        resolver = PublicResolver()
        try:
            await resolver.resolve("localhost", 443)
        finally:
            await resolver.close()

    with pytest.raises(OSError, match="'localhost' resolves to 127.0.0.1, a non-public address"):
        asyncio.run(resolve())
