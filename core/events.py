"""Event hooks: a plugin tells the others that something happened, and never waits for them.

An :class:`EventQueue` belongs to the plugin that offers an event hook (the jobs plugin's
``plughost_job_finished``). :meth:`EventQueue.emit` never blocks: it puts the event in a bounded
queue, or drops it and counts the drop when the queue is full. A task that runs for the app's
life (:meth:`EventQueue.running`, a lifespan) hands each event to every implementation in turn,
each on its own: an ``async def`` implementation is awaited, a plain function runs in a worker
thread, each for at most ``timeout_seconds``; one that raises or takes too long is logged with
its plugin's name, and the others still get the event.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread

logger = logging.getLogger("plughost.events")

STOP = object()


class EventQueue:
    """The events of one hook, delivered in order, off the emitter's path."""

    def __init__(self, host: Any, hook: str, *, size: int = 1000, timeout_seconds: float = 10.0) -> None:
        self.host = host
        self.hook = hook
        self.timeout_seconds = timeout_seconds
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=size)
        self.delivered = 0
        """Events handed to every implementation (whatever each did with it)."""
        self.dropped = 0
        """Events left out because the queue was full."""
        self.failed = 0
        """Implementation calls that raised or outlasted ``timeout_seconds``."""

    def _implementations(self) -> list[Any]:
        caller = getattr(self.host.plugins.manager.hook, self.hook, None)
        return sorted(caller.get_hookimpls(), key=lambda impl: impl.plugin_name) if caller is not None else []

    @property
    def wanted(self) -> bool:
        """Whether some plugin implements the hook (so preparing an event is worth it)."""
        return bool(self._implementations())

    def takes(self, argument: str) -> bool:
        """Whether some implementation takes ``argument`` (so an argument that costs a read is worth it)."""
        return any(argument in impl.argnames for impl in self._implementations())

    def emit(self, **event: Any) -> None:
        """Queue ``event`` (the hook's keyword arguments) for delivery; nothing happens without implementations."""
        if not self.wanted:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.warning(
                    "%s: %d events dropped so far, the implementations are too slow", self.hook, self.dropped
                )

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Deliver events until the block ends, then those still queued, for at most ``timeout_seconds``."""
        task = asyncio.create_task(self._deliver(), name=f"plughost-events-{self.hook}")
        try:
            yield
        finally:
            while True:
                try:
                    self.queue.put_nowait(STOP)
                    break
                except asyncio.QueueFull:
                    self.queue.get_nowait()
                    self.dropped += 1
            try:
                await asyncio.wait_for(task, self.timeout_seconds)
            except TimeoutError:
                logger.warning("%s: delivery stopped with events left undelivered", self.hook)

    async def _deliver(self) -> None:
        while (event := await self.queue.get()) is not STOP:
            for impl in self._implementations():
                await self._call(impl, event)
            self.delivered += 1

    async def _call(self, impl: Any, event: dict[str, Any]) -> None:
        arguments = {name: event[name] for name in impl.argnames if name in event}
        try:
            if asyncio.iscoroutinefunction(impl.function):
                await asyncio.wait_for(impl.function(**arguments), self.timeout_seconds)
            else:
                call = functools.partial(impl.function, **arguments)
                await asyncio.wait_for(anyio.to_thread.run_sync(call, abandon_on_cancel=True), self.timeout_seconds)
        except TimeoutError:
            self.failed += 1
            logger.warning("%s of plugin %r took over %s s; skipped", self.hook, impl.plugin_name, self.timeout_seconds)
        except Exception:
            self.failed += 1
            logger.exception(
                "%s of plugin %r raised; the other plugins still get the event", self.hook, impl.plugin_name
            )
