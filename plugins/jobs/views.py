"""How jobs and schedules look in the API's JSON, and the 400s for a request's job type and params."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fastapi import HTTPException
from pydantic import ValidationError
from sqlalchemy import Row

from .registry import RegisteredType


def registered_or_400(types: dict[str, RegisteredType], name: str) -> RegisteredType:
    registered = types.get(name)
    if registered is None:
        raise HTTPException(
            400, f"unknown job type {name!r}; known types: {', '.join(sorted(types)) or 'none are registered'}"
        )
    return registered


def params_or_400(registered: RegisteredType, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` validated by the type's model, as JSON values; a 400 listing each bad field otherwise."""
    try:
        return registered.job_type.parameters.model_validate(params).model_dump(mode="json")
    except ValidationError as error:
        errors = [{"field": ".".join(map(str, e["loc"])) or "params", "problem": e["msg"]} for e in error.errors()]
        name = registered.job_type.name
        raise HTTPException(400, {"message": f"invalid parameters for job type {name!r}", "errors": errors}) from None


def iso(seconds: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC timestamp."""
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()


def job_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "workspace": row.workspace,
        "type": row.type,
        "status": row.status,
        "params": json.loads(row.params),
        "attempt": row.attempt,
        "max_attempts": row.max_attempts,
        "timeout_seconds": row.timeout_seconds,
        "cancel_requested": row.cancel_requested,
        "created_at": iso(row.created_at),
        "started_at": iso(row.started_at),
        "finished_at": iso(row.finished_at),
        "result": None if row.result is None else json.loads(row.result),
        "error": row.error,
        "progress": None
        if row.progress is None and row.progress_message is None
        else {"fraction": row.progress, "message": row.progress_message},
        "schedule_id": row.schedule_id,
        "scheduled_for": iso(row.scheduled_for),
    }


def schedule_view(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "workspace": row.workspace,
        "type": row.type,
        "params": json.loads(row.params),
        "cron": row.cron,
        "interval_seconds": row.interval_seconds,
        "timezone": row.timezone,
        "catch_up": row.catch_up,
        "paused": row.paused,
        "next_run": iso(row.next_run),
        "last_run": iso(row.last_run),
        "last_job_id": row.last_job_id,
        "declared_by": row.declared_by,
        "created_at": iso(row.created_at),
    }
