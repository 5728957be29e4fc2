"""Per-request context that plugins share through the core, never through each other's modules.

- The **workspace**: set per request (by the workspace middleware, from the
  ``X-Plughost-Workspace`` header) and read by every store to scope its reads
  and writes. It is a ContextVar, so it follows the request into FastAPI
  endpoints, the WSGI app (the bridge copies the context into its thread) and
  tasks the request starts. A middleware that authenticates the request may
  *bind* it first (:class:`bind_workspace`, for a credential that belongs to one
  workspace): the workspace middleware then keeps it whatever the header says.
- **Timings**: a plugin that waits on something upstream (the gateway on an
  LLM provider) reports how long with :func:`report_upstream`; the timing
  middleware turns that into ``Server-Timing`` and overhead headers.
"""

from __future__ import annotations

import re
import time
from contextvars import ContextVar

DEFAULT_WORKSPACE = "default"
WORKSPACE_HEADER = "x-plughost-workspace"
"""The request header (and OTLP/gRPC metadata key) that names the workspace."""
WORKSPACE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9\-]{0,61}[a-z0-9]$")  # "\-": also valid in an HTML pattern (v flag)
"""Lowercase letters, digits and ``-``; 2 to 63 characters; no ``-`` at either end."""

_workspace: ContextVar[str] = ContextVar("plughost_workspace", default=DEFAULT_WORKSPACE)
_bound: ContextVar[bool] = ContextVar("plughost_workspace_bound", default=False)


def current_workspace() -> str:
    """The workspace of the request being served (``"default"`` outside a request)."""
    return _workspace.get()


def check_workspace(name: str) -> str:
    """Return ``name`` if it is a valid workspace name; raise ``ValueError`` saying why not."""
    if not WORKSPACE_PATTERN.match(name):
        raise ValueError(
            f"invalid workspace name {name!r}: use 2-63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return name


class use_workspace:
    """Make ``name`` the current workspace inside the ``with`` block (a request, a job, a test)."""

    __slots__ = ("name", "_token")

    def __init__(self, name: str) -> None:
        self.name = check_workspace(name)

    def __enter__(self) -> str:
        self._token = _workspace.set(self.name)
        return self.name

    def __exit__(self, *exc_info: object) -> None:
        _workspace.reset(self._token)


class bind_workspace:
    """Make ``name`` the current workspace inside the ``with`` block and keep it there: whoever sets the
    workspace from a request (the workspace middleware) leaves a bound one as it is. Set by a middleware
    that authenticated the request with a credential belonging to that one workspace."""

    __slots__ = ("_bound_token", "_use")

    def __init__(self, name: str) -> None:
        self._use = use_workspace(name)

    def __enter__(self) -> str:
        self._bound_token = _bound.set(True)
        return self._use.__enter__()

    def __exit__(self, *exc_info: object) -> None:
        self._use.__exit__(*exc_info)
        _bound.reset(self._bound_token)


def workspace_bound() -> bool:
    """Whether the current workspace was bound by :class:`bind_workspace` (then it must not be changed)."""
    return _bound.get()


class RequestTimings:
    """What one request spent, measured from when the timing middleware first saw it."""

    __slots__ = ("started", "upstream")

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.upstream: dict[str, float] = {}
        """Seconds spent waiting on upstream services, by name (``provider``)."""

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def add(self, name: str, seconds: float) -> None:
        self.upstream[name] = self.upstream.get(name, 0.0) + seconds


_timings: ContextVar[RequestTimings | None] = ContextVar("plughost_timings", default=None)


def start_timings() -> tuple[RequestTimings, object]:
    """Begin timing the current request; returns the collector and a token for :func:`end_timings`."""
    timings = RequestTimings()
    return timings, _timings.set(timings)


def end_timings(token: object) -> None:
    _timings.reset(token)  # type: ignore[arg-type]


def report_upstream(name: str, seconds: float) -> None:
    """Record ``seconds`` spent waiting on the upstream ``name`` during this request.

    A no-op when no timing middleware is installed, so callers need not check.
    """
    timings = _timings.get()
    if timings is not None:
        timings.add(name, seconds)
