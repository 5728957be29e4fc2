"""Job workers, started on demand from a fork server and stopped when idle; driven without blocking the event loop.

Nothing runs while no job does: the first claimed job starts the fork server
(:mod:`plugins.jobs.forkserver`, which imports the job modules once) and forks a
worker from it; a worker killed by a timeout or cancel is replaced by a fork in
milliseconds. Workers idle for ``idle_seconds`` exit, and so does the fork server
once no worker is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from .reaper import kill_group

CLOSE_WAIT_SECONDS = 30.0
"""How long a closed fork server may take to exit before it is killed: it may still be importing
the job modules (seconds on a busy machine) before it sees its control socket closed."""
REPLY_OVERHEAD_BYTES = 64 * 1024
LOG_READ_BYTES = 64 * 1024

OutcomeKind = Literal["ok", "error", "timeout", "canceled", "crashed"]
ProgressSink = Callable[[float | None, str], None]
OutputSink = Callable[[bytes], None]


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    result: str | None = None
    """The job's JSON result, as text (kind ``ok``)."""
    error: str | None = None
    error_classes: tuple[str, ...] = field(default=())
    """Qualified names of the raised exception's class and its bases (kind ``error``)."""


class ForkServer:
    """The dispatcher's handle on one fork server process and its control socket."""

    def __init__(self, preload: Iterable[str]) -> None:
        self.preload = sorted(set(preload))
        self.process: asyncio.subprocess.Process | None = None
        self.control: socket.socket | None = None
        self.lock = asyncio.Lock()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "plugins.jobs.forkserver",
                str(theirs.fileno()),
                *self.preload,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "PYTHONUNBUFFERED": "1"},
                start_new_session=True,  # a Ctrl-C on the server's terminal must not kill jobs before shutdown
            )
        ours.setblocking(False)
        self.control = ours
        if await self._receive() != {"ready": True}:
            code = await self.process.wait()
            await self.close()
            raise RuntimeError(
                f"the job fork server exited with code {code} while importing {', '.join(self.preload)} "
                "(its error is on stderr)"
            )

    async def _receive(self) -> dict[str, Any] | None:
        assert self.control is not None
        try:
            data = await asyncio.get_running_loop().sock_recv(self.control, 4096)
        except OSError:
            return None
        return json.loads(data) if data else None

    async def request(self, message: dict[str, Any], fds: Iterable[int] = ()) -> dict[str, Any]:
        async with self.lock:
            if not self.alive:
                await self.start()
            assert self.control is not None
            socket.send_fds(self.control, [json.dumps(message).encode()], list(fds))  # a few bytes: never blocks
            reply = await self._receive()
        if reply is None:
            raise RuntimeError("the job fork server died")
        return reply

    async def close(self) -> None:
        """Closing the control socket makes the fork server kill every worker and exit."""
        if self.control is not None:
            self.control.close()
            self.control = None
        if self.process is not None:
            try:
                await asyncio.wait_for(self.process.wait(), CLOSE_WAIT_SECONDS)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):  # it exited as the wait ran out
                    self.process.kill()
                await self.process.wait()
            self.process = None


class Worker:
    """One forked worker: its job socket, its log pipe, and who receives its output."""

    def __init__(self, pid: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, log_fd: int) -> None:
        self.pid = pid
        self.reader = reader
        self.writer = writer
        self.log_fd = log_fd
        self.output: OutputSink | None = None
        asyncio.get_running_loop().add_reader(log_fd, self._read_output)

    @classmethod
    async def fork(cls, server: ForkServer, limit: int) -> Worker:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        log_read, log_write = os.pipe()
        try:
            reply = await server.request({"op": "fork"}, [theirs.fileno(), log_write])
        except BaseException:
            ours.close()
            os.close(log_read)
            raise
        finally:
            theirs.close()
            os.close(log_write)
        os.set_blocking(log_read, False)
        reader, writer = await asyncio.open_unix_connection(sock=ours, limit=limit)
        worker = cls(reply["pid"], reader, writer, log_read)
        if await reader.readline() != b'{"ready":true}\n':
            await worker.stop(server)
            raise RuntimeError("a job worker died while starting (its error is on stderr)")
        return worker

    def _read_output(self) -> None:
        try:
            data = os.read(self.log_fd, LOG_READ_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(self.log_fd)
        elif self.output is not None:
            self.output(data)

    def drain_output(self) -> None:
        """Hand over what the worker wrote before its last message (it is in the pipe already)."""
        while True:
            try:
                data = os.read(self.log_fd, LOG_READ_BYTES)
            except OSError:
                return
            if not data:
                return
            if self.output is not None:
                self.output(data)

    async def stop(self, server: ForkServer) -> None:
        """Kill the worker's process group now; the fork server reaps it and kills what escaped the group."""
        kill_group(self.pid)
        self.writer.close()
        with contextlib.suppress(RuntimeError):  # the fork server is gone: it killed everything on its way out
            await server.request({"op": "reap", "pid": self.pid})
        self.drain_output()
        asyncio.get_running_loop().remove_reader(self.log_fd)
        os.close(self.log_fd)
        self.output = None


class JobProcess:
    """A slot of the pool: runs one job at a time in its worker, forking a new one when needed."""

    def __init__(self, pool: ProcessPool) -> None:
        self.pool = pool
        self.worker: Worker | None = None
        self.last_used = time.monotonic()

    async def run(
        self,
        job: dict[str, Any],
        timeout: float,  # noqa: ASYNC109 - the job's own time limit: on expiry its tree is killed, this call returns
        cancel: asyncio.Event,
        progress: ProgressSink,
        output: OutputSink,
    ) -> Outcome:
        """Run ``job`` (the message :mod:`plugins.jobs.child` reads); kill its whole tree on timeout or cancel."""
        if self.worker is None:
            self.worker = await Worker.fork(self.pool.server, self.pool.max_reply_bytes + REPLY_OVERHEAD_BYTES)
        worker = self.worker
        worker.output = output
        try:
            return await self._exchange(worker, job, timeout, cancel, progress)
        except asyncio.CancelledError:  # the worker is shutting down: the job must not run on unowned
            await asyncio.shield(self.kill())
            raise
        finally:
            if self.worker is worker:
                worker.drain_output()
                worker.output = None
            self.last_used = time.monotonic()

    async def _exchange(
        self,
        worker: Worker,
        job: dict[str, Any],
        timeout: float,  # noqa: ASYNC109 - the job's own time limit, as in run()
        cancel: asyncio.Event,
        progress: ProgressSink,
    ) -> Outcome:
        worker.writer.write(json.dumps(job).encode() + b"\n")
        await worker.writer.drain()
        deadline = time.monotonic() + timeout
        canceled = asyncio.ensure_future(cancel.wait())
        try:
            while True:
                reply = asyncio.ensure_future(worker.reader.readline())
                done, _ = await asyncio.wait(
                    {reply, canceled},
                    timeout=max(0.0, deadline - time.monotonic()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if reply not in done:
                    reply.cancel()
                    await self.kill()
                    return (
                        Outcome("canceled")
                        if cancel.is_set()
                        else Outcome("timeout", error=f"killed after {timeout:g} s")
                    )
                try:
                    line = reply.result()
                except ValueError:  # longer than the stream limit
                    await self.kill()
                    return Outcome("error", error=f"the result is over the {self.pool.max_reply_bytes}-byte limit")
                if not line:
                    await self.kill()
                    return Outcome("crashed", error="the job's worker process died mid-job")
                try:
                    answer = json.loads(line)
                except ValueError:  # the job wrote on its worker's socket
                    await self.kill()
                    return Outcome("crashed", error="the job's worker sent a malformed message")
                if "progress" in answer:
                    progress(answer["progress"], answer["message"])
                    continue
                if answer["ok"]:
                    return Outcome("ok", result=answer["result"])
                return Outcome("error", error=answer["error"], error_classes=tuple(answer["classes"]))
        finally:
            canceled.cancel()

    async def kill(self) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            await worker.stop(self.pool.server)


class ProcessPool:
    """Up to ``size`` workers, lent out one job at a time, forked on demand and stopped after ``idle_seconds``."""

    def __init__(self, size: int, preload: Iterable[str], max_reply_bytes: int, idle_seconds: float) -> None:
        self.size = size
        self.max_reply_bytes = max_reply_bytes
        self.idle_seconds = idle_seconds
        self.server = ForkServer(preload)
        self.processes = [JobProcess(self) for _ in range(size)]
        self.idle: asyncio.Queue[JobProcess] = asyncio.Queue()
        self.server_used = time.monotonic()
        for process in self.processes:
            self.idle.put_nowait(process)

    @contextlib.asynccontextmanager
    async def lend(self) -> AsyncIterator[JobProcess]:
        process = await self.idle.get()
        try:
            yield process
        finally:
            self.server_used = time.monotonic()
            self.idle.put_nowait(process)

    def worker_pids(self) -> list[int]:
        return [process.worker.pid for process in self.processes if process.worker is not None]

    async def trim(self) -> None:
        """Stop workers idle for ``idle_seconds``, then the fork server once no worker is left."""
        now = time.monotonic()
        lent = self.size - self.idle.qsize()
        idle = [self.idle.get_nowait() for _ in range(self.idle.qsize())]  # held back so none is lent while we stop it
        try:
            for process in idle:
                if process.worker is not None and now - process.last_used >= self.idle_seconds:
                    await process.kill()
        finally:
            for process in idle:
                self.idle.put_nowait(process)
        if lent == 0 and self.server.alive and not self.worker_pids() and now - self.server_used >= self.idle_seconds:
            await self.server.close()

    async def close(self) -> None:
        await asyncio.gather(*(process.kill() for process in self.processes))
        await self.server.close()
