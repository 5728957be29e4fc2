"""A pool of job subprocesses (:mod:`plugins.jobs.child`), driven without blocking the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

REPLY_OVERHEAD_BYTES = 64 * 1024

OutcomeKind = Literal["ok", "error", "timeout", "canceled", "crashed"]


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    result: str | None = None
    """The job's JSON result, as text (kind ``ok``)."""
    error: str | None = None
    error_classes: tuple[str, ...] = field(default=())
    """Qualified names of the raised exception's class and its bases (kind ``error``)."""


class JobProcess:
    """One subprocess that runs one job at a time; killed (and replaced) on timeout or cancel."""

    def __init__(self, preload: Iterable[str], max_reply_bytes: int) -> None:
        self.preload = sorted(set(preload))
        self.max_reply_bytes = max_reply_bytes
        self.process: asyncio.subprocess.Process | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "plugins.jobs.child",
            *self.preload,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)},
            start_new_session=True,  # a Ctrl-C on the server's terminal must not kill jobs before shutdown
            limit=self.max_reply_bytes + REPLY_OVERHEAD_BYTES,
        )
        assert self.process.stdout is not None
        ready = await self.process.stdout.readline()
        if ready != b'{"ready":true}\n':
            code = await self.process.wait()
            self.process = None
            raise RuntimeError(f"the job subprocess exited with code {code} while importing {', '.join(self.preload)} (its error is on stderr)")

    async def run(self, job: dict[str, Any], timeout: float, cancel: asyncio.Event) -> Outcome:
        """Run ``job`` (the message :mod:`plugins.jobs.child` reads); kill the process on timeout or cancel."""
        if not self.alive:
            await self.start()
        process = self.process
        assert process is not None and process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps(job).encode() + b"\n")
        await process.stdin.drain()
        reply = asyncio.ensure_future(process.stdout.readline())
        canceled = asyncio.ensure_future(cancel.wait())
        try:
            done, _ = await asyncio.wait({reply, canceled}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the worker is shutting down: the job must not run on unowned
            reply.cancel()
            self.kill_now()
            raise
        finally:
            canceled.cancel()
        if reply not in done:
            reply.cancel()
            await self.kill()
            return Outcome("canceled") if cancel.is_set() else Outcome("timeout", error=f"killed after {timeout:g} s")
        try:
            line = reply.result()
        except ValueError:  # longer than the stream limit
            await self.kill()
            return Outcome("error", error=f"the result is over the {self.max_reply_bytes}-byte limit")
        if not line:
            code = await process.wait()
            self.process = None
            return Outcome("crashed", error=f"the job subprocess exited with code {code} mid-job")
        answer = json.loads(line)
        if answer["ok"]:
            return Outcome("ok", result=answer["result"])
        return Outcome("error", error=answer["error"], error_classes=tuple(answer["classes"]))

    async def kill(self) -> None:
        process = self.process
        self.kill_now()
        if process is not None:
            await process.wait()

    def kill_now(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            self.process = None

    async def close(self) -> None:
        """Stop an idle process: closing its stdin ends it."""
        if self.process is None:
            return
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 5)
        except TimeoutError:
            await self.kill()
        self.process = None


class ProcessPool:
    """``size`` job subprocesses, started together and lent out one job at a time."""

    def __init__(self, size: int, preload: Iterable[str], max_reply_bytes: int) -> None:
        self.size = size
        self.processes = [JobProcess(preload, max_reply_bytes) for _ in range(size)]
        self.idle: asyncio.Queue[JobProcess] = asyncio.Queue()
        for process in self.processes:
            self.idle.put_nowait(process)

    def free(self) -> int:
        return self.idle.qsize()

    async def start(self) -> None:
        await asyncio.gather(*(process.start() for process in self.processes))

    @contextlib.asynccontextmanager
    async def lend(self) -> AsyncIterator[JobProcess]:
        process = await self.idle.get()
        try:
            yield process
        finally:
            self.idle.put_nowait(process)

    async def close(self) -> None:
        await asyncio.gather(*(process.close() for process in self.processes))
