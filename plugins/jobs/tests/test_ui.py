"""The job pages in Chromium: find a job in the list, open it, watch it run, cancel it (a console
write, through the security plugin's cross-origin rules)."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx

from core.testing import serve_in_thread

from . import jobtypes
from .conftest import FAST


def test_job_list_detail_and_cancel(
    make_app: Callable[..., Any], register_plugin: Callable[..., object], browser_page: Any
) -> None:
    from playwright.sync_api import expect

    register_plugin(jobtypes)
    app = make_app(
        ["jobs", "workspace", "security", jobtypes], {"jobs": FAST}
    )  # console writes pass the security rules
    page = browser_page
    with serve_in_thread(app) as base:
        echo = httpx.post(f"{base}/api/jobs", json={"type": "test.echo", "params": {"value": "<b>hi</b>"}}).json()
        sleeper = httpx.post(f"{base}/api/jobs", json={"type": "test.sleep", "params": {"seconds": 60}}).json()

        page.goto(f"{base}/")
        page.get_by_role("navigation").get_by_role("link", name="Jobs").click()
        rows = page.locator("#jobs tbody tr")
        expect(rows).to_have_count(2)
        page.locator("#type-filter").select_option("test.echo")
        page.get_by_role("button", name="Show").click()
        expect(rows).to_have_count(1)
        rows.first.get_by_role("link").click()
        expect(page).to_have_url(f"{base}/jobs/{echo['id']}")  # the filtered row links to the echo job
        expect(page.locator("#job-status")).to_have_text("SUCCEEDED")  # refreshed until it ends
        expect(page.locator("#job-params dd")).to_have_text("<b>hi</b>")  # shown as text, not markup
        expect(page.get_by_role("button", name="Cancel job")).to_be_hidden()

        page.goto(f"{base}/jobs/{sleeper['id']}")
        expect(page.locator("#job-status")).to_have_text("RUNNING")
        cancel = page.get_by_role("button", name="Cancel job")
        expect(cancel).to_have_class("danger")  # styled as destructive, not the primary blue
        page.once("dialog", lambda dialog: dialog.dismiss())  # "No": nothing happens
        cancel.click()
        page.wait_for_timeout(500)
        assert httpx.get(f"{base}/api/jobs/{sleeper['id']}").json()["cancel_requested"] is False
        questions: list[str] = []
        page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
        cancel.click()
        expect(page.locator("#job-status")).to_have_text("CANCELED")
        assert questions and sleeper["id"] in questions[0]
        assert httpx.get(f"{base}/api/jobs/{sleeper['id']}").json()["status"] == "CANCELED"

        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Delete job").click()  # a finished job can go, confirmed
        expect(page).to_have_url(f"{base}/jobs")
        assert httpx.get(f"{base}/api/jobs/{sleeper['id']}").status_code == 404


def test_job_detail_shows_the_log_and_downloads_an_artifact(
    make_app: Callable[..., Any],
    register_plugin: Callable[..., object],
    browser_page: Any,
    screenshot: Callable[..., Any],
) -> None:
    from playwright.sync_api import expect

    register_plugin(jobtypes)
    page = browser_page
    with serve_in_thread(make_app(["jobs", "workspace", "security", jobtypes], {"jobs": FAST})) as base:
        job = httpx.post(
            f"{base}/api/jobs", json={"type": "test.report", "params": {"lines": 2, "artifact": "lines.txt"}}
        ).json()
        page.goto(f"{base}/jobs/{job['id']}")
        expect(page.locator("#job-status")).to_have_text("SUCCEEDED")
        expect(page.locator("#job-details")).to_contain_text("from a program")  # the log, below the result
        artifact = page.locator("#job-artifacts tbody tr", has_text="lines.txt")
        expect(artifact).to_contain_text("text/plain")  # its type
        expect(artifact).to_contain_text("13 bytes")  # and its size
        with page.expect_download() as downloading:
            page.locator("#job-artifacts").get_by_role("link", name="lines.txt").click()
        path = downloading.value.path()
        assert downloading.value.suggested_filename == "lines.txt"
        assert path.read_text() == "line 0\nline 1"
        screenshot(page, "jobs-detail", full_page=True)


def test_submit_form_from_the_type_schema_with_errors_at_the_field(
    make_app: Callable[..., Any],
    register_plugin: Callable[..., object],
    browser_page: Any,
    screenshot: Callable[..., Any],
) -> None:
    from playwright.sync_api import expect

    register_plugin(jobtypes)
    page = browser_page
    with serve_in_thread(make_app(["jobs", "workspace", "security", jobtypes], {"jobs": FAST})) as base:
        page.goto(f"{base}/jobs")
        page.get_by_text("Submit a job", exact=True).click()
        page.locator("#submit-type").select_option("test.sleep")
        seconds = page.locator('label[data-field="seconds"]')
        seconds.locator("input").fill("-1")
        page.get_by_role("button", name="Submit", exact=True).click()
        expect(seconds.locator(".field-error")).to_contain_text("greater than or equal to 0")
        seconds.locator("input").fill("0")
        page.get_by_role("button", name="Submit", exact=True).click()
        expect(page).to_have_url(re.compile(re.escape(f"{base}/jobs/") + r"[^/]+$"))
        expect(page.locator("#job-status")).to_have_text("SUCCEEDED")
        expect(page.locator("#job-params")).to_contain_text("Seconds0")


def test_an_empty_list_shows_a_snippet_that_submits_a_job(
    make_app: Callable[..., Any], register_plugin: Callable[..., object], browser_page: Any
) -> None:
    from playwright.sync_api import expect

    register_plugin(jobtypes)
    page = browser_page
    with serve_in_thread(make_app(["jobs", "workspace", "security", jobtypes], {"jobs": FAST})) as base:
        page.goto(f"{base}/jobs")
        empty = page.locator(".empty-state")
        expect(empty).to_contain_text("No jobs yet")
        snippet = empty.locator("pre").inner_text()
        assert snippet.startswith(f"curl -X POST {base}/api/jobs")
        subprocess.run(["sh", "-c", snippet], check=True, capture_output=True, timeout=60)  # pasted in a terminal
        page.reload()
        expect(page.locator("#jobs tbody tr")).to_have_count(1)
        expect(page.locator(".empty-state")).to_have_count(0)


def test_the_list_filters_live_in_the_url_through_back_and_reload(
    make_app: Callable[..., Any], register_plugin: Callable[..., object], browser_page: Any
) -> None:
    from playwright.sync_api import expect

    register_plugin(jobtypes)
    page = browser_page
    with serve_in_thread(make_app(["jobs", "workspace", "security", jobtypes], {"jobs": FAST})) as base:
        echo = httpx.post(f"{base}/api/jobs", json={"type": "test.echo", "params": {"value": 1}}).json()
        sleeper = httpx.post(f"{base}/api/jobs", json={"type": "test.sleep", "params": {"seconds": 0}}).json()
        deadline = time.monotonic() + 60
        while httpx.get(f"{base}/api/jobs/{sleeper['id']}").json()["status"] != "SUCCEEDED":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        page.goto(f"{base}/jobs")
        rows = page.locator("#jobs tbody tr")
        expect(rows).to_have_count(2)
        page.locator("#type-filter").select_option("test.echo")
        page.get_by_role("button", name="Show").click()
        expect(page).to_have_url(f"{base}/jobs?type=test.echo")  # the API's own parameter name
        expect(rows).to_have_count(1)
        rows.first.get_by_role("link").click()
        expect(page).to_have_url(f"{base}/jobs/{echo['id']}")
        page.go_back()
        expect(page).to_have_url(f"{base}/jobs?type=test.echo")
        expect(rows).to_have_count(1)
        expect(page.locator("#type-filter")).to_have_value("test.echo")
        page.reload()
        expect(rows).to_have_count(1)
        page.goto(f"{base}/jobs?status=SUCCEEDED&type=test.sleep")  # a pasted link
        expect(page.locator('#job-filters select[name="status"]')).to_have_value("SUCCEEDED")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("test.sleep")
        page.go_back()
        expect(page).to_have_url(f"{base}/jobs?type=test.echo")


def test_the_list_page_is_in_the_url(
    make_app: Callable[..., Any], register_plugin: Callable[..., object], browser_page: Any
) -> None:
    """51 jobs: "Older" shows the 51st (the oldest) with its ``page_token`` in the URL; reload keeps
    that page, Back returns to the newest. No worker runs them: a queued job is listed all the same."""
    from playwright.sync_api import expect

    register_plugin(jobtypes)
    page = browser_page
    settings = {"jobs": {**FAST, "workers": 0}}
    with serve_in_thread(make_app(["jobs", "workspace", "security", jobtypes], settings)) as base:
        ids = [
            httpx.post(f"{base}/api/jobs", json={"type": "test.echo", "params": {"value": n}}).json()["id"]
            for n in range(51)
        ]
        page.goto(f"{base}/jobs")
        rows = page.locator("#jobs tbody tr")
        expect(rows).to_have_count(50)
        page.get_by_role("link", name="Older").click()
        expect(page).to_have_url(re.compile(re.escape(f"{base}/jobs?page_token=")))
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text(ids[0])
        page.reload()
        expect(rows).to_have_count(1)
        page.go_back()
        expect(page).to_have_url(f"{base}/jobs")
        expect(rows).to_have_count(50)
