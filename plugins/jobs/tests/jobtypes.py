"""Job types for the tests, contributed by a plugin of their own (``testjobs``) as a third party would."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from core import hookimpl
from plugins.jobs.hookspecs import JobContext, JobType, RetryPolicy, Schedule

PLUGHOST_NAME = "testjobs"


class Echo(BaseModel):
    value: Any = None


def echo(params: Echo, job: JobContext) -> dict[str, Any]:
    from core.context import current_workspace

    return {
        "value": params.value,
        "attempt": job.attempt,
        "workspace": current_workspace(),
        "pid": os.getpid(),
        "parent": os.getppid(),
        "parent_command": Path(f"/proc/{os.getppid()}/cmdline").read_bytes().replace(b"\0", b" ").decode(),
    }


async def async_echo(params: Echo, job: JobContext) -> dict[str, Any]:
    await asyncio.sleep(0)
    return {"value": params.value, "async": True}


class Sleep(BaseModel):
    seconds: float = Field(ge=0)
    marker: str | None = None
    """A file the job writes its pid to when it starts."""


def sleep(params: Sleep, job: JobContext) -> dict[str, Any]:
    if params.marker:
        Path(params.marker).write_text(f"{os.getpid()} {job.attempt}")
    time.sleep(params.seconds)
    return {"slept": params.seconds, "attempt": job.attempt}


class Flaky(BaseModel):
    succeed_on: int = Field(ge=1)


def flaky(params: Flaky, job: JobContext) -> dict[str, int]:
    if job.attempt < params.succeed_on:
        raise ConnectionError(f"upstream unavailable on attempt {job.attempt}")
    return {"attempts": job.attempt}


def broken(params: Echo, job: JobContext) -> None:
    raise ValueError(f"cannot handle {params.value!r}")


class Record(BaseModel):
    log: str
    """A file each run appends ``<job id> <pid> <worker pid> <start> <end>`` to."""
    seconds: float = 0.0


def record(params: Record, job: JobContext) -> None:
    started = time.time()
    time.sleep(params.seconds)
    line = f"{job.id} {os.getpid()} {os.getppid()} {started} {time.time()}\n".encode()
    fd = os.open(params.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


class Spawn(BaseModel):
    marker: str
    """A file the job writes ``<its pid> <the program's pid>`` to once the program runs."""
    daemonize: bool = False
    """Start the program in a session of its own, orphaned (as a daemon's double fork does), not as a child."""
    seconds: float = 300
    """How long the job itself then sleeps."""


def spawn(params: Spawn, job: JobContext) -> dict[str, int]:
    if params.daemonize:
        shell = subprocess.run(
            ["sh", "-c", "setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $!"],
            capture_output=True,
            text=True,
            check=True,
        )
        program = int(shell.stdout)
    else:
        program = subprocess.Popen(["sleep", "300"]).pid
    Path(params.marker).write_text(f"{os.getpid()} {program}")
    time.sleep(params.seconds)
    return {"program": program}


class Report(BaseModel):
    lines: int = Field(3, ge=1)
    line_bytes: int = Field(0, ge=0)
    """Pad each printed line to this many bytes."""
    artifact: str | None = None
    """Write the printed lines to this artifact too."""
    hold: str | None = None
    """Before ending, wait until this file exists."""
    pause: str | None = None
    """Before the last line and progress report, wait until this file exists."""


def report(params: Report, job: JobContext) -> dict[str, int]:
    printed = []
    for index in range(params.lines):
        while params.pause and index == params.lines - 1 and not Path(params.pause).exists():
            time.sleep(0.02)
        line = f"line {index}".ljust(params.line_bytes, ".")
        print(line)
        printed.append(line)
        if index < 3:
            job.logger.info("record %d", index)
        job.progress((index + 1) / params.lines, f"{index + 1} of {params.lines}")
    sys.stderr.write("to stderr\n")
    subprocess.run(["echo", "from a program"], check=True)
    if params.artifact:
        job.write_artifact(params.artifact, "\n".join(printed))
    while params.hold and not Path(params.hold).exists():
        time.sleep(0.02)
    return {"lines": params.lines}


JOB_TYPES = [
    JobType("test.echo", echo, Echo, description="Returns its value"),
    JobType("test.async-echo", async_echo, Echo),
    JobType("test.sleep", sleep, Sleep, timeout_seconds=60, retry=RetryPolicy(max_attempts=2)),
    JobType(
        "test.flaky",
        flaky,
        Flaky,
        retry=RetryPolicy(max_attempts=3, transient=(ConnectionError,), backoff_seconds=0.05),
    ),
    JobType("test.broken", broken, Echo, retry=RetryPolicy(max_attempts=3, transient=(ConnectionError,))),
    JobType("test.record", record, Record),
    JobType("test.spawn", spawn, Spawn),
    JobType("test.report", report, Report),
]


@hookimpl(optionalhook=True)
def plughost_job_types(host: Any) -> list[JobType]:
    return JOB_TYPES


DECLARED: list[Schedule] = []
"""The schedules this plugin declares at start-up; tests set it."""


@hookimpl(optionalhook=True)
def plughost_job_schedules(host: Any) -> list[Schedule]:
    return list(DECLARED)
