"""Every built-in job type submitted through its console form, with real widgets, and its result read
as a person reads it, in Chromium: ``otel.retention``, ``otel.export``, ``assistant.batch_analysis``
(a report) and ``gateway.batch`` (against the gateway tests' fake provider)."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import openai
import pytest

from core.testing import serve_in_thread
from plugins.assistant.tests.test_batch import export
from plugins.gateway.tests.fake_provider import create_provider
from plugins.gateway.tests.kit import KEK, configure

FAST_JOBS = {"heartbeat_seconds": 0.2, "lease_seconds": 10.0, "poll_seconds": 0.2, "shutdown_grace_seconds": 1.0}
BUILT_IN = {"otel.retention", "otel.export", "assistant.batch_analysis", "gateway.batch"}


@pytest.fixture
def base(make_app: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every built-in plugin; the job processes read the gateway's settings from the environment, as
    deployed workers do."""
    monkeypatch.setenv("PLUGHOST_GATEWAY_KEK", KEK)
    monkeypatch.setenv("PLUGHOST_GATEWAY_ALLOW_PRIVATE", "1")
    plugins = ["otel", "gateway", "jobs", "assistant", "workspace", "security", "timing"]
    app = make_app(plugins, {"jobs": FAST_JOBS, "otel": {"grpc_address": ""}})
    with serve_in_thread(app) as url:
        yield url


def submit(page: Any, base: str, job_type: str) -> Any:
    """Open the form for ``job_type``; returns the form's field area."""
    page.goto(f"{base}/jobs")
    page.get_by_text("Submit a job", exact=True).click()
    page.locator("#submit-type").select_option(job_type)
    return page.locator("#submit-fields")


def field(fields: Any, name: str) -> Any:
    return fields.locator(f'[data-field="{name}"]')


def finish(page: Any, base: str) -> None:
    from playwright.sync_api import expect

    page.get_by_role("button", name="Submit", exact=True).click()
    expect(page).to_have_url(re.compile(re.escape(f"{base}/jobs/") + r"[0-9a-f]{32}$"))
    expect(page.locator("#job-status")).to_have_text("SUCCEEDED", timeout=90_000)


def test_every_built_in_job_type_through_its_form_and_its_result(
    base: str, browser_page: Any, screenshot: Callable[..., Any]
) -> None:
    from playwright.sync_api import expect

    page = browser_page
    assert {t["name"] for t in httpx.get(f"{base}/api/jobs/types").json()["types"]} >= BUILT_IN
    failed = [export(base, "shop", failed=True, llm=True), export(base, "shop", failed=True)]
    export(base, "shop", failed=False, llm=True)

    # otel.retention: a number with its bound, a readable description with `code`.
    fields = submit(page, base, "otel.retention")
    expect(page.locator("#submit-description code")).to_have_text("days")  # markdown, not backticks
    days = field(fields, "days").locator("input")
    expect(days).to_have_attribute("type", "number")
    expect(days).to_have_attribute("min", "1")
    days.fill("30")
    finish(page, base)
    expect(page.locator("#job-result")).to_contain_text("Deleted traces")
    expect(page.locator("#job-result > dl")).not_to_contain_text("{")  # JSON only when asked for ("As JSON")

    # otel.export: a select for the enum, a date-time picker, human labels; the artifact with type and size.
    fields = submit(page, base, "otel.export")
    expect(fields).to_contain_text("Minimum duration (ms)")
    expect(fields).not_to_contain_text("Min Duration Ms")
    status = field(fields, "status").locator("select")
    expect(status.locator("option")).to_have_text(["\u2014 any \u2014", "ok", "error"])
    status.select_option("error")
    start = field(fields, "start_after").locator("input")
    expect(start).to_have_attribute("type", "datetime-local")
    start.fill((datetime.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    finish(page, base)
    expect(page.locator("#job-params")).to_contain_text("Statuserror")
    expect(page.locator("#job-result")).to_contain_text("Traces2")  # the two failed traces of the last hour
    artifact = page.locator("#job-artifacts tbody tr", has_text="traces.jsonl")
    expect(artifact).to_contain_text("application/jsonl")
    expect(artifact).to_contain_text(re.compile(r"\d+(\.\d)? KiB|\d+ bytes"))
    expect(page.locator("#job-details time").first).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT"))

    # assistant.batch_analysis: a name/value editor for its filters; the result is a report.
    fields = submit(page, base, "assistant.batch_analysis")
    field(fields, "status").locator("select").select_option("error")
    field(fields, "last_minutes").locator("input").fill("60")
    filters = field(fields, "filters")
    filters.get_by_role("button", name="+ Add").click()
    filters.get_by_label("name").fill("name")
    filters.get_by_label("value").fill("charge card")
    finish(page, base)
    report = page.locator("#job-result")
    expect(report.get_by_role("heading", name="Report")).to_be_visible()
    expect(report.locator(".tile", has_text="traces analysed")).to_contain_text("2")
    expect(report.locator(".findings")).to_contain_text("2 of 2 traces failed")
    expect(report.locator(".findings")).to_contain_text("charge card: card declined")
    expect(report.locator(".chip")).to_contain_text(["status = error", "name = charge card"])
    links = report.get_by_role("link", name="GET /checkout")
    expect(links).to_have_count(2)
    screenshot(page, "jobs-batch-report", full_page=True)
    hrefs = {links.nth(index).get_attribute("href") for index in range(2)}
    assert hrefs == {f"/traces/{trace_id}" for trace_id in failed}
    links.first.click()
    expect(page.locator("#trace-title")).to_have_text("GET /checkout")

    # gateway.batch: the uploaded file is offered; the answers and errors are files to download.
    with serve_in_thread(create_provider()[0]) as provider:
        configure(base, provider, "chat", [("echo", "openai", "echo-1", 1)])
        lines = [
            {
                "custom_id": f"q{n}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": {"model": "chat", "messages": [{"role": "user", "content": f"hello {n}"}]},
            }
            for n in range(3)
        ]
        content = "".join(json.dumps(line) + "\n" for line in lines).encode()
        client = openai.OpenAI(base_url=f"{base}/gateway/v1", api_key="unused", max_retries=0)
        uploaded = client.files.create(file=("questions.jsonl", io.BytesIO(content)), purpose="batch").id
        fields = submit(page, base, "gateway.batch")
        file_id = field(fields, "input_file_id").locator("input")
        expect(fields.locator("datalist option")).to_have_attribute("value", uploaded)  # offered, not to be typed
        file_id.fill(uploaded)
        expect(field(fields, "concurrency").locator("input")).to_have_attribute("max", "256")
        finish(page, base)
    result = page.locator("#job-result")
    expect(result.locator(".tile", has_text="answered")).to_contain_text("3")
    with page.expect_download() as downloading:
        result.get_by_role("link", name=re.compile(r"^file-.*\.jsonl$")).first.click()
    answers = [json.loads(line) for line in downloading.value.path().read_text().splitlines()]
    assert sorted(answer["custom_id"] for answer in answers) == ["q0", "q1", "q2"]
