"""``GET /api/workspaces``: the workspaces that hold data, for the console's workspace switcher."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from core.context import current_workspace


def create_router(host: Any) -> APIRouter:
    router = APIRouter(prefix="/api/workspaces", tags=["workspace"])

    @router.get("", summary="The workspaces that hold data (any plugin's), and the request's own")
    async def list_workspaces() -> dict[str, Any]:
        names = {"default"}
        for _, pending in host.plugins.call("plughost_workspaces", host=host):
            names.update(await pending)
        return {"workspaces": sorted(names), "current": current_workspace()}

    return router
