"""Hooks the otel plugin offers to other plugins (added through ``plughost_addhooks``).

Implement them with ``@hookimpl(optionalhook=True)`` so your plugin also loads where otel is
not installed.
"""

from __future__ import annotations

from core.hookspecs import hookspec


@hookspec
def plughost_traces_stored(workspace: str, project: str, trace_ids: list[str]) -> None:
    """React to stored traces without polling.

    Called after each committed ingest (``POST /v1/traces``, OTLP/gRPC, and the spans other
    plugins store through ``plughost_span_exporter``), once per workspace and project it
    touched, with the ids of the traces that got spans (new traces and ones that grew), in
    the process that stored them. Read a trace's summary or spans with ``GET
    /api/otel/traces/{trace_id}`` in that workspace. Never on the ingest's path: the ids
    are gathered in a bulk thread, and events wait in a bounded queue (dropped, and
    counted, when it is full) and are delivered one at a time; ``async def``
    implementations are awaited, plain ones run in a thread, each for at most 10 s, and
    one that raises is logged with its plugin's name. Return nothing.

    Example::

        @hookimpl(optionalhook=True)
        async def plughost_traces_stored(workspace, project, trace_ids):
            await webhooks.notify(workspace, project, trace_ids)
    """
