"""core.bulk: the cyclic GC pause is shared by overlapping holders, bounded in time, and restores what it found."""

from __future__ import annotations

import contextvars
import gc
import os
import sys
import threading
import time
from collections.abc import Iterator

import anyio
import anyio.to_thread
import pytest

from core import bulk, empty, empty_off_loop, gc_paused, run_bulk


@pytest.fixture(autouse=True)
def _collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    gc.enable() if was else gc.disable()


def test_the_collector_is_off_inside_and_back_on_after() -> None:
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_overlapping_holders_keep_it_off_until_the_last_leaves() -> None:
    first_in, second_out = threading.Event(), threading.Event()
    seen: list[bool] = []

    def other() -> None:
        with gc_paused():
            first_in.set()
            second_out.wait(5)
        seen.append(gc.isenabled())

    thread = threading.Thread(target=other)
    thread.start()
    first_in.wait(5)
    with gc_paused():
        pass
    assert not gc.isenabled()  # the other holder is still inside
    second_out.set()
    thread.join(5)
    assert seen == [True] and gc.isenabled()


def test_a_collector_disabled_before_stays_disabled() -> None:
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()


def test_a_long_pause_is_not_extended_by_new_holders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "MAX_PAUSE_SECONDS", 0.0)
    with gc_paused():
        with gc_paused():  # joins nothing: the pause is already as long as allowed
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_an_error_inside_still_ends_the_pause() -> None:
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_empty_frees_every_item_in_place() -> None:
    items = [{"n": n} for n in range(1000)]
    empty(items)
    assert items == []


def test_empty_off_loop_empties_in_a_worker_thread() -> None:
    threads: list[str] = []

    class Marker:
        def __del__(self) -> None:
            threads.append(threading.current_thread().name)

    items = [Marker()]
    anyio.run(empty_off_loop, items)
    assert items == [] and threads and threads[0] != threading.main_thread().name


def _own_priority() -> tuple[int, int]:
    thread = threading.get_native_id()
    return thread, os.getpriority(os.PRIO_PROCESS, thread)


@pytest.mark.skipif(sys.platform != "linux", reason="nice is per thread on Linux only")
def test_bulk_work_that_yields_the_cpu_runs_below_the_event_loops_priority() -> None:
    async def main() -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        return _own_priority(), await run_bulk(_own_priority, yield_cpu=True), await run_bulk(_own_priority)

    (loop_thread, loop_priority), (low_thread, low_priority), (bulk_thread, bulk_priority) = anyio.run(main)
    assert len({loop_thread, low_thread, bulk_thread}) == 3
    assert low_priority == min(19, loop_priority + bulk.BULK_NICENESS)
    assert bulk_priority == loop_priority  # work that holds the GIL keeps the loop's priority
    assert os.getpriority(os.PRIO_PROCESS, loop_thread) == loop_priority  # only the yielding thread was lowered


def test_bulk_work_returns_its_result_and_raises_its_error() -> None:
    def fail(message: str) -> None:
        raise ValueError(message)

    async def main() -> None:
        assert await run_bulk(sum, [1, 2, 3]) == 6
        with pytest.raises(ValueError, match="bad input"):
            await run_bulk(fail, "bad input")

    anyio.run(main)


def test_bulk_work_sees_the_callers_context_variables() -> None:
    request_workspace: contextvars.ContextVar[str] = contextvars.ContextVar("request_workspace", default="default")

    async def main() -> str:
        request_workspace.set("team-a")
        return await run_bulk(request_workspace.get)

    assert anyio.run(main) == "team-a"


def test_a_cancelled_caller_waits_for_its_bulk_work_to_finish() -> None:
    started, release = threading.Event(), threading.Event()
    finished: list[str] = []

    def work() -> None:
        started.set()
        release.wait(5)
        finished.append("work")

    async def main() -> None:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(run_bulk, work)
                await anyio.to_thread.run_sync(started.wait, 5)
                scope.cancel()
                threading.Timer(0.2, release.set).start()
        finished.append("caller")

    anyio.run(main)
    assert finished == ["work", "caller"]


def test_a_loop_of_bulk_work_can_be_cancelled_between_calls() -> None:
    calls: list[int] = []

    def work() -> None:
        calls.append(1)
        time.sleep(0.01)

    async def main() -> None:
        with anyio.move_on_after(0.1):
            for _ in range(200):
                await run_bulk(work)

    anyio.run(main)
    assert 0 < len(calls) < 100


def test_once_the_pools_are_started_work_from_the_loop_starts_no_thread() -> None:
    """Work submitted from the event loop must not wait for a thread to start (see ``start_threads``)."""
    bulk.start_threads()
    running = {thread.name for thread in threading.enumerate()}
    for prefix in ("plughost-bulk", "plughost-bulk-low"):
        assert {f"{prefix}_{number}" for number in range(bulk.STARTED_THREADS)} <= running

    async def work() -> list[int]:
        return [await run_bulk(sum, [1, 2]), await run_bulk(sum, [3], yield_cpu=True)]

    assert anyio.run(work) == [3, 3]
    assert {thread.name for thread in threading.enumerate()} <= running
