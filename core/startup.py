"""The server process's start-up: what ``python -m core`` sets before its heavy imports, and undoes once
the app has started.

- pydantic loads every installed pydantic plugin when the first model is built. logfire (installed with
  the test extra, or by some plugin's dependencies) registers one whose import pulls in logfire, rich and
  OpenTelemetry's exporters: a third of a second of CPU at each start, for a plugin that records nothing
  unless ``logfire.instrument_pydantic()`` is called. It is left out unless the operator sets
  ``PYDANTIC_DISABLE_PLUGINS`` (an empty value loads them all); once the app has started, the variable
  is taken away again, so that the processes the server starts (jobs) do not inherit it.
- The cyclic garbage collector is off while the server imports its modules and builds the app: some 300
  collections, a tenth of the start-up's CPU, which found little to free. The lifespan's first start
  freezes what start-up loaded and turns the collector back on (:func:`started`); every other command
  turns it back on before it runs (:func:`resume_collector`).
"""

from __future__ import annotations

import functools
import gc
import os

PLUGINS_VARIABLE = "PYDANTIC_DISABLE_PLUGINS"
_paused = False
_plugins_set = False


def prepare() -> None:
    """Before the imports: leave logfire's pydantic plugin out, pause the cyclic GC."""
    global _paused, _plugins_set
    if PLUGINS_VARIABLE not in os.environ:
        os.environ[PLUGINS_VARIABLE] = "logfire-plugin"
        _plugins_set = True
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume_collector() -> None:
    """Turn the cyclic GC back on if :func:`prepare` paused it (a no-op otherwise)."""
    global _paused
    if _paused:
        gc.enable()
        _paused = False


@functools.cache
def started() -> None:
    """Once the first app of the process has started: freeze what the process loaded by then (modules, the
    app, plugins), which lives as long as the process, out of the cyclic GC, and turn it back on. Unfrozen,
    every full collection walks it all while holding the GIL, stalling the event loop for 70-190 ms whenever
    a big request allocates many objects.

    After :func:`prepare` (the server process) nothing is collected first: the start-up's own garbage in
    cycles, 1,400 objects and under 1 MiB with every plugin, is frozen with the rest, where a collection of
    the 225,000 objects would cost 70-180 ms of the start-up's CPU. Elsewhere (a test process, an app built
    by ``uvicorn --factory``) what came before is unknown: it is collected first.

    Once per process: a full collection walks every object (0.2-0.4 s of CPU in a process of 650,000, as a
    test worker is), and the freeze is process-wide; a process that builds app after app (a test run)
    would pay it at each start for nothing."""
    global _plugins_set
    if not _paused:
        gc.collect()
    gc.freeze()
    resume_collector()
    if _plugins_set:  # pydantic has read it by now; the processes this one starts (jobs) get the operator's own
        os.environ.pop(PLUGINS_VARIABLE, None)
        _plugins_set = False
