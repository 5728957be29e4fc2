"""The access log's fast path writes what uvicorn's logger would have written, or leaves the logger be."""

from __future__ import annotations

import io
import itertools
import logging

import pytest
from uvicorn.logging import AccessFormatter

from core.access_log import ACCESS_FORMAT, ACCESS_MESSAGE, AccessLineWriter, access_logger

_names = itertools.count()


def configured(use_colors: bool, level: int = logging.INFO) -> tuple[logging.Logger, io.StringIO]:
    """A logger set up as ``core.server.log_config`` sets up ``uvicorn.access``, writing to a string."""
    logger = logging.getLogger(f"test_access_log.{next(_names)}")
    logger.setLevel(level)
    logger.propagate = False
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(AccessFormatter(fmt=ACCESS_FORMAT, use_colors=use_colors))
    logger.addHandler(handler)
    return logger, stream


@pytest.mark.parametrize("use_colors", [False, True])
def test_the_lines_are_the_loggers_own(use_colors: bool) -> None:
    logger, through_logging = configured(use_colors)
    fast = access_logger(logger)
    assert isinstance(fast, AccessLineWriter)
    requests = [
        ("127.0.0.1:50000", "GET", "/health", "1.1", 200),
        ("[::1]:4321", "POST", "/v1/traces?x=%25 y", "1.0", 413),
        ("127.0.0.1:50001", "GET", "/nowhere", "1.1", 404),
        ("127.0.0.1:50001", "GET", "/odd", "1.1", 599),
    ]
    for args in requests:
        logger.info(ACCESS_MESSAGE, *args)
    expected = through_logging.getvalue()
    through_logging.seek(0)
    through_logging.truncate()
    for args in requests:
        fast.info(ACCESS_MESSAGE, *args)
    assert through_logging.getvalue() == expected
    assert expected.count("\n") == 4 and "/v1/traces?x=%25 y" in expected


def test_another_configuration_keeps_the_logger() -> None:
    filtered, _ = configured(False)
    filtered.addFilter(lambda record: True)
    other_format, _ = configured(False)
    other_format.handlers[0].setFormatter(AccessFormatter(fmt="%(asctime)s " + ACCESS_FORMAT))
    quiet, _ = configured(False, logging.WARNING)
    for logger in (filtered, other_format, quiet):
        assert access_logger(logger) is logger


def test_a_level_raised_later_is_obeyed() -> None:
    logger, stream = configured(False)
    fast = access_logger(logger)
    logger.setLevel(logging.WARNING)
    fast.info(ACCESS_MESSAGE, "127.0.0.1:1", "GET", "/health", "1.1", 200)
    assert stream.getvalue() == ""
