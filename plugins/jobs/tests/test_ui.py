"""The job pages in Chromium: find a job in the list, open it, watch it run, cancel it (a console
write, through the security plugin's cross-origin rules)."""

from __future__ import annotations

import re
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
        expect(page.locator("#job-details")).to_contain_text('"<b>hi</b>"')  # shown as text
        expect(page.get_by_role("button", name="Cancel job")).to_be_hidden()

        page.goto(f"{base}/jobs/{sleeper['id']}")
        expect(page.locator("#job-status")).to_have_text("RUNNING")
        page.get_by_role("button", name="Cancel job").click()
        expect(page.locator("#job-status")).to_have_text("CANCELED")
        assert httpx.get(f"{base}/api/jobs/{sleeper['id']}").json()["status"] == "CANCELED"


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
        page.get_by_text("Submit a job").click()
        page.locator("#submit-type").select_option("test.sleep")
        seconds = page.locator('label[data-field="seconds"]')
        seconds.locator("input").fill("-1")
        page.get_by_role("button", name="Submit", exact=True).click()
        expect(seconds.locator(".field-error")).to_contain_text("greater than or equal to 0")
        seconds.locator("input").fill("0")
        page.get_by_role("button", name="Submit", exact=True).click()
        expect(page).to_have_url(re.compile(re.escape(f"{base}/jobs/") + r"[^/]+$"))
        expect(page.locator("#job-status")).to_have_text("SUCCEEDED")
        expect(page.locator("#job-details")).to_contain_text('"seconds": 0')
