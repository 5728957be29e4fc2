"""Hooks the assistant offers to other plugins (added through ``plughost_addhooks``).

Implement them with ``@hookimpl(optionalhook=True)`` so your plugin also loads
where the assistant is not installed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from core.hookspecs import hookspec

ChatModel = Callable[[str, list[dict[str, str]]], Awaitable[AsyncIterator[str]]]
"""``await chat(endpoint, messages)``: the answer of the named LLM endpoint as text pieces.
Raises ``LookupError`` for an unknown endpoint, ``RuntimeError`` when the call fails."""


@hookspec(firstresult=True)
def plughost_chat_model(host: Any) -> ChatModel | None:
    """Provide the function the assistant asks an LLM with.

    Called once per app build by the assistant. The gateway plugin implements it.
    Return a ``ChatModel``, or ``None`` (the assistant then offers only its offline analysis).
    """
