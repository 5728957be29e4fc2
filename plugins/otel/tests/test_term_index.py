"""A SQLite store's search terms wait a moment before the term index takes them (see ``term_index.py``):
meanwhile, and after, every search finds what was acknowledged, and nothing waits for ever."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.database import create_engine, migrate
from plugins.otel import MIGRATIONS, term_index
from plugins.otel import store as store_module
from plugins.otel.decode import to_rows
from plugins.otel.store import FEW_TRACES, SpanStore, TraceFilter
from plugins.otel.tables import terms, terms_pending
from plugins.otel.tests.test_search import AGENT, CLAUDE, PLAIN, SEARCHES


async def rows_in(engine: AsyncEngine, table: object) -> int:
    async with engine.connect() as connection:
        return (await connection.execute(select(func.count()).select_from(table))).scalar_one()  # type: ignore[arg-type]


async def found(store: SpanStore, where: TraceFilter) -> list[int]:
    listed, _ = await store.list_traces(where, 10, None)
    return [int(row["trace_id"], 16) for row in listed]


def plain_trace(number: int) -> list[dict[str, object]]:
    """The rows of a copy of ``PLAIN`` (service "api") as trace ``number``."""
    made = type(PLAIN)()
    made.CopyFrom(PLAIN)
    for span in made.resource_spans[0].scope_spans[0].spans:
        span.trace_id = number.to_bytes(16, "big")
    return to_rows(made, workspace="default", project="p").rows


async def migrated_file(tmp_path: Path) -> AsyncEngine:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'plughost.db'}")
    await migrate(engine, MIGRATIONS, "otel")
    return engine


@pytest.mark.parametrize("few_traces", [FEW_TRACES, 1], ids=["terms-read-first", "terms-checked-per-trace"])
def test_a_trace_is_found_by_its_terms_while_they_wait_and_once_they_are_indexed(
    tmp_path: Path, few_traces: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "FEW_TRACES", few_traces)
    monkeypatch.setattr(term_index, "INDEX_DELAY_SECONDS", 3600.0)  # nothing is indexed before the store closes

    async def scenario() -> None:
        engine = await migrated_file(tmp_path)
        try:
            async with SpanStore(engine) as store:
                for made in (AGENT, CLAUDE, PLAIN):
                    await store.add(to_rows(made, workspace="default", project="p").rows)
                assert await rows_in(engine, terms) == 0
                waiting = await rows_in(engine, terms_pending)
                assert waiting > 20
                for where, expected in SEARCHES:
                    assert await found(store, where) == expected, where
                assert await store.delete_trace(f"{3:032x}")  # its waiting terms go with it
                assert 0 < await rows_in(engine, terms_pending) < waiting
            # closing indexed every waiting term
            assert await rows_in(engine, terms_pending) == 0
            async with SpanStore(engine) as store:
                for where, expected in SEARCHES:
                    assert await found(store, where) == [number for number in expected if number != 3], where
                assert await found(store, TraceFilter(service="api")) == []
        finally:
            await engine.dispose()

    asyncio.run(scenario())


def test_terms_a_stopped_process_left_waiting_are_indexed_by_the_next_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process killed after acknowledging a trace leaves its terms waiting, committed: the next store to start
    on the file indexes them."""

    async def scenario() -> None:
        monkeypatch.setattr(term_index, "INDEX_DELAY_SECONDS", 3600.0)
        killed = await migrated_file(tmp_path)
        await SpanStore(killed).add(to_rows(AGENT, workspace="default", project="p").rows)  # and never closed
        await killed.dispose()
        monkeypatch.setattr(term_index, "INDEX_DELAY_SECONDS", 0.0)
        engine = await migrated_file(tmp_path)
        try:
            assert await rows_in(engine, terms_pending) > 0
            async with SpanStore(engine) as store:
                for _ in range(1200):  # up to a minute: started, the store indexes them at once
                    if not await rows_in(engine, terms_pending):
                        break
                    await asyncio.sleep(0.05)
                assert await rows_in(engine, terms_pending) == 0
                assert await rows_in(engine, terms) > 10
                assert await found(store, TraceFilter(attributes=(("retry", "true"),))) == [1]
        finally:
            await engine.dispose()

    asyncio.run(scenario())


@pytest.mark.parametrize("per_move", [3, 4], ids=["a-short-move-last", "an-empty-move-last"])
def test_waiting_terms_are_indexed_a_move_of_rows_at_a_time_a_trace_across_moves_and_all_of_them(
    tmp_path: Path, per_move: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More term rows than one move takes, and in one trace at least as many: each transaction moves at most a
    move's rows, so however big a trace, the writer's lock is let go between moves; the last, short or empty,
    leaves nothing waiting."""
    monkeypatch.setattr(term_index, "TERMS_PER_MOVE", per_move)
    monkeypatch.setattr(term_index, "INDEX_DELAY_SECONDS", 3600.0)
    moves: list[int] = []
    move = term_index.TermIndex._move

    def counted_move(self: term_index.TermIndex) -> int:
        moves.append(move(self))
        return moves[-1]

    monkeypatch.setattr(term_index.TermIndex, "_move", counted_move)

    async def scenario() -> None:
        engine = await migrated_file(tmp_path)
        try:
            async with SpanStore(engine) as store:
                for number in range(1, 11):
                    await store.add(plain_trace(number))
                waiting = await rows_in(engine, terms_pending)
                assert waiting == 10 * 4  # each trace's 4 terms: more than a move of 3, as many as one of 4
            assert await rows_in(engine, terms_pending) == 0
            assert await rows_in(engine, terms) == waiting
            assert moves == [per_move] * (waiting // per_move) + [waiting % per_move]
            async with SpanStore(engine) as store:
                assert sorted(await found(store, TraceFilter(service="api"))) == list(range(1, 11))
        finally:
            await engine.dispose()

    asyncio.run(scenario())


@pytest.mark.parametrize("few_traces", [FEW_TRACES, 3, 1], ids=["read-first", "read-first-past-the-limit", "per-trace"])
def test_a_term_held_by_indexed_and_waiting_traces_finds_them_all(
    tmp_path: Path, few_traces: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two traces indexed, three waiting: every way SQLite filters by a term finds the five (with a limit of 3,
    the indexed ones alone are under it, but not all of them together)."""
    monkeypatch.setattr(store_module, "FEW_TRACES", few_traces)

    async def scenario() -> None:
        engine = await migrated_file(tmp_path)
        try:
            async with SpanStore(engine) as store:
                for number in (1, 2):
                    await store.add(plain_trace(number))
            monkeypatch.setattr(term_index, "INDEX_DELAY_SECONDS", 3600.0)
            async with SpanStore(engine) as store:
                for number in (3, 4, 5):
                    await store.add(plain_trace(number))
                assert await rows_in(engine, terms) > 0 and await rows_in(engine, terms_pending) > 0
                assert sorted(await found(store, TraceFilter(service="api"))) == [1, 2, 3, 4, 5]
        finally:
            await engine.dispose()

    asyncio.run(scenario())


def test_closing_during_a_move_waits_for_it_and_never_moves_twice_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store closes while a move runs in its thread: the move keeps the writer's lock till it ends, and the
    closing move comes after it (a cancelled task let go of the lock while its thread still wrote)."""
    monkeypatch.setattr(term_index, "INDEX_DELAY_SECONDS", 0.0)
    running, most = 0, 0
    move = term_index.TermIndex._move

    def slow_move(self: term_index.TermIndex) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        threading.Event().wait(0.5)
        try:
            return move(self)
        finally:
            running -= 1

    monkeypatch.setattr(term_index.TermIndex, "_move", slow_move)

    async def scenario() -> None:
        engine = await migrated_file(tmp_path)
        try:
            store = SpanStore(engine)
            await store.add(plain_trace(1))
            await asyncio.sleep(0.2)  # the move has started
            await store.aclose()
            assert await rows_in(engine, terms_pending) == 0
        finally:
            await engine.dispose()

    asyncio.run(scenario())
    assert most == 1


def test_closing_while_a_trace_bigger_than_a_move_is_moved_leaves_no_move_running_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The moves under way when the store closes take turns on the lock with the closing ones: the store has
    closed only once the last of them has ended (one ran after it, on the disposed engine)."""
    monkeypatch.setattr(term_index, "INDEX_DELAY_SECONDS", 0.0)
    monkeypatch.setattr(term_index, "TERMS_PER_MOVE", 4)  # 3 traces of 4 terms: 3 full moves, then a short one
    closed, after_close = False, 0
    move = term_index.TermIndex._move

    def slow_move(self: term_index.TermIndex) -> int:
        nonlocal after_close
        after_close += closed
        threading.Event().wait(0.1)
        return move(self)

    monkeypatch.setattr(term_index.TermIndex, "_move", slow_move)

    async def scenario() -> None:
        nonlocal closed
        engine = await migrated_file(tmp_path)
        try:
            store = SpanStore(engine)
            await store.add([row for number in (1, 2, 3) for row in plain_trace(number)])
            await asyncio.sleep(0.05)  # the first move has started
            await store.aclose()
            closed = True
            await asyncio.sleep(0.5)
            assert await rows_in(engine, terms_pending) == 0
        finally:
            await engine.dispose()

    asyncio.run(scenario())
    assert after_close == 0
