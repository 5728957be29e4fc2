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
``await empty_off_loop(items)`` does it in a bulk thread.

``await run_bulk(function, *args)`` runs CPU-heavy work (parsing, encoding, analysing) in a pool of
bulk threads, whose first threads :func:`start_threads` starts with the app; with ``yield_cpu=True``,
work that lets go of the GIL (inflating, copying) runs in
threads at a lower CPU priority than the event loop's (Linux: nice is per thread, and a thread may
always lower its own). On 2 cores, four threads inflating gzip bombs took turns on the CPU with the
event loop thread as equals, and ``/health`` waited for a core as much as for the work; below it,
they give way whenever the loop has work. Work that holds the GIL stays at the loop's priority: a
low-priority thread holding the GIL while a busy process takes the core stalls the loop for longer.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import gc
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import anyio
import anyio.lowlevel

T = TypeVar("T")
logger = logging.getLogger("plughost")

MAX_PAUSE_SECONDS = 30.0
BULK_NICENESS = 10
"""How far below the event loop's priority ``yield_cpu`` threads run: a CPU share of about 1 to 9 against it."""
BULK_THREADS = 40
"""As many as anyio's worker threads: a few long analyses never hold up the decoding of requests."""
STARTED_THREADS = 8
"""Threads of each bulk pool started with the app (see :func:`start_threads`); more start on demand."""
START_SECONDS = 10.0

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
    """:func:`empty` in a bulk thread (the caller must hold no other reference that outlives it)."""
    await run_bulk(empty, items)


async def run_bulk(function: Callable[..., T], *args: Any, yield_cpu: bool = False) -> T:
    """``function(*args)`` in a bulk thread. Like ``anyio.to_thread.run_sync``, it sees the caller's
    context variables (the request's workspace), is a cancellation point before the work starts, and
    once started, a caller cancelled through anyio (a cancel scope, a task group) still waits for the
    thread to finish, so that what the work holds is freed before the caller moves on.

    ``yield_cpu=True`` runs it in a thread below the event loop's CPU priority: only for work that
    lets go of the GIL (inflating, copying). Work that holds the GIL must not: the loop would wait
    for it to be scheduled, which the OS does last while anything else wants the core."""
    await anyio.lowlevel.checkpoint_if_cancelled()
    in_context = functools.partial(contextvars.copy_context().run, function, *args)
    done = asyncio.get_running_loop().run_in_executor(_bulk_threads(yield_cpu), in_context)
    with anyio.CancelScope(shield=True):
        result = await done
    return result


@functools.cache
def start_threads() -> None:
    """Start :data:`STARTED_THREADS` threads in each bulk pool, once a process, when the app starts and nothing
    else wants the GIL. A pool starts a thread on demand in the thread that submits work, the event loop's,
    and ``Thread.start`` waits for the new thread to run: for the GIL. Behind a bulk thread walking a span of
    1.8 M attributes, that wait kept the loop from answering for 67 ms. Threads that do not all come within
    :data:`START_SECONDS` are left to start on demand."""
    for yield_cpu in (False, True):
        pool = _bulk_threads(yield_cpu)
        all_running = threading.Barrier(STARTED_THREADS + 1, timeout=START_SECONDS)
        try:
            for _ in range(STARTED_THREADS):  # each waits at the barrier, so the next submit finds none idle
                pool.submit(all_running.wait)
            all_running.wait()
        except threading.BrokenBarrierError:
            logger.warning("the bulk threads did not all start in %s s; the rest start on demand", START_SECONDS)
        except BaseException:
            all_running.abort()  # a submit failed (no thread to be had): let the waiting ones go
            raise


def _forget_pools() -> None:
    """In a forked child: the parent's pools and their threads are not there."""
    _bulk_threads.cache_clear()
    start_threads.cache_clear()


os.register_at_fork(after_in_child=_forget_pools)


@functools.cache
def _bulk_threads(yield_cpu: bool) -> ThreadPoolExecutor:
    if yield_cpu:
        return ThreadPoolExecutor(BULK_THREADS, thread_name_prefix="plughost-bulk-low", initializer=_lower_own_priority)
    return ThreadPoolExecutor(BULK_THREADS, thread_name_prefix="plughost-bulk")


def _lower_own_priority() -> None:
    """Lower the calling thread's CPU priority by :data:`BULK_NICENESS` (on Linux; elsewhere nice is per process)."""
    if sys.platform != "linux":
        return
    thread = threading.get_native_id()
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + BULK_NICENESS))
