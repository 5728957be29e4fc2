"""A tour of every console page with realistic data, in Chromium: an agent's traces (OpenTelemetry
SDK), LLM calls through the gateway to llmock, every built-in job type run; each page is checked to
render without a script error and photographed. ``UPDATE_DOCS_SCREENSHOTS=1`` writes the photos
to ``docs/screenshots/`` as well: the README's screenshots come from this test, never by hand."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.testing import serve_in_thread
from plugins.assistant.tests.test_batch import export
from plugins.gateway.tests.kit import API_KEY, KEK

DOCS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
FAST_JOBS = {"heartbeat_seconds": 0.2, "lease_seconds": 10.0, "poll_seconds": 0.2, "shutdown_grace_seconds": 1.0}
FINAL = {"SUCCEEDED", "FAILED", "TIMEOUT", "CANCELED"}
DATED = {"traces", "trace", "jobs", "job-report", "gateway-endpoints", "gateway-usage", "assistant"}
LOCAL_TIME = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d{3})?$")


def wait_for_job(base: str, job: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while (found := httpx.get(f"{base}/api/jobs/{job['id']}").json())["status"] not in FINAL:
        assert time.monotonic() < deadline, found
        time.sleep(0.1)
    return found


def seed(base: str, llmock: Any) -> dict[str, str]:
    """What a team's first day leaves behind; returns ids the tour opens."""
    for service, failed, llm in [
        ("shop", True, True),
        ("shop", False, True),
        ("shop", True, False),
        ("stock", False, False),
    ]:
        trace_id = export(base, service, failed=failed, llm=llm)
    api = httpx.Client(base_url=f"{base}/api/gateway")
    api.post(
        "/secrets", json={"name": "llmock", "api_key": API_KEY, "base_url": llmock.base_url("openai")}
    ).raise_for_status()
    api.post("/models", json={"name": "mock-gpt", "provider": "openai", "model": "gpt-4o-mini", "secret": "llmock"})
    api.post("/endpoints", json={"name": "chat", "models": [{"model": "mock-gpt"}]}).raise_for_status()
    for question in ("Where is my order?", "Can I change the address?", "Cancel it, please."):
        httpx.post(
            f"{base}/gateway/v1/chat/completions",
            json={"model": "chat", "messages": [{"role": "user", "content": question}]},
            timeout=30,
        ).raise_for_status()
    report = httpx.post(
        f"{base}/api/jobs", json={"type": "assistant.batch_analysis", "params": {"last_minutes": 60}}
    ).json()
    export_job = httpx.post(f"{base}/api/jobs", json={"type": "otel.export", "params": {"service": "shop"}}).json()
    httpx.post(f"{base}/api/jobs", json={"type": "otel.retention", "params": {"days": 30}})
    assert wait_for_job(base, report)["status"] == "SUCCEEDED"
    assert wait_for_job(base, export_job)["status"] == "SUCCEEDED"
    failed_trace = export(base, "shop", failed=True, llm=True)
    explained = httpx.post(  # an assistant conversation, its LLM the gateway's endpoint
        f"{base}/api/assistant/explain", json={"trace_id": failed_trace, "endpoint": "chat"}, timeout=60
    )
    assert explained.status_code == 200, explained.text
    return {"trace": trace_id, "failed_trace": failed_trace, "report": report["id"], "export": export_job["id"]}


@pytest.fixture
def base(make_app: Callable[..., Any]) -> Any:
    plugins = ["otel", "gateway", "jobs", "assistant", "workspace", "security", "timing"]
    settings = {"jobs": FAST_JOBS, "otel": {"grpc_address": ""}, "gateway": {"kek": KEK, "allow_private": True}}
    with serve_in_thread(make_app(plugins, settings)) as url:
        yield url


def test_every_console_page_with_realistic_data(
    base: str, llmock: Any, browser_page: Any, screenshot: Callable[..., Path]
) -> None:
    from playwright.sync_api import expect

    ids = seed(base, llmock)
    page = browser_page
    script_errors: list[str] = []
    page.on("pageerror", lambda error: script_errors.append(str(error)))
    tour: list[tuple[str, str, str]] = [  # (name, path, something the page shows once loaded)
        ("home", "/", "#plugins tbody tr"),
        ("traces", "/traces", "#traces tbody tr a"),
        ("trace", f"/traces/{ids['failed_trace']}#{'0' * 16}", "#rows .row"),
        ("jobs", "/jobs", "#jobs tbody tr a"),
        ("jobs-submit", "/jobs?submit=assistant.batch_analysis", "#submit-fields [data-field='filters']"),
        ("job-report", f"/jobs/{ids['report']}", "#job-result .findings"),
        ("job-export", f"/jobs/{ids['export']}", "#job-artifacts tbody tr"),
        ("gateway", "/gateway", "main"),
        ("gateway-endpoints", "/gateway/endpoints", "tr[data-name='chat']"),
        ("gateway-playground", "/gateway/playground?endpoint=chat", "main"),
        ("gateway-usage", "/gateway/usage", "main"),
        ("assistant", "/assistant", "main table tbody tr"),
        ("not-found", "/no/such/page", "#not-found"),
    ]
    shots = []
    for name, path, ready in tour:
        page.goto(base + path)
        expect(page.locator(ready).first).to_be_visible()
        if name == "trace":  # open the failed LLM call in the span panel
            page.locator("#rows .row", has_text="chat gpt-4o").first.click()
            expect(page.locator("#span-panel h2")).to_have_text("chat gpt-4o")
            scope = page.locator("#span-panel section", has_text="Scope")
            expect(scope.locator("tr", has_text="version").locator("td")).to_have_text("—")  # none was sent
        if name == "jobs-submit":
            expect(page.locator("#submit-description")).not_to_be_empty()
        page.wait_for_load_state("networkidle")
        if name in DATED:  # one date format on every page: local time, the UTC time on hover
            times = page.locator("time[datetime]")
            expect(times.first).to_have_text(LOCAL_TIME)
            expect(times.first).to_have_attribute("title", re.compile(r" UTC "))
        shots.append(screenshot(page, name, full_page=True))
    assert script_errors == []
    if os.environ.get("UPDATE_DOCS_SCREENSHOTS") == "1":
        DOCS.mkdir(exist_ok=True)
        for shot in shots:
            shutil.copyfile(shot, DOCS / shot.name)
