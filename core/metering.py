"""What the LLM calls a request made used: told by the plugin that makes them (the gateway, per provider
attempt) to whatever meters the request (the security plugin's limits on a key's tokens and spend), so that
neither imports the other and both count the same tokens at the same price.

The metering side opens a meter around the request (``with metering() as meter:``); the serving side calls
:func:`report_llm_usage` for each attempt, which does nothing when no meter is open. A streamed answer's
attempt is reported when its stream ends, still inside the request (before its last piece is sent).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Protocol

from .pricing import Pricing


class LLMUsage(Protocol):
    """One provider attempt's usage, as the plugin that made it prices it."""

    @property
    def tokens(self) -> int:
        """Its input and output tokens."""
        ...

    def cost(self, pricing: Pricing) -> float | None:
        """What it cost in US dollars (``None``: unknown): the price the console shows for it."""
        ...


_meter: ContextVar[list[LLMUsage] | None] = ContextVar("plughost_meter", default=None)


class metering:
    """Collect what is reported inside the ``with`` block (and in the tasks it starts) in a list."""

    __slots__ = ("_token", "usages")

    def __init__(self) -> None:
        self.usages: list[LLMUsage] = []

    def __enter__(self) -> list[LLMUsage]:
        self._token = _meter.set(self.usages)
        return self.usages

    def __exit__(self, *exc_info: object) -> None:
        _meter.reset(self._token)


def report_llm_usage(usage: LLMUsage) -> None:
    """Tell the request's meter of one provider attempt; a no-op when nothing meters the request."""
    usages = _meter.get()
    if usages is not None:
        usages.append(usage)
