"""The job types this process knows: collected from ``plughost_job_types`` and checked once, at start-up."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .hookspecs import JobType


@dataclass(frozen=True)
class RegisteredType:
    plugin: str
    job_type: JobType
    function_path: str
    """``module:qualname``, how the job subprocess imports the function."""
    parameters_path: str

    @property
    def modules(self) -> set[str]:
        return {path.partition(":")[0] for path in (self.function_path, self.parameters_path)}

    def describe(self) -> dict[str, Any]:
        policy = self.job_type.retry
        return {
            "name": self.job_type.name,
            "plugin": self.plugin,
            "description": self.job_type.description,
            "parameters": self.job_type.parameters.model_json_schema(),
            "timeout_seconds": self.job_type.timeout_seconds,
            "retry": {
                "max_attempts": policy.max_attempts,
                "transient": [f"{cls.__module__}.{cls.__qualname__}" for cls in policy.transient],
                "backoff_seconds": policy.backoff_seconds,
                "factor": policy.factor,
                "max_backoff_seconds": policy.max_backoff_seconds,
                "requeue_lost": policy.requeue_lost,
            },
        }

    def is_transient(self, error_classes: Sequence[str]) -> bool:
        declared = {f"{cls.__module__}.{cls.__qualname__}" for cls in self.job_type.retry.transient}
        return not declared.isdisjoint(error_classes)


def resolve(path: str) -> Any:
    """The object named ``module:qualname``."""
    module_name, _, qualname = path.partition(":")
    found: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


def importable_name(obj: Any) -> str:
    """``module:qualname`` of ``obj``; ``ValueError`` unless importing that name gives ``obj`` back."""
    path = f"{obj.__module__}:{obj.__qualname__}"
    if obj.__module__ == "__main__":
        raise ValueError(f"{path} is in the __main__ script, which job subprocesses cannot import; move it to a module")
    try:
        found = resolve(path)
    except (ImportError, AttributeError):
        found = None
    if found is not obj:
        raise ValueError(f"{path} is not importable under that name; define it at module level")
    return path


def collect_job_types(host: Any) -> dict[str, RegisteredType]:
    """Every contributed job type by name. A malformed or duplicate contribution is a start-up error
    naming the plugin."""
    registered: dict[str, RegisteredType] = {}
    for info, contributed in host.plugins.call("plughost_job_types", host=host):
        for job_type in contributed if isinstance(contributed, Sequence) else [contributed]:
            if not isinstance(job_type, JobType):
                raise info.failure(
                    f"plughost_job_types returned {job_type!r}, not a JobType", fix="return JobType objects"
                )
            if job_type.name in registered:
                other = registered[job_type.name].plugin
                raise info.failure(
                    f"job type {job_type.name!r} is also contributed by plugin {other!r}", fix="rename one of them"
                )
            try:
                paths = importable_name(job_type.function), importable_name(job_type.parameters)
            except ValueError as error:
                raise info.failure(f"job type {job_type.name!r}: {error}", fix="move it to module level") from None
            registered[job_type.name] = RegisteredType(info.name, job_type, *paths)
    return registered
