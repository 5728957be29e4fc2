"""The jobs plugin's public contract: the hook that contributes job types, and the types it returns.

Other plugins add job types by implementing :func:`plughost_job_types` with
``@hookimpl(optionalhook=True)`` (so they still load where jobs is not
installed) and import only from this module.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from core.hookspecs import hookspec

JOB_TYPE_NAME = r"^[a-z][a-z0-9_.-]{0,63}$"


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed attempt is tried again.

    An attempt that raises one of ``transient`` (or a subclass) is retried after
    ``backoff_seconds * factor ** (attempt - 1)`` seconds (at most
    ``max_backoff_seconds``), until ``max_attempts`` attempts were made. Other
    errors, timeouts and cancels are final. ``requeue_lost``: an attempt whose
    worker died (its lease expired) is run again, if attempts remain; otherwise
    it fails.
    """

    max_attempts: int = 1
    transient: tuple[type[BaseException], ...] = ()
    backoff_seconds: float = 1.0
    factor: float = 2.0
    max_backoff_seconds: float = 300.0
    requeue_lost: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.backoff_seconds < 0 or self.factor < 1 or self.max_backoff_seconds < 0:
            raise ValueError("backoff_seconds and max_backoff_seconds must be >= 0 and factor >= 1")

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(min(self.max_backoff_seconds, self.backoff_seconds * self.factor ** (attempt - 1)))


@dataclass(frozen=True)
class JobContext:
    """What a running job knows about itself; passed to the job function as its second argument.

    The current workspace (:func:`core.context.current_workspace`) is also set to
    ``workspace`` while the function runs.
    """

    id: str
    type: str
    workspace: str
    attempt: int
    data_dir: Path
    database_url: str | None


@dataclass(frozen=True)
class JobType:
    """A kind of job that can be submitted by name through ``POST /api/jobs``.

    ``function(params, context)`` runs in a worker subprocess, so it must be a
    module-level function (it is imported there by its qualified name); it may be
    ``async``. ``params`` is an instance of ``parameters``, validated on submit;
    the return value must be JSON-serialisable and is stored as the result.
    ``timeout_seconds`` is the default hard limit per attempt: the subprocess is
    killed when it is reached.
    """

    name: str
    function: Callable[[Any, JobContext], Any]
    parameters: type[BaseModel]
    description: str = ""
    timeout_seconds: float = 300.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if not re.match(JOB_TYPE_NAME, self.name):
            raise ValueError(f"job type name {self.name!r}: use 1-64 lowercase letters, digits, '_', '.', '-', starting with a letter")
        if self.timeout_seconds <= 0:
            raise ValueError(f"job type {self.name!r}: timeout_seconds must be positive")
        if not (isinstance(self.parameters, type) and issubclass(self.parameters, BaseModel)):
            raise ValueError(f"job type {self.name!r}: parameters must be a pydantic model class")
        if not callable(self.function) or "<locals>" in getattr(self.function, "__qualname__", "<locals>"):
            raise ValueError(f"job type {self.name!r}: the function must be defined at module level (it is imported in a subprocess)")

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.function)


@hookspec
def plughost_job_types(host: Any) -> JobType | Sequence[JobType] | None:
    """Contribute job types.

    Called once when the jobs plugin builds its registry (at app build and when
    ``python -m core jobs worker`` starts), after settings are validated. Return
    one :class:`JobType`, a list of them, or ``None``. Names are global: two
    plugins contributing the same name stop start-up naming both. A worker only
    claims jobs of types it knows, so API servers and workers may be deployed
    with different plugin sets.

    Example::

        class Resize(BaseModel):
            path: str
            width: int = Field(gt=0)

        def resize(params: Resize, job: JobContext) -> dict:
            ...
            return {"written": out_path}

        @hookimpl(optionalhook=True)
        def plughost_job_types(host):
            return JobType("images.resize", resize, Resize, timeout_seconds=60,
                           retry=RetryPolicy(max_attempts=3, transient=(OSError,)))
    """
