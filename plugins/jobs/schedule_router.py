"""The schedules API under ``/api/jobs/schedules``: create, list, read, pause, resume, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response
from pydantic import BaseModel, Field
from sqlalchemy import Row

from core.context import current_workspace

from .hookspecs import CatchUp, check_timing
from .schedules import NewSchedule, Timing
from .views import params_or_400, registered_or_400, schedule_view

ScheduleId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="32 lowercase hex digits")]


class ScheduleRequest(BaseModel):
    type: str = Field(description="A registered job type (see GET /api/jobs/types)")
    params: dict[str, Any] = Field(default_factory=dict, description="Validated against the type's parameter schema")
    name: str | None = Field(
        None, pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$", description="Unique in the workspace; the id when absent"
    )
    cron: str | None = Field(
        None, max_length=200, description="5-field cron expression, e.g. '0 3 * * *', or @daily, @hourly..."
    )
    interval_seconds: float | None = Field(None, description="Every N seconds (1 to 366 days), from now")
    timezone: str = Field("UTC", max_length=64, description="IANA time zone the cron expression is read in")
    catch_up: CatchUp = Field(
        "coalesce", description="Ticks missed while no worker ran: 'coalesce' runs once, 'skip' runs none"
    )
    paused: bool = False


def create_schedule_router(jobs: Any) -> APIRouter:
    store, types = jobs.schedules, jobs.types
    router = APIRouter(prefix="/schedules")

    @router.post(
        "",
        status_code=201,
        summary="Create a schedule",
        responses={400: {"description": "Invalid"}, 409: {"description": "Name taken"}},
    )
    async def create(body: ScheduleRequest, response: Response) -> dict[str, Any]:
        registered = registered_or_400(types, body.type)
        try:
            check_timing(body.cron, body.interval_seconds, body.timezone)
        except ValueError as error:
            raise HTTPException(400, str(error)) from None
        params = params_or_400(registered, body.params)
        timing = Timing(body.cron, body.interval_seconds, body.timezone)
        new = NewSchedule(body.name or "", body.type, params, timing, body.catch_up, paused=body.paused)
        row = await store.create(new)
        if row is None:
            raise HTTPException(409, f"workspace {current_workspace()!r} already has a schedule named {body.name!r}")
        response.headers["Location"] = f"/api/jobs/schedules/{row.id}"
        return schedule_view(row)

    @router.get("", summary="The schedules of the current workspace, by name")
    async def list_schedules() -> dict[str, Any]:
        return {"schedules": [schedule_view(row) for row in await store.in_workspace()]}

    async def found(row: Row[Any] | None, schedule_id: str) -> dict[str, Any]:
        if row is None:
            raise HTTPException(404, f"no schedule {schedule_id} in workspace {current_workspace()!r}")
        return schedule_view(row)

    @router.get("/{schedule_id}", summary="One schedule")
    async def get(schedule_id: ScheduleId) -> dict[str, Any]:
        return await found(await store.get(schedule_id), schedule_id)

    @router.post("/{schedule_id}/pause", summary="Pause: no tick fires until it is resumed")
    async def pause(schedule_id: ScheduleId) -> dict[str, Any]:
        return await found(await store.set_paused(schedule_id, True), schedule_id)

    @router.post("/{schedule_id}/resume", summary="Resume from the next tick after now (ticks while paused do not run)")
    async def resume(schedule_id: ScheduleId) -> dict[str, Any]:
        return await found(await store.set_paused(schedule_id, False), schedule_id)

    @router.delete("/{schedule_id}", status_code=204, summary="Delete a schedule (its jobs stay)")
    async def delete(schedule_id: ScheduleId) -> Response:
        if not await store.delete(schedule_id):
            raise HTTPException(404, f"no schedule {schedule_id} in workspace {current_workspace()!r}")
        return Response(status_code=204)

    return router
