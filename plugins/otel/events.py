"""The ``plughost_traces_stored`` event: which traces each committed ingest touched, off the ingest's path."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from core import run_bulk
from core.events import EventQueue


class StoredTraces:
    """Turns committed span rows into one event per (workspace, project): the trace ids they touched.

    Nothing is done unless some plugin implements the hook. The grouping runs in a bulk thread, in a
    task of its own, so the request that stored the spans is answered without waiting for it.
    """

    def __init__(self, events: EventQueue) -> None:
        self.events = events
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, rows: list[dict[str, Any]]) -> None:
        if not rows or not self.events.wanted:
            return
        task = asyncio.create_task(self._announce(rows))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _announce(self, rows: list[dict[str, Any]]) -> None:
        for (workspace, project), trace_ids in (await run_bulk(_touched, rows)).items():
            self.events.emit(workspace=workspace, project=project, trace_ids=trace_ids)


def _touched(rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[str]]:
    touched: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
    for row in rows:
        touched[row["workspace"], row["project"]].add(row["trace_id"])
    return {key: sorted(ids) for key, ids in touched.items()}
