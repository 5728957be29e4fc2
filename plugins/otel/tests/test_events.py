"""``plughost_traces_stored``: other plugins learn which traces each committed ingest touched, without polling."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from core import hookimpl
from core.testing import client_for
from plugins.otel.tests.test_jobs import ingest, otlp_trace


class Listener:
    PLUGHOST_NAME = "listener"

    def __init__(self) -> None:
        self.events: list[tuple[str, str, list[str]]] = []

    @hookimpl(optionalhook=True)
    async def plughost_traces_stored(self, workspace, project, trace_ids):
        self.events.append((workspace, project, trace_ids))


class Summaries:
    PLUGHOST_NAME = "summaries"

    def __init__(self) -> None:
        self.traces: list[dict[str, Any]] = []

    @hookimpl(optionalhook=True)
    def plughost_traces_stored(self, traces):
        self.traces.extend(traces)


class Failing:
    PLUGHOST_NAME = "failing"

    @hookimpl(optionalhook=True)
    def plughost_traces_stored(self, trace_ids):
        raise RuntimeError("webhook down")


def test_each_committed_ingest_announces_the_traces_it_touched(make_app: Any, caplog: pytest.LogCaptureFixture) -> None:
    listener, summaries = Listener(), Summaries()
    app = make_app(["otel", "workspace", listener, summaries, Failing()])
    with caplog.at_level(logging.ERROR, logger="plughost.events"), client_for(app) as client:
        both = otlp_trace(1, ended_days_ago=0)
        both["resourceSpans"] += otlp_trace(2, ended_days_ago=0)["resourceSpans"]
        for document, workspace, project, announced in (
            (both, "team-a", "shop", 2),
            (otlp_trace(1, ended_days_ago=0, spans=3), "team-a", "shop", 3),  # grows
            (otlp_trace(3, ended_days_ago=0), "default", "billing", 4),
        ):
            ingest(client, document, workspace=workspace, project=project)
            deadline = time.monotonic() + 30
            while len(summaries.traces) < announced and time.monotonic() < deadline:
                time.sleep(0.05)
        while len(listener.events) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        listed = client.get("/api/otel/traces", headers={"X-Plughost-Workspace": "team-a"}).json()["traces"]
    # each event's summaries are read once its ingest is committed: trace 1 with 2 spans, then grown to 3
    assert [(t["trace_id"], t["span_count"], t["project"]) for t in summaries.traces] == [
        (f"{1:032x}", 2, "shop"),
        (f"{2:032x}", 2, "shop"),
        (f"{1:032x}", 3, "shop"),
        (f"{3:032x}", 2, "billing"),
    ]
    assert summaries.traces[2] in listed  # the same summary the list API gives
    assert sorted(listener.events) == [
        ("default", "billing", [f"{3:032x}"]),
        ("team-a", "shop", [f"{1:032x}"]),
        ("team-a", "shop", [f"{1:032x}", f"{2:032x}"]),
    ]
    assert "plughost_traces_stored of plugin 'failing' raised" in caplog.text


def test_spans_stored_by_other_plugins_are_announced_too(make_app: Any) -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    listener = Listener()
    app = make_app(["otel", listener])
    host = app.assembly.host
    span = Span(
        trace_id=bytes(range(16)), span_id=bytes(range(8)), name="own", start_time_unix_nano=1, end_time_unix_nano=2
    )
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])])
    with client_for(app) as client:
        export = host.plugins.manager.hook.plughost_span_exporter(host=host)
        client.portal.call(lambda: export(request, workspace="default", project="internal"))
        deadline = time.monotonic() + 30
        while not listener.events and time.monotonic() < deadline:
            time.sleep(0.05)
    assert listener.events == [("default", "internal", [bytes(range(16)).hex()])]
