"""The security middleware through a real server: hosts, cross-origin writes, CORS, token, headers.

The probes through ``serve`` run twice: without accounts, and with accounts on (``PLUGHOST_SECURITY_AUTH=users``),
every request of the test presenting an admin key, so that accounts take none of these protections away."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi import APIRouter, Response
from flask import Flask

from core import RouterContribution, StartupError, hookimpl
from core.cli import build_cli
from core.testing import assert_plugin_contract, serve_in_thread

TOKEN = "s3cret-token-of-enough-length"


class SpendRoutes:
    """A gateway-like native write route (and a GET setting cookies), counting the calls that got through."""

    PLUGHOST_NAME = "spend"

    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    def plughost_routers(self, host: Any) -> RouterContribution:
        router = APIRouter()

        @router.post("/gateway/chat/invocations")
        async def invoke() -> dict[str, str]:
            self.calls.append("gateway")
            return {"spent": "api key"}

        @router.get("/cookies")
        async def cookies() -> Response:
            response = Response("two cookies")
            response.set_cookie("a", "1")
            response.set_cookie("b", "2")
            return response

        return RouterContribution("spend", router)


class Spend(SpendRoutes):
    """:class:`SpendRoutes` and a bridged Flask write route, in place of the console."""

    @hookimpl
    def plughost_wsgi_app(self, host: Any) -> Flask:
        legacy = Flask("legacy")

        @legacy.post("/ajax-api/2.0/runs/create")
        def create_run() -> dict[str, str]:
            self.calls.append("flask")
            return {"run": "created"}

        return legacy


@pytest.fixture
def spend(register_plugin: Any) -> Spend:
    return register_plugin(Spend())


@pytest.fixture(params=["token", "users"], ids=["without-accounts", "with-accounts"])
def accounts(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path | None:
    """With accounts on: the data dir of a database holding an admin key (made with the CLI), which every
    ``httpx`` call of the test presents unless it sends an ``Authorization`` of its own."""
    if request.param == "token":
        return None
    data_dir = tmp_path / "accounts"
    env = {"PLUGHOST_DATA_DIR": str(data_dir), "PLUGHOST_SECURITY_AUTH": "users"}
    made = CliRunner().invoke(build_cli(), ["keys", "add", "probe", "--role", "admin"], env=env)
    assert made.exit_code == 0, made.output
    key = made.output.strip()
    for method in ("get", "post", "put", "patch", "delete", "options"):
        monkeypatch.setattr(httpx, method, _presenting(getattr(httpx, method), key))
    return data_dir


def _presenting(function: Any, key: str) -> Any:
    def call(url: str, *args: Any, headers: Any = None, **kwargs: Any) -> Any:
        return function(url, *args, headers={"Authorization": f"Bearer {key}", **dict(headers or {})}, **kwargs)

    return call


@pytest.fixture
def serve(make_app: Any, spend: Spend, accounts: Path | None) -> Any:
    """``serve(**security_settings)``: the base URL of a live server with the security plugin."""

    def start(**settings: Any) -> Any:
        if accounts is None:
            return serve_in_thread(make_app(["security"], {"security": settings}))
        return serve_in_thread(
            make_app(["security"], {"data_dir": accounts, "security": {"auth": "users", **settings}})
        )

    return start


@pytest.fixture
def base(serve: Any) -> Iterator[str]:
    with serve(allowed_origins=["https://app.example.com", "https://*.trusted.example"]) as url:
        yield url


def assert_security_headers(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "SAMEORIGIN"


def test_unknown_host_is_refused_with_the_setting_to_change(base: str) -> None:
    response = httpx.get(f"{base}/cookies", headers={"Host": "attacker.example"})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/plain")
    assert "Host 'attacker.example' is not allowed" in response.text
    assert "PLUGHOST_SECURITY_ALLOWED_HOSTS" in response.text
    assert_security_headers(response)


def test_health_is_exempt_from_the_host_check(base: str) -> None:
    assert httpx.get(f"{base}/health", headers={"Host": "attacker.example"}).status_code == 200


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "localhost:5000",
        "127.0.0.1",
        "127.9.9.9:80",
        "[::1]:5000",
        "10.1.2.3",
        "192.168.0.7:5000",
        "172.20.0.1",
    ],
)
def test_loopback_and_private_hosts_are_allowed_by_default(base: str, host: str) -> None:
    assert httpx.get(f"{base}/cookies", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["8.8.8.8", "172.32.0.1", "localhost.attacker.example", "[2001:db8::1]:80"])
def test_public_hosts_are_refused_by_default(base: str, host: str) -> None:
    assert httpx.get(f"{base}/cookies", headers={"Host": host}).status_code == 403


def test_wildcard_and_port_entries(serve: Any) -> None:
    with serve(allowed_hosts=["*.example.com", "api.test:8080", "203.0.113.0/24"]) as url:

        def status(host: str) -> int:
            return httpx.get(f"{url}/cookies", headers={"Host": host}).status_code

        assert status("a.example.com") == 200 and status("deep.a.example.com:1234") == 200
        assert status("example.com") == 403 and status("badexample.com") == 403
        assert status("api.test:8080") == 200 and status("api.test:9090") == 403 and status("api.test") == 403
        assert status("203.0.113.9") == 200 and status("localhost") == 403  # the list replaces the defaults


def test_cross_site_text_plain_post_cannot_spend_the_gateway_keys(base: str, spend: Spend) -> None:
    """The reference server's hole: a page on any site POSTs text/plain (no preflight) to the gateway."""
    attack = {"Origin": "https://attacker.example", "Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site"}
    gateway = httpx.post(f"{base}/gateway/chat/invocations", content='{"messages": []}', headers=attack)
    assert gateway.status_code == 403
    assert "cross-origin POST from 'https://attacker.example' refused" in gateway.json()["detail"]
    assert_security_headers(gateway)
    bridged = httpx.post(f"{base}/ajax-api/2.0/runs/create", content="{}", headers=attack)
    assert bridged.status_code == 403
    assert spend.calls == []  # neither handler ran


def test_cross_site_post_without_origin_is_refused_when_the_browser_says_so(base: str, spend: Spend) -> None:
    response = httpx.post(f"{base}/gateway/chat/invocations", headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status_code == 403 and spend.calls == []


def test_same_origin_loopback_and_allowed_origins_may_write(base: str, spend: Spend) -> None:
    port = base.rsplit(":", 1)[1]
    same = httpx.post(f"{base}/gateway/chat/invocations", headers={"Origin": f"http://127.0.0.1:{port}"})
    assert same.status_code == 200 and "access-control-allow-origin" not in same.headers
    local_dev = httpx.post(f"{base}/gateway/chat/invocations", headers={"Origin": "http://localhost:3000"})
    assert local_dev.status_code == 200
    allowed = httpx.post(f"{base}/ajax-api/2.0/runs/create", headers={"Origin": "https://app.example.com"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert "Origin" in allowed.headers["vary"]
    wildcard = httpx.post(f"{base}/gateway/chat/invocations", headers={"Origin": "https://ci.trusted.example"})
    assert wildcard.status_code == 200
    assert (
        httpx.post(f"{base}/gateway/chat/invocations", headers={"Origin": "http://ci.trusted.example"}).status_code
        == 403
    )
    assert spend.calls == ["gateway", "gateway", "flask", "gateway"]


def test_non_browser_clients_without_origin_may_write(base: str, spend: Spend) -> None:
    assert httpx.post(f"{base}/gateway/chat/invocations").status_code == 200


def test_cross_origin_reads_get_no_cors_headers_unless_allowed(base: str) -> None:
    response = httpx.get(f"{base}/cookies", headers={"Origin": "https://attacker.example"})
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers


def test_preflight_is_answered_for_allowed_origins_and_refused_for_others(base: str) -> None:
    request = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type, authorization"}
    allowed = httpx.options(
        f"{base}/gateway/chat/invocations", headers={"Origin": "https://app.example.com", **request}
    )
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert allowed.headers["access-control-allow-headers"] == "content-type, authorization"
    refused = httpx.options(
        f"{base}/gateway/chat/invocations", headers={"Origin": "https://attacker.example", **request}
    )
    assert refused.status_code == 400
    assert "PLUGHOST_SECURITY_ALLOWED_ORIGINS" in refused.json()["detail"]
    assert_security_headers(refused)


def test_any_origin_turns_credentials_off(serve: Any) -> None:
    with serve(allowed_origins=["*"]) as url:
        response = httpx.post(f"{url}/gateway/chat/invocations", headers={"Origin": "https://anyone.example"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers


def test_security_headers_on_every_response_without_dropping_duplicates(base: str) -> None:
    cookies = httpx.get(f"{base}/cookies")
    assert cookies.headers.get_list("set-cookie") == ["a=1; Path=/; SameSite=lax", "b=2; Path=/; SameSite=lax"]
    assert_security_headers(cookies)
    assert_security_headers(httpx.get(f"{base}/no/such/page"))  # Flask's 404 through the bridge
    assert_security_headers(httpx.get(f"{base}/health"))


def test_token_is_required_everywhere_but_health(make_app: Any, spend: Spend) -> None:
    """Without accounts only: with them, a key is the way in (``test_accounts.py``)."""
    with serve_in_thread(make_app(["security"], {"security": {"token": TOKEN}})) as url:
        missing = httpx.get(f"{url}/cookies")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == 'Bearer realm="plughost"'
        assert_security_headers(missing)
        assert (
            httpx.post(f"{url}/gateway/chat/invocations", headers={"Authorization": "Bearer wrong"}).status_code == 401
        )
        assert httpx.get(f"{url}/cookies", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert (
            httpx.post(f"{url}/gateway/chat/invocations", headers={"Authorization": f"bearer {TOKEN}"}).status_code
            == 200
        )
        assert httpx.get(f"{url}/health").status_code == 200
    assert spend.calls == ["gateway"]


def test_bad_settings_stop_startup_naming_the_variable(make_app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUGHOST_SECURITY_ALLOWED_HOSTS", "good.example,bad host!")
    with pytest.raises(StartupError, match="PLUGHOST_SECURITY_ALLOWED_HOSTS.*'bad host!' is not a host name"):
        make_app(["security"])
    monkeypatch.delenv("PLUGHOST_SECURITY_ALLOWED_HOSTS")
    monkeypatch.setenv("PLUGHOST_SECURITY_TOKEN", "short")
    with pytest.raises(StartupError, match="PLUGHOST_SECURITY_TOKEN.*at least 16 characters"):
        make_app(["security"])


def test_disabling_security_is_logged_as_a_warning(make_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="plughost"):
        make_app(["workspace"])
    assert "plugin 'security' is installed but disabled" in caplog.text


def test_the_token_is_never_logged_or_shown(make_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        app = make_app(["security"], {"security": {"token": TOKEN}})
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(app.assembly.host.plugin_settings("security"))


def test_keeps_the_plugin_contract() -> None:
    import plugins.security

    assert_plugin_contract(plugins.security)
