"""``GET /api/workspaces``: the workspaces that hold data, for the console's workspace switcher.

With accounts on, a caller sees only the workspaces it has a role in (and those it was granted, data
or not): a key of team-a does not learn that team-b exists."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from core.access import EVERY_WORKSPACE, current_principal
from core.context import current_workspace


def create_router(host: Any) -> APIRouter:
    router = APIRouter(prefix="/api/workspaces", tags=["workspace"])

    @router.get("", summary="The workspaces that hold data (any plugin's) and the caller may see, and its own")
    async def list_workspaces() -> dict[str, Any]:
        names = {"default"}
        for _, pending in host.plugins.call("plughost_workspaces", host=host):
            names.update(await pending)
        principal = current_principal()
        if principal is not None:
            granted = {name for name in principal.grants if name != EVERY_WORKSPACE}
            names = {name for name in names if principal.role_in(name) is not None} | granted
        return {"workspaces": sorted(names), "current": current_workspace()}

    return router
