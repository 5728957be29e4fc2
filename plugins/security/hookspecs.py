"""Hooks the security plugin offers to other plugins (added through ``plughost_addhooks``).

Implement them with ``@hookimpl(optionalhook=True)`` so your plugin also loads where the
security plugin is not installed.
"""

from __future__ import annotations

from typing import Any

from core.hookspecs import hookspec


@hookspec
def plughost_gateway_key_refused(host: Any, refusal: dict[str, Any]) -> None:
    """React to each gateway call that an API key's limits refused before the gateway saw it.

    Called once per refused call (accounts on, a key with ``rpm``, ``tpm``, ``budget_usd`` or
    ``endpoints``), in the process that refused it. ``refusal`` holds ``workspace`` (where the
    call was made), ``key`` (the key's name), ``endpoint`` (the endpoint it called when the
    path or the body read for the allow-list names it, else ``None``), ``status`` (429 or 403)
    and ``reason``: ``requests`` or ``tokens`` (per minute; 429), ``budget`` (429,
    ``budget_exceeded``) or ``endpoint`` (not in its allow-list; 403). ``host`` is the app's.
    Never on the call's path: events wait in a bounded queue (dropped, and counted, when it is
    full) and are delivered one at a time; ``async def`` implementations are awaited, plain
    ones run in a thread, each for at most 10 s. Return nothing.

    Example (the gateway counts them in its usage per key)::

        @hookimpl(optionalhook=True)
        async def plughost_gateway_key_refused(host, refusal):
            await store_of(host).record_refusal(**refusal)
    """
