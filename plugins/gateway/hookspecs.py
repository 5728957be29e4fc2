"""Hooks the gateway offers to other plugins (added through ``plughost_addhooks``).

Implement them with ``@hookimpl(optionalhook=True)`` so your plugin also loads where the
gateway is not installed.
"""

from __future__ import annotations

from typing import Any

from core.hookspecs import hookspec


@hookspec
def plughost_gateway_call(call: dict[str, Any]) -> None:
    """React to each LLM call through the gateway, without polling its usage.

    Called once per chat call (native invocations, OpenAI chat completions, Anthropic
    messages; unary or streamed) after its answer was sent, or after it was refused,
    in the process that served it. ``call`` holds ``workspace``, ``key`` (the name of the
    plughost API key that made the call when accounts are on, else ``None``), ``endpoint``, ``kind``
    (``"chat"``), ``streamed``, ``status`` (the answer's: 200, or the error's status),
    ``model`` and ``provider`` (the last model tried), ``input_tokens``,
    ``output_tokens``, ``latency_ms``, ``attempts`` (each provider attempt's ``model``,
    ``provider``, ``status``, ``latency_ms``, in fallback order) and ``error``. Never
    the request or answer content, never a key. Never on the call's path: events wait
    in a bounded queue (dropped, and counted, when it is full) and are delivered one at
    a time; ``async def`` implementations are awaited, plain ones run in a thread, each
    for at most 10 s, and one that raises is logged with its plugin's name. Embedding
    calls are not reported. Return nothing.

    Example::

        @hookimpl(optionalhook=True)
        async def plughost_gateway_call(call):
            if call["status"] != 200:
                await alert(f"{call['endpoint']}: {call['error']}")
    """
