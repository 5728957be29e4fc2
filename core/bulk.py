"""Work on large object graphs (a huge trace, a request of 150,000 spans) without stalling the event loop.

Two things stall the loop although the work itself runs in a worker thread, because each is one
long stretch that holds the GIL: a full garbage collection, and freeing a big graph in one go.

A full collection walks every object the collector tracks while holding the GIL. While one
request decodes, analyses or writes millions of objects (in a worker thread or on the loop),
the heap grows, full collections follow one another, and each stalls the event loop: 15 to
500 ms each, measured on a 2,500-span, 1,000,000-attribute trace. Reference counting frees such
graphs anyway: the cyclic collector has nothing to find in them.

``gc_paused()`` disables the collector for the duration of such work and enables it again
when the last overlapping holder leaves. It is a plain context manager, safe from any thread,
and may span ``await``. Two rules keep it bounded:

- a pause is never extended past :data:`MAX_PAUSE_SECONDS`: after that, new holders run without
  pausing, so that a stream of overlapping big requests cannot keep the collector off;
- hold it until the large objects are gone (return bytes, not the graph): objects allocated while
  paused wait in the youngest generation, and the first collection after the pause walks every
  one that is still alive.

``empty()`` frees a big list an item at a time, so that the GIL can pass between items;
``await empty_off_loop(items)`` does it in a worker thread.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio.to_thread

MAX_PAUSE_SECONDS = 30.0

_lock = threading.Lock()
_holders = 0
_paused_at = 0.0
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic collector is off inside (unless a pause has already lasted :data:`MAX_PAUSE_SECONDS`)."""
    global _holders, _paused_at, _was_enabled
    with _lock:
        joined = _holders == 0 or time.monotonic() - _paused_at < MAX_PAUSE_SECONDS
        if joined:
            if _holders == 0:
                _was_enabled, _paused_at = gc.isenabled(), time.monotonic()
                gc.disable()
            _holders += 1
    try:
        yield
    finally:
        if joined:
            with _lock:
                _holders -= 1
                if _holders == 0 and _was_enabled:
                    gc.enable()


def empty(items: list[Any]) -> None:
    """Empty ``items`` an item at a time: ``list.clear()`` or dropping the last reference frees
    them all in one C call that holds the GIL, ~100 ms for 150,000 rows."""
    while items:
        items.pop()


async def empty_off_loop(items: list[Any]) -> None:
    """:func:`empty` in a worker thread (the caller must hold no other reference that outlives it)."""
    await anyio.to_thread.run_sync(empty, items)
