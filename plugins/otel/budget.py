"""A global budget for the memory that concurrent decompressions may hold, and giving it back to the OS.

Each request that must be inflated reserves an upper bound of what it can inflate
to before it starts; the others wait their turn, and one that waits too long is
told to come back later (503 with ``Retry-After``). When the last reservation is
released, freed heap pages go back to the operating system (glibc ``malloc_trim``),
so a burst of big requests does not leave the process holding its peak.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread


class BudgetExhausted(Exception):
    """The budget stayed spent for the whole wait."""


class DecompressionBudget:
    def __init__(self, total_bytes: int, wait_seconds: float) -> None:
        self.total_bytes = total_bytes
        self.wait_seconds = wait_seconds
        self._held = 0
        self._changed: asyncio.Condition | None = None

    @asynccontextmanager
    async def hold(self, amount: int) -> AsyncIterator[None]:
        """Reserve ``amount`` bytes for the block; waits for room up to ``wait_seconds``, then raises
        :class:`BudgetExhausted`."""
        if self._changed is None:
            self._changed = asyncio.Condition()
        amount = min(amount, self.total_bytes)
        async with self._changed:
            try:
                with anyio.fail_after(self.wait_seconds):
                    await self._changed.wait_for(lambda: self._held + amount <= self.total_bytes)
            except TimeoutError:
                raise BudgetExhausted() from None
            self._held += amount
        try:
            yield
        finally:
            async with self._changed:
                self._held -= amount
                self._changed.notify_all()
                idle = self._held == 0
            if idle:
                await anyio.to_thread.run_sync(release_free_memory)


def _malloc_trim() -> object | None:
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


_MALLOC_TRIM = _malloc_trim()


def release_free_memory() -> None:
    """Return the C heap's free pages to the OS (a no-op where the C library has no ``malloc_trim``)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)  # type: ignore[operator]
