"""The hook the workspace plugin offers: which workspaces hold data (for ``GET /api/workspaces``)."""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("plughost")


@hookspec
def plughost_workspaces(host: Any) -> Awaitable[Iterable[str]] | None:
    """Say which workspaces hold this plugin's data.

    Called on each ``GET /api/workspaces``. Return an awaitable of workspace names (for
    example ``core.database.distinct_workspaces(host.database, my_table)``), or ``None``.
    The answer lists every name any plugin gave, plus ``default``.
    """
