"""Traces of any size: 10,000, 100,000 and 1,000,000 spans through the API and in Chromium.

    python -m benchmarks.bigtrace [--quick] [--write]

The server is ``python -m core serve`` with every built-in plugin on SQLite (job subprocesses
off). Each trace is a batch job (``core.testing.batch_trace``: a root, batches of 999 records,
one record failing), sent over OTLP/HTTP in requests of 5,000 spans. For each size:

- ingest: time, and the server's peak RSS above idle while it ingests;
- API: time to the first piece of the skeleton (5,000 spans, as the page asks) and to the
  whole skeleton (then pieces of 50,000), its size gzipped per span; ``GET
  /api/otel/traces/{id}?limit=1000`` (the first piece of full spans); ``POST
  /api/assistant/analyze``; the server's peak RSS above idle while serving all of that;
- Chromium (the system one, headless, driven by Playwright; 1400 x 900): time from navigation
  start to the first rows visible and to every piece in; per step, median of several: unfold a
  batch of 999, fold it again, select a span (row marked; then its panel filled from the
  server), scroll by 2,000 rows (until the next frame is drawn), the error link (the error
  shown and marked); the page's element count and JS heap (CDP ``Runtime.getHeapUsage``).

Targets (issue 26): 100,000 spans: first rows < 1 s on a quiet machine, every interaction
< 100 ms, < 20,000 DOM elements, the error one click away; 1,000,000 spans open and scroll;
server peak RSS < 400 MiB above idle. The screenshot of the 100,000-span trace goes to
``docs/trace-100k.png``.
"""

from __future__ import annotations

import gzip
import os
import platform
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx

from benchmarks.harness import ROOT, MiB, Server, benchmark_main, plughost_server, server
from core.testing import batch_trace

RECORDS = 999
STEPS = 7
FIRST_ROWS = """() => new Promise((resolve) => {
  const check = () => document.querySelector('#rows .row') ? resolve(performance.now()) : requestAnimationFrame(check);
  check();
})"""
READY = """() => new Promise((resolve) => {
  const check = () => document.querySelector('#waterfall[data-ready]')
    ? resolve(performance.now()) : requestAnimationFrame(check);
  check();
})"""
NEXT_FRAME = "() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))"
CLICK = """selector => {
  const target = document.querySelector(selector);
  const begin = performance.now();
  target.click();
  document.body.offsetHeight;  // layout included
  return performance.now() - begin;
}"""
SCROLL = """rows => new Promise((resolve) => {
  const box = document.getElementById('rows');
  const begin = performance.now();
  box.scrollTop += rows * 26;
  requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - begin)));
})"""


@dataclass
class Figures:
    spans: int
    ingest_seconds: float = 0.0
    ingest_peak_mib: float = 0.0
    first_piece_ms: float = 0.0
    skeleton_ms: float = 0.0
    gzip_bytes_per_span: float = 0.0
    full_piece_ms: float = 0.0
    analyze_ms: float | None = None
    serve_peak_mib: float = 0.0
    browser: dict[str, Any] = field(default_factory=dict)


def trace_id(spans: int) -> bytes:
    return spans.to_bytes(16, "big")


def ingest(client: httpx.Client, running: Server, idle: int, figures: Figures) -> None:
    batches = (figures.spans - 1) // (RECORDS + 1)
    running.reset_peak()
    began = time.perf_counter()
    for request in batch_trace(trace_id(figures.spans), batches, RECORDS, failing=(batches // 2, RECORDS // 2)):
        answer = client.post(
            "/v1/traces", content=request.SerializeToString(), headers={"content-type": "application/x-protobuf"}
        )
        answer.raise_for_status()
    figures.ingest_seconds = time.perf_counter() - began
    figures.ingest_peak_mib = (running.memory()[1] - idle) / MiB


def serve(client: httpx.Client, running: Server, idle: int, figures: Figures, analyze: bool) -> None:
    path = f"/api/otel/traces/{trace_id(figures.spans).hex()}"
    running.reset_peak()
    began = time.perf_counter()
    first = client.get(path + "/skeleton", params={"limit": 5000})
    first.raise_for_status()
    figures.first_piece_ms = (time.perf_counter() - began) * 1000
    compressed, cursor, count = len(gzip.compress(first.content)), first.json()["next_cursor"], 5000
    while cursor:
        piece = client.get(path + "/skeleton", params={"limit": 50_000, "cursor": cursor})
        piece.raise_for_status()
        compressed += len(gzip.compress(piece.content))
        cursor = piece.json()["next_cursor"]
        count += 50_000
    figures.skeleton_ms = (time.perf_counter() - began) * 1000
    figures.gzip_bytes_per_span = compressed / figures.spans
    began = time.perf_counter()
    client.get(path, params={"limit": 1000}).raise_for_status()
    figures.full_piece_ms = (time.perf_counter() - began) * 1000
    if analyze:
        began = time.perf_counter()
        answer = client.post("/api/assistant/analyze", json={"trace_id": trace_id(figures.spans).hex()})
        answer.raise_for_status()
        figures.analyze_ms = (time.perf_counter() - began) * 1000
    figures.serve_peak_mib = (running.memory()[1] - idle) / MiB


def in_browser(browser: Any, base: str, figures: Figures, screenshot: bool) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(600_000)
    url = f"{base}/traces/{trace_id(figures.spans).hex()}"
    page.goto(url, wait_until="commit")
    first_rows = page.evaluate(FIRST_ROWS)
    ready = page.evaluate(READY)
    found: dict[str, Any] = {"first rows visible": first_rows, "every piece in": ready}
    toggle = "#rows .row:nth-child(2) .toggle"  # the first batch
    unfold, fold, select, panel, scroll = [], [], [], [], []
    for _ in range(STEPS):
        page.evaluate("document.getElementById('rows').scrollTop = 0")
        page.evaluate(NEXT_FRAME)
        unfold.append(page.evaluate(CLICK, toggle))
        fold.append(page.evaluate(CLICK, toggle))
    page.evaluate(CLICK, toggle)  # unfold the first batch: its records to select, 999 rows more to scroll through
    for step in range(STEPS):
        name = f"#rows .row:nth-child({3 + step}) .name"
        begin = time.perf_counter()
        select.append(page.evaluate(CLICK, name))
        page.wait_for_function(
            "n => document.querySelector('#span-panel h2')?.textContent === n", arg=page.locator(name).text_content()
        )
        panel.append((time.perf_counter() - begin) * 1000)
    for _ in range(STEPS):
        scroll.append(page.evaluate(SCROLL, 2000))
    error = page.evaluate(CLICK, "#trace-errors .error-link")
    page.wait_for_selector("#rows .row.error.selected")
    session = page.context.new_cdp_session(page)
    heap = session.send("Runtime.getHeapUsage")["usedSize"]
    found.update(
        {
            "unfold 999": statistics.median(unfold),
            "fold 999": statistics.median(fold),
            "select (row marked)": statistics.median(select),
            "select (panel filled)": statistics.median(panel),
            "scroll 2,000 rows": statistics.median(scroll),
            "error link": error,
            "elements": page.evaluate("document.getElementsByTagName('*').length"),
            "rows in the DOM": page.locator("#rows .row").count(),
            "heap MiB": heap / MiB,
        }
    )
    if screenshot:  # as the error link left it: the error's row marked, its panel open
        page.evaluate(NEXT_FRAME)
        page.screenshot(path=str(ROOT / "docs" / "trace-100k.png"))
    figures.browser = found
    page.close()


def run(quick: bool) -> str:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    sizes = (
        [1 + 2 * (RECORDS + 1), 1 + 10 * (RECORDS + 1)] if quick else [1 + n * (RECORDS + 1) for n in (10, 100, 1000)]
    )
    command, port = plughost_server()
    results = []
    with tempfile.TemporaryDirectory() as data_dir:
        env = {"PLUGHOST_DATA_DIR": data_dir, "PLUGHOST_JOBS_WORKERS": "0"}
        with (
            server(command, port, health="/health", env=env) as running,
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=1800) as client,
            sync_playwright() as playwright,
        ):
            time.sleep(1)
            idle = running.memory()[0]
            browser = playwright.chromium.launch(executable_path=chromium)
            for spans in sizes:
                figures = Figures(spans)
                ingest(client, running, idle, figures)
                serve(client, running, idle, figures, analyze=spans <= 200_000)
                in_browser(browser, f"http://127.0.0.1:{port}", figures, screenshot=100_000 <= spans < 200_000)
                results.append(figures)
                print(figures, flush=True)
            browser.close()
    return table(results, idle)


def table(results: list[Figures], idle: int) -> str:
    load = os.getloadavg()[0]
    lines = [
        f"Machine: {os.cpu_count()} cores (load average {load:.1f} when it ended), "
        f"Python {platform.python_version()}, headless Chromium, {date.today()}; SQLite; all built-in plugins; "
        f"server idle RSS {idle / MiB:.0f} MiB. Traces: a batch job (batches of {RECORDS} records, one failing). "
        f"Browser steps: median of {STEPS}.",
        "",
        "| figure | " + " | ".join(f"{f.spans:,} spans" for f in results) + " | target |",
        "|---|" + "---:|" * len(results) + "---|",
    ]

    def row(label: str, values: list[str], target: str = "") -> None:
        lines.append(f"| {label} | " + " | ".join(values) + f" | {target} |")

    row("ingest (OTLP/HTTP, 5,000 spans a request)", [f"{f.ingest_seconds:.1f} s" for f in results])
    row("API: first skeleton piece (5,000 spans)", [f"{f.first_piece_ms:.0f} ms" for f in results])
    row("API: whole skeleton", [f"{f.skeleton_ms:.0f} ms" for f in results])
    row("skeleton, gzip bytes per span", [f"{f.gzip_bytes_per_span:.1f}" for f in results], "<= 60")
    row("API: first piece of 1,000 full spans", [f"{f.full_piece_ms:.0f} ms" for f in results])
    row(
        "analyze",
        ["—" if f.analyze_ms is None else f"{f.analyze_ms:.0f} ms" for f in results],
        "< 1 s at 100k",
    )
    row("server peak RSS above idle: ingest", [f"{f.ingest_peak_mib:.0f} MiB" for f in results], "< 400 MiB")
    row("server peak RSS above idle: serving", [f"{f.serve_peak_mib:.0f} MiB" for f in results], "< 400 MiB")
    targets = {
        "first rows visible": "< 1 s at 100k (quiet machine)",
        "unfold 999": "< 100 ms",
        "fold 999": "< 100 ms",
        "select (row marked)": "< 100 ms",
        "scroll 2,000 rows": "< 100 ms",
        "error link": "< 100 ms",
        "elements": "< 20,000",
    }
    for key in results[0].browser:
        unit = "" if key in ("elements", "rows in the DOM") else " MiB" if key == "heap MiB" else " ms"
        label = "JS heap" if key == "heap MiB" else key
        values = [f"{f.browser[key]:,.0f}{unit}" if unit != " ms" else f"{f.browser[key]:.1f} ms" for f in results]
        row(f"Chromium: {label}", values, targets.get(key, ""))
    return "\n".join(lines)


if __name__ == "__main__":
    benchmark_main(__doc__ or "", "Traces of any size", "bigtrace", run)
