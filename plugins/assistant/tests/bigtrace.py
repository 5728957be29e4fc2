"""A trace source for the responsiveness test (``bigtrace``): one huge trace held in memory.

It stands in for the otel plugin: it offers otel's public hook specs and implements
``plughost_trace_reader``, so that the test measures the assistant's analysis alone, not the
trace store's read.
"""

from __future__ import annotations

import functools
import gc
import threading
from typing import Any

from core import hookimpl
from plugins.assistant.tree import columns_of
from plugins.otel import hookspecs

from .spans import span, trace

PLUGHOST_NAME = "bigtrace"
SPANS = 50_000
ATTRIBUTES_PER_SPAN = 10
asked = threading.Event()
"""Set when the assistant has read the trace, so its analysis is about to run."""
collector_on: list[bool] = []
"""Whether the cyclic GC was on at each read (it should be paused while a trace is analysed)."""


@functools.cache
def big() -> dict[str, Any]:
    spans = [span("root", 0, SPANS)]
    for index in range(1, SPANS):
        parent = "root" if index < 100 else f"s{index // 100}"  # 99 handlers, each with about 100 calls below
        spans.append(
            span(
                f"s{index}",
                index * 0.5,
                index * 0.5 + 60,
                parent,
                name=f"call {index % 7}",
                attributes={f"attribute.{n}": f"value {index} {n}" for n in range(ATTRIBUTES_PER_SPAN)},
            )
        )
    return trace(*spans)


class BigTrace:
    """A reader of the one big trace (``summaries`` and ``columns`` are what the assistant uses)."""

    async def summaries(self, workspace: str, trace_ids: list[str]) -> list[dict[str, Any]]:
        return [{"trace_id": big()["trace_id"], "span_count": SPANS}] if big()["trace_id"] in trace_ids else []

    async def columns(self, trace_id: str, *, workspace: str | None = None) -> Any:
        asked.set()
        collector_on.append(gc.isenabled())
        if trace_id != big()["trace_id"]:
            return None
        return columns_of(big())


@hookimpl
def plughost_addhooks(plugin_manager: Any) -> None:
    plugin_manager.add_hookspecs(hookspecs)


@hookimpl
def plughost_trace_reader(host: Any) -> Any:
    return BigTrace()
