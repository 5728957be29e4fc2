"""Hooks the assistant offers to other plugins (added through ``plughost_addhooks``).

Implement them with ``@hookimpl(optionalhook=True)`` so your plugin also loads
where the assistant is not installed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from core.hookspecs import hookspec

TraceReader = Callable[[str], Awaitable[dict[str, Any] | None]]
"""``await reader(trace_id)``: the trace in the current workspace, shaped as the otel query API's
``GET /api/otel/traces/{trace_id}`` answer (summary fields plus ``spans`` and ``logs``; each span's
``genai`` is the otel plugin's reading of its LLM facts, whatever convention made it; its ``otlp``
member may be left out), or ``None``. A span that is not an error, has no exception event, no log
record and no LLM attribute (keys under ``gen_ai.``, ``llm.``, ``openinference.``, ``mlflow.``,
``ai.``, ``input.value``, ``output.value``) may come with empty ``attributes``, ``events`` and ``links``."""

ChatModel = Callable[[str, list[dict[str, str]]], Awaitable[AsyncIterator[str]]]
"""``await chat(endpoint, messages)``: the answer of the named LLM endpoint as text pieces.
Raises ``LookupError`` for an unknown endpoint, ``RuntimeError`` when the call fails."""


@hookspec(firstresult=True)
def plughost_trace_reader(host: Any) -> TraceReader | None:
    """Provide the function the assistant reads traces with.

    Called once per app build by the assistant. The otel plugin implements it.
    Return a ``TraceReader``, or ``None``. The reader is awaited on the event loop: a reader
    that decodes a huge trace should do that work off the loop with ``core.run_bulk`` (the
    assistant analyses the trace that way, with the cyclic GC paused, see ``core.gc_paused``). The
    assistant owns the dict it is given and empties its ``spans`` to free them off the loop:
    return a fresh one on each call, never a cached one.
    """


@hookspec(firstresult=True)
def plughost_chat_model(host: Any) -> ChatModel | None:
    """Provide the function the assistant asks an LLM with.

    Called once per app build by the assistant. The gateway plugin implements it.
    Return a ``ChatModel``, or ``None`` (the assistant then offers only its offline analysis).
    """
