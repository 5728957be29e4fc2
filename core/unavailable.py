"""A database that cannot serve: which errors say so, why, and the answer every plugin gives (503).

:func:`unavailable` is the one classification: it reads an error raised by a store
(SQLAlchemy's wrapper, the driver's error beneath it, or a bare ``OSError`` from a
driver that could not connect) and names the cause, so that HTTP routes, OTLP/gRPC
and background loops all treat an outage alike and say the same thing. An error
about the query itself (a constraint, a bad value, a bug) is not an outage and
stays what it is.

Causes: the server refused the connection, the connection was lost, the database did
not answer in time, it is starting up or shutting down, it is read-only, its disk is
full, or it is busy (locked, out of connections). Each comes back by itself: the next
request opens a new connection (``pool_pre_ping`` drops dead ones).
"""

from __future__ import annotations

import errno
import logging
import traceback
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import exc
from starlette.requests import Request
from starlette.responses import JSONResponse

logger = logging.getLogger("plughost")

RETRY_AFTER_SECONDS = 5

DRIVER_MODULES = ("sqlalchemy", "asyncpg", "aiosqlite", "psycopg", "sqlite3")
"""An ``OSError`` raised from these is the database's (connecting, reading, writing); from elsewhere it is not."""


@dataclass(frozen=True)
class Unavailable:
    """Why the database cannot serve now."""

    cause: str
    """One of ``refused``, ``reset``, ``timeout``, ``starting``, ``shutting-down``, ``read-only``, ``disk-full``,
    ``busy``, ``io-error``, ``unreachable``."""
    reason: str
    """The cause in words, for the operator and the client."""

    @property
    def message(self) -> str:
        return f"the database is unavailable: {self.reason}; retry in {RETRY_AFTER_SECONDS} s"


REFUSED = Unavailable("refused", "it refused the connection (is it running?)")
RESET = Unavailable("reset", "the connection to it was lost")
TIMEOUT = Unavailable("timeout", "it did not answer in time")
STARTING = Unavailable("starting", "it is starting up")
SHUTTING_DOWN = Unavailable("shutting-down", "it is shutting down")
READ_ONLY = Unavailable("read-only", "it is read-only (a standby server, or a read-only file or disk)")
DISK_FULL = Unavailable("disk-full", "its disk is full; free some space")
BUSY = Unavailable("busy", "it is busy (locked by another writer, or out of connections)")
UNREACHABLE = Unavailable("unreachable", "it cannot be reached")

SQLSTATES = {
    "57P03": STARTING,  # cannot_connect_now: starting up, or in recovery
    "57P01": SHUTTING_DOWN,  # admin_shutdown
    "57P02": SHUTTING_DOWN,  # crash_shutdown
    "25006": READ_ONLY,  # read_only_sql_transaction (a hot standby)
    "53100": DISK_FULL,  # disk_full
    "53300": BUSY,  # too_many_connections
    "55P03": BUSY,  # lock_not_available
}
SQLSTATE_CLASSES = {"08": RESET}
"""Class 08, connection exceptions."""
SQLITE_CODES = {
    5: BUSY,  # SQLITE_BUSY
    6: BUSY,  # SQLITE_LOCKED
    8: READ_ONLY,  # SQLITE_READONLY
    10: Unavailable("io-error", "its disk failed to read or write (I/O error)"),  # SQLITE_IOERR
    13: DISK_FULL,  # SQLITE_FULL
    14: Unavailable("unreachable", "its file cannot be opened (a missing directory, or permissions)"),  # _CANTOPEN
}
"""By primary result code."""
ERRNOS = {errno.ENOSPC: DISK_FULL, errno.EDQUOT: DISK_FULL, errno.EROFS: READ_ONLY}


def unavailable(error: BaseException) -> Unavailable | None:
    """Why the database cannot serve, when ``error`` (or an error beneath it) says it cannot; else ``None``."""
    for found in _chain(error):
        cause = _classify(found)
        if cause is not None:
            return cause
    if isinstance(error, exc.TimeoutError):  # the pool's: every connection is in use
        return BUSY
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return RESET
    if isinstance(error, (exc.OperationalError, exc.InterfaceError)):
        return UNREACHABLE
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error``, what it wraps (``orig``, cause, context) and the members of a group, each once."""
    pending, seen = [error], set()
    while pending:
        found = pending.pop(0)
        if id(found) in seen:
            continue
        seen.add(id(found))
        yield found
        if isinstance(found, BaseExceptionGroup):
            pending.extend(found.exceptions)
        orig = getattr(found, "orig", None)
        pending.extend(e for e in (orig, found.__cause__, found.__context__) if isinstance(e, BaseException))


def _classify(error: BaseException) -> Unavailable | None:
    sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if isinstance(sqlstate, str):
        if sqlstate == "57P03" and "shutting down" in str(error):
            return SHUTTING_DOWN
        return SQLSTATES.get(sqlstate) or SQLSTATE_CLASSES.get(sqlstate[:2])
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        return SQLITE_CODES.get(code & 0xFF)
    if isinstance(error, OSError) and _raised_by_a_driver(error):
        if isinstance(error, ConnectionRefusedError):
            return REFUSED
        if isinstance(error, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
            return RESET
        if isinstance(error, TimeoutError):
            return TIMEOUT
        return ERRNOS.get(error.errno or 0, UNREACHABLE)
    return None


def _raised_by_a_driver(error: BaseException) -> bool:
    for frame, _ in traceback.walk_tb(error.__traceback__):
        module = str(frame.f_globals.get("__name__", ""))
        if module.split(".", 1)[0] in DRIVER_MODULES:
            return True
    return False


def unavailable_response(cause: Unavailable, headers: dict[str, str] | None = None) -> JSONResponse:
    """503 with ``Retry-After``; the body says why (``detail``; ``reason`` alone) and names the cause (``cause``)."""
    return JSONResponse(
        {"detail": cause.message, "unavailable": "database", "cause": cause.cause, "reason": cause.reason},
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS), **(headers or {})},
    )


async def answer_database_errors(request: Request, error: Exception) -> JSONResponse:
    """The handler for store errors (SQLAlchemy's, drivers' ``OSError``): 503 when the database is unavailable;
    any other error goes on to the 500 handler."""
    cause = unavailable(error)
    if cause is None:
        raise error
    logger.warning("%s %s: %s", request.method, request.url.path, cause.message)
    return unavailable_response(cause)


async def answer_server_error(request: Request, error: Exception) -> JSONResponse:
    """The 500 handler. The server closes the connection after it (the error goes on to it, to be logged),
    so the answer says ``Connection: close``: a keep-alive client then never sends its next request into
    a closed connection. An outage noticed only here (in a middleware) is still a 503."""
    cause = unavailable(error)
    if cause is not None:
        return unavailable_response(cause, {"Connection": "close"})
    return JSONResponse({"detail": "internal server error"}, status_code=500, headers={"Connection": "close"})
