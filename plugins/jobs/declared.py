"""The schedules plugins declare (``plughost_job_schedules``), checked against the registered job types at start-up."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from .hookspecs import Schedule
from .registry import RegisteredType
from .schedules import NewSchedule, Timing


@dataclass(frozen=True)
class DeclaredSchedules:
    by_plugin: dict[str, list[tuple[str, NewSchedule]]]
    """Every plugin implementing ``plughost_job_schedules``, with its ``(workspace, schedule)`` pairs (maybe none)."""


def collect_schedules(host: Any, types: dict[str, RegisteredType]) -> DeclaredSchedules:
    """The schedules plugins declare, checked against the registered types. A bad one is a start-up error
    naming the plugin."""
    hook = host.plugins.manager.hook.plughost_job_schedules
    implementers = {
        impl.plugin_name for impl in hook.get_hookimpls() if host.plugins.infos[impl.plugin_name].status == "enabled"
    }
    by_plugin: dict[str, list[tuple[str, NewSchedule]]] = {name: [] for name in implementers}
    for info, contributed in host.plugins.call("plughost_job_schedules", host=host):
        for schedule in contributed if isinstance(contributed, Sequence) else [contributed]:
            if not isinstance(schedule, Schedule):
                raise info.failure(
                    f"plughost_job_schedules returned {schedule!r}, not a Schedule", fix="return Schedule objects"
                )
            registered = types.get(schedule.type)
            if registered is None:
                raise info.failure(
                    f"schedule {schedule.name!r}: unknown job type {schedule.type!r}",
                    fix="schedule a registered job type",
                )
            try:
                params = registered.job_type.parameters.model_validate(schedule.params).model_dump(mode="json")
            except ValidationError as error:
                raise info.failure(
                    f"schedule {schedule.name!r}: invalid params for {schedule.type!r}: {error}", fix="fix the params"
                ) from None
            timing = Timing(schedule.cron, schedule.interval_seconds, schedule.timezone)
            new = NewSchedule(schedule.name, schedule.type, params, timing, schedule.catch_up, declared_by=info.name)
            by_plugin[info.name].append((schedule.workspace, new))
    return DeclaredSchedules(by_plugin)
