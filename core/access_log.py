"""uvicorn's access log line, written without the logging machinery's cost per request.

uvicorn logs each response through ``logging.getLogger("uvicorn.access").info(...)``: a log record,
two copies of it in its formatter, ``%``-formatting and the handler's locks, about 14 us of CPU a
request, a fifth of a ``/health`` answer. When that logger is configured as :func:`core.server.log_config`
configures it (one stream handler, uvicorn's access formatter and format, no filters), the same line
goes to the same stream, flushed as the handler does, from a template that formatter rendered once
per status code. Any other configuration (a filter, another handler or format) keeps the logger.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from uvicorn.logging import AccessFormatter

ACCESS_FORMAT = '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s'
"""uvicorn's default access format, the one whose fields the template below stands in for."""
ACCESS_MESSAGE = '%s - "%s %s HTTP/%s" %d'
"""The message uvicorn logs with those fields (what a handler other than the console's would print)."""
_FIELD = "\x00"
"""Stands for each of the client, method, path and HTTP version while a template is rendered."""


class AccessLineWriter(logging.Logger):
    """Stands in for the ``uvicorn.access`` logger in uvicorn's protocol, which calls only its ``info``
    with the client, method, path, HTTP version and status; writes what its handler would have."""

    def __init__(self, source: logging.Logger, handler: logging.StreamHandler[Any], formatter: AccessFormatter):
        super().__init__(source.name)
        self.source = source
        self.handler = handler
        self.formatter = formatter
        self.templates: dict[int, tuple[str, ...]] = {}

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None:
        if not self.source.isEnabledFor(logging.INFO):
            return
        try:
            client, method, path, version, status = args
            parts = self.templates.get(status) or self._template(status)
            line = f"{parts[0]}{client}{parts[1]}{method}{parts[2]}{path}{parts[3]}{version}{parts[4]}"
            self.handler.acquire()
            try:
                self.handler.stream.write(line + self.handler.terminator)
                self.handler.flush()
            finally:
                self.handler.release()
        except Exception:
            self.source.info(msg, *args, **kwargs)  # the logger's own path, and its error handling

    def _template(self, status: int) -> tuple[str, ...]:
        record = logging.LogRecord(self.name, logging.INFO, "", 0, ACCESS_MESSAGE, (_FIELD,) * 4 + (status,), None)
        parts = tuple(self.formatter.format(record).split(_FIELD))
        if len(parts) != 5:
            raise ValueError("the access format does not show each field once")
        self.templates[status] = parts
        return parts


def access_logger(logger: logging.Logger) -> logging.Logger:
    """``logger`` (uvicorn's access logger), or its :class:`AccessLineWriter` when it is configured as
    plughost configures it; the logger itself when it logs nothing at INFO or is configured otherwise."""
    if not logger.isEnabledFor(logging.INFO) or logger.filters or logger.propagate or len(logger.handlers) != 1:
        return logger
    handler = logger.handlers[0]
    formatter = handler.formatter
    if (
        type(handler) is not logging.StreamHandler
        or handler.filters
        or handler.level > logging.INFO
        or type(formatter) is not AccessFormatter
        or formatter._fmt != ACCESS_FORMAT
    ):
        return logger
    return _writer(logger, handler, formatter)


@functools.cache
def _writer(logger: logging.Logger, handler: logging.StreamHandler[Any], formatter: AccessFormatter) -> logging.Logger:
    """One writer per configuration, shared by every connection."""
    return AccessLineWriter(logger, handler, formatter)
