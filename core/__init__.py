"""plughost: a FastAPI core whose features are plugins, with a WSGI app mounted last.

The public API for plugin authors is re-exported here, each name imported on first use: ``python -m core``
imports this package before :mod:`core.__main__`, which prepares the process (:mod:`core.startup`) before
the heavy imports (FastAPI, SQLAlchemy, Flask) that the names below bring in.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .bulk import empty, empty_off_loop, gc_paused, run_bulk
    from .contributions import ConsoleNotFound, ConsolePage, MiddlewareContribution, RouterContribution
    from .errors import PluginError, StartupError
    from .event_stream import EventStreamResponse
    from .hookspecs import hookimpl
    from .host import Host
    from .limits import body_limit
    from .pricing import Pricing, TokenPrice
    from .version import __version__

_EXPORTS = {
    "ConsoleNotFound": "contributions",
    "ConsolePage": "contributions",
    "EventStreamResponse": "event_stream",
    "Host": "host",
    "MiddlewareContribution": "contributions",
    "PluginError": "errors",
    "Pricing": "pricing",
    "RouterContribution": "contributions",
    "StartupError": "errors",
    "TokenPrice": "pricing",
    "__version__": "version",
    "body_limit": "limits",
    "empty": "bulk",
    "empty_off_loop": "bulk",
    "gc_paused": "bulk",
    "hookimpl": "hookspecs",
    "run_bulk": "bulk",
}

__all__ = [
    "ConsoleNotFound",
    "ConsolePage",
    "EventStreamResponse",
    "Host",
    "MiddlewareContribution",
    "PluginError",
    "Pricing",
    "RouterContribution",
    "StartupError",
    "TokenPrice",
    "__version__",
    "body_limit",
    "empty",
    "empty_off_loop",
    "gc_paused",
    "hookimpl",
    "run_bulk",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # looked up here from now on
    return value
