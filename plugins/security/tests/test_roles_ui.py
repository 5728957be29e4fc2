"""Pages hide what the role may not do, in Chromium: signed in as a viewer, no control that changes anything
(submitting or cancelling jobs, gateway settings, the playground, the assistant, accounts) is shown; an editor
sees the editor's but not the admin's; an admin sees them all. The server refuses them anyway (403)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from llmock.pytest_plugin import LLMock

from core.testing import serve_in_thread
from plugins.assistant.tests.test_batch import export
from plugins.gateway.tests.kit import API_KEY, KEK
from plugins.security.tests.test_login import Console

PLUGINS = ["security", "workspace", "otel", "gateway", "jobs", "assistant"]
Needs = str
"""``editor``, ``admin`` (in the chosen workspace) or ``admin-anywhere`` (an admin of some workspace)."""
SHOWN = {
    "viewer": set(),
    "editor": {"editor"},
    "admin": {"editor", "admin", "admin-anywhere"},
}


def seed(base: str, llmock: Any) -> dict[str, str]:
    """A trace, gateway settings, a finished job and an assistant conversation, made with accounts off."""
    trace_id = export(base, "shop", failed=True, llm=True)
    api = httpx.Client(base_url=f"{base}/api/gateway", timeout=30)
    secret = {"name": "llmock", "api_key": API_KEY, "base_url": llmock.base_url("openai")}
    api.post("/secrets", json=secret).raise_for_status()
    api.post("/models", json={"name": "mock-gpt", "provider": "openai", "model": "gpt-4o-mini", "secret": "llmock"})
    api.post("/endpoints", json={"name": "chat", "models": [{"model": "mock-gpt"}]}).raise_for_status()
    job = httpx.post(f"{base}/api/jobs", json={"type": "otel.export", "params": {}}).json()
    deadline = time.monotonic() + 90
    while httpx.get(f"{base}/api/jobs/{job['id']}").json()["status"] != "SUCCEEDED":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    explained = httpx.post(f"{base}/api/assistant/explain", json={"trace_id": trace_id, "endpoint": "chat"}, timeout=60)
    assert explained.status_code == 200, explained.text
    return {"trace": trace_id, "job": job["id"]}


@pytest.fixture(scope="module")
def console(
    module_make_app: Any, tmp_path_factory: pytest.TempPathFactory, llmock_server: Any
) -> Iterator[tuple[Console, dict[str, str]]]:
    """The seeded database served with accounts on, and a viewer, an editor and an admin: made once for the
    module (seeding runs a job and an assistant call); the roles' tests only read, but the admin's, last."""
    sqlite_url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('roles') / 'plughost.db'}"
    data_dir = tmp_path_factory.mktemp("roles-data")
    settings: dict[str, Any] = {
        "database_url": sqlite_url,
        "data_dir": data_dir,
        "otel": {"grpc_address": ""},
        "gateway": {"kek": KEK, "allow_private": True},
        "jobs": {"poll_seconds": 0.2},
    }
    with serve_in_thread(module_make_app(PLUGINS, settings)) as base:
        ids = seed(base, LLMock(llmock_server).reset())  # whatever an earlier test left scripted, forgotten
    with serve_in_thread(module_make_app(PLUGINS, {**settings, "security": {"auth": "users"}})) as url:
        env = {
            "PLUGHOST_DATABASE_URL": sqlite_url,
            "PLUGHOST_DATA_DIR": str(data_dir),
            "PLUGHOST_SECURITY_AUTH": "users",
        }
        console = Console(url, env)
        for role in SHOWN:
            console.add_user(role, role)
        yield console, ids


def pages(ids: dict[str, str]) -> list[tuple[str, str, list[tuple[str, Needs]]]]:
    """Each page, what it shows once loaded, and its controls that change something with the role they need."""
    config = [
        ("#gw-new", "admin"),
        ('tr[data-name] button:text-is("Edit")', "admin"),
        ('tr[data-name] button:text-is("Delete")', "admin"),
    ]
    return [
        ("/jobs", "#jobs tbody tr a", [("#submit-job", "editor")]),
        (f"/jobs/{ids['job']}", "#delete:not([hidden])", [("#delete", "editor")]),
        (
            "/gateway",
            '[data-count="models"]:not(:text-is("…"))',
            [
                ('.gw-subnav a[href="/gateway/secrets"]', "admin"),
                ('.gw-subnav a[href="/gateway/playground"]', "editor"),
                ('a.card[href="/gateway/secrets"]', "admin"),
                ('a.card[href="/gateway/playground"]', "editor"),
            ],
        ),
        ("/gateway/endpoints", 'tr[data-name="chat"]', config),
        ("/gateway/models", 'tr[data-name="mock-gpt"]', config),
        ("/gateway/playground", '#gw-endpoint option[value="chat"]', [("#gw-chat-form", "editor")]),
        (f"/traces/{ids['trace']}", "#assistant", [("#assistant", "editor")]),
        ("/assistant", "#conversations tbody tr", [('#conversations button:text-is("Delete")', "editor")]),
        ("/accounts", "#users-table", [("#key-form", "admin-anywhere"), ("#user-form", "admin-anywhere")]),
    ]


def usage_of(base: str, key: str, name: str) -> dict[str, Any] | None:
    """The gateway's usage of the key ``name`` over the last hour, as ``key`` reads it."""
    keys = httpx.get(f"{base}/api/gateway/usage/keys", headers={"Authorization": f"Bearer {key}"}).json()["keys"]
    return next((entry for entry in keys if entry["key"] == name), None)


@pytest.mark.parametrize("role", list(SHOWN))  # the admin last: its test adds a key and makes a call
def test_each_role_is_shown_only_the_controls_it_may_use(
    console: tuple[Console, dict[str, str]],
    llmock: Any,
    browser_page: Any,
    screenshot: Callable[..., Path],
    role: str,
) -> None:
    from playwright.sync_api import expect

    server, ids = console
    page = browser_page
    server.sign_in(page, role, start="/jobs")
    page.wait_for_url(f"{server.url}/jobs")
    for path, ready, controls in pages(ids):
        page.goto(server.url + path)
        expect(page.locator("body")).to_have_attribute("data-role", role)
        page.locator(ready).first.wait_for(state="attached")
        for selector, needs in controls:
            control = page.locator(selector)
            assert control.count() >= 1, f"{path}: no {selector}"
            for found in control.all():
                if needs in SHOWN[role]:
                    expect(found).to_be_visible()
                else:
                    expect(found).to_be_hidden()
        if path in ("/jobs", "/gateway/endpoints", f"/traces/{ids['trace']}"):
            screenshot(page, f"{role}-{path.strip('/').split('/')[0]}-{path.count('/')}", full_page=True)
    if role == "admin":  # the gateway's usage per key: a key's call, and the one its limit refused
        key = server.cli("keys", "add", "app", "--role", "editor", "--rpm", "1")
        calls = [
            httpx.post(
                f"{server.url}/gateway/v1/chat/completions",
                json={"model": "chat", "messages": [{"role": "user", "content": "hi"}]},
                headers={"Authorization": f"Bearer {key}"},
                timeout=30,
            ).status_code
            for _ in range(2)
        ]
        assert sorted(calls) == [200, 429]
        deadline = time.monotonic() + 30  # the call is stored in batches, the refusal off the call's path
        while (per_key := usage_of(server.url, key, "app")) is None or (
            per_key["calls"],
            per_key["refused"]["requests"],
        ) != (1, 1):
            assert time.monotonic() < deadline, per_key
            time.sleep(0.1)
        page.goto(f"{server.url}/gateway/usage")
        row = page.locator('#gw-keys tr[data-key="app"]')
        expect(row.locator("td").nth(1)).to_have_text("1")
        expect(row.locator("td.limited")).to_have_text("1")
        expect(row.locator("td.cost")).to_have_text(re.compile(r"^\$0\.\d+$"))
        screenshot(page, "admin-gateway-usage-per-key", full_page=True)
    if role == "viewer":  # hidden, and refused all the same
        refused = page.evaluate(
            """() => plughost.api("/api/jobs", {method: "POST", headers: {"Content-Type": "application/json"},
                     body: JSON.stringify({type: "otel.export", params: {}})}).then(r => r.status)"""
        )
        assert refused == 403
