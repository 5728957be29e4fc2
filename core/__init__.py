"""plughost: a FastAPI core whose features are plugins, with a WSGI app mounted last.

The public API for plugin authors is re-exported here.
"""

import os

# pydantic loads every installed pydantic plugin when the first model is built. logfire (installed with the
# test extra, or by a plugin's own dependencies) registers one whose import pulls in logfire, rich and
# OpenTelemetry's exporters: a third of a second of CPU at each start, for a plugin that records nothing
# unless ``logfire.instrument_pydantic()`` is called. An operator's own PYDANTIC_DISABLE_PLUGINS wins.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "logfire-plugin")

from .bulk import empty, empty_off_loop, gc_paused, run_bulk
from .contributions import ConsoleNotFound, ConsolePage, MiddlewareContribution, RouterContribution
from .errors import PluginError, StartupError
from .hookspecs import hookimpl
from .host import Host
from .limits import body_limit
from .pricing import Pricing, TokenPrice
from .version import __version__

__all__ = [
    "ConsoleNotFound",
    "ConsolePage",
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
