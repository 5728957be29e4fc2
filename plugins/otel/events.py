"""The ``plughost_traces_stored`` event: which traces each committed ingest touched, off the ingest's path."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from core import run_bulk
from core.events import EventQueue

logger = logging.getLogger("plughost.otel")

Summaries = Callable[[str, list[str]], Awaitable[list[dict[str, Any]]]]
"""``await summaries(workspace, trace_ids)``: the stored summaries of those traces."""


class StoredTraces:
    """Turns committed span rows into one event per (workspace, project): the traces they touched.

    Nothing is done unless some plugin implements the hook, and the summaries are read (after the
    commit, so they include the rows just written) only when an implementation takes ``traces``.
    The grouping runs in a bulk thread, in a task of its own, so the request that stored the spans
    is answered without waiting for it.
    """

    def __init__(self, events: EventQueue, summaries: Summaries) -> None:
        self.events = events
        self.summaries = summaries
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, rows: list[dict[str, Any]]) -> None:
        if not rows or not self.events.wanted:
            return
        task = asyncio.create_task(self._announce(rows))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _announce(self, rows: list[dict[str, Any]]) -> None:
        with_summaries = self.events.takes("traces")
        for (workspace, project), trace_ids in (await run_bulk(_touched, rows)).items():
            traces: list[dict[str, Any]] = []
            if with_summaries:
                try:
                    traces = sorted(await self.summaries(workspace, trace_ids), key=lambda trace: trace["trace_id"])
                except Exception:
                    self.events.dropped += 1
                    logger.exception("plughost_traces_stored: the summaries could not be read; event dropped")
                    continue
            self.events.emit(workspace=workspace, project=project, trace_ids=trace_ids, traces=traces)


def _touched(rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[str]]:
    touched: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
    for row in rows:
        touched[row["workspace"], row["project"]].add(row["trace_id"])
    return {key: sorted(ids) for key, ids in touched.items()}
