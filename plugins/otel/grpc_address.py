"""Who may serve an OTLP/gRPC address: the workers of one server share it; no other server joins them.

grpc's server sets ``SO_REUSEPORT``, with which a second server given the same address
binds it too and the kernel splits the exports between them. Before binding, a server
checks that the address is free; a busy one is joined only by the workers of the server
that serves it, which it names in ``<data dir>/otel-grpc-owner.json``. A file lock beside
it makes "check, bind, name" one step, so two workers starting together agree.

The workers of one server share an identity: the pid of uvicorn's supervisor (their
parent) with ``--workers`` > 1; a server of one process has an identity of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

from .settings import split_address

OWNER_FILE = "otel-grpc-owner.json"


def server_identity(workers: int) -> str:
    """The same in every worker of this server, and in no other server."""
    return f"workers-of-{os.getppid()}" if workers > 1 else f"process-{os.getpid()}-{uuid.uuid4().hex}"


@contextlib.asynccontextmanager
async def claim(address: str, directory: Path, identity: str) -> AsyncIterator[bool]:
    """Whether this server may bind ``address``: it is free, or this server's own workers serve it.
    Bind inside the block; when the address was free, this server is named its owner afterwards.

    The file work runs in asyncio's own threads, not anyio's: importing anyio's asyncio backend here, the
    first thing of the start-up to need it, was a hundredth of the start-up's CPU."""
    lock = await asyncio.to_thread(_locked, directory)
    try:
        owners = _read_owners(directory)
        if await asyncio.to_thread(_is_free, address):
            yield True
            owners[address] = identity
            _write_owners(directory, owners)
        else:
            yield owners.get(address) == identity
    finally:
        lock.close()  # lets go of the lock


def _locked(directory: Path) -> IO[str]:
    """The lock beside the owner file, taken (waits for another worker's turn)."""
    directory.mkdir(parents=True, exist_ok=True)
    lock = open(directory / f"{OWNER_FILE}.lock", "w")  # noqa: SIM115 - closed by claim()
    fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
    return lock


def _is_free(address: str) -> bool:
    """No socket listens on ``address`` (a test bind, with ``SO_REUSEADDR`` as grpc binds: connections
    lingering in TIME_WAIT do not count, a listener does, ``SO_REUSEPORT`` or not)."""
    host, port = split_address(address)
    if port == 0:
        return True
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return True  # grpc will say what is wrong with the host when it binds
    for family, kind, protocol, _, where in found:
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(where)
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    return False
    return True


def _read_owners(directory: Path) -> dict[str, str]:
    try:
        owners = json.loads((directory / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return owners if isinstance(owners, dict) else {}


def _write_owners(directory: Path, owners: dict[str, str]) -> None:
    temporary = directory / f"{OWNER_FILE}.tmp"
    temporary.write_text(json.dumps(owners))
    os.replace(temporary, directory / OWNER_FILE)
