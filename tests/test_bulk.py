"""core.bulk: the cyclic GC pause is shared by overlapping holders, bounded in time, and restores what it found."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import anyio
import pytest

from core import bulk, empty, empty_off_loop, gc_paused


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
