"""The start-up log names where everything is: the console, the API docs, OTLP/HTTP and OTLP/gRPC
(or why gRPC is off). In process: the app's own start-up, no server process per check."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

import pytest

from core.factory import base_url
from core.testing import client_for, free_port


def start_up_lines(make_app: Callable[..., Any], caplog: pytest.LogCaptureFixture, **settings: Any) -> list[str]:
    with caplog.at_level(logging.INFO, logger="plughost"), client_for(make_app(["otel", "workspace"], settings)):
        pass
    return [record.getMessage() for record in caplog.records if record.name == "plughost"]


def test_the_console_and_both_otlp_addresses(make_app: Callable[..., Any], caplog: pytest.LogCaptureFixture) -> None:
    grpc = f"127.0.0.1:{free_port()}"
    lines = start_up_lines(make_app, caplog, port=5999, otel={"grpc_address": grpc})
    assert lines[-4:] == [
        "Console:   http://127.0.0.1:5999/",
        "API docs:  http://127.0.0.1:5999/docs",
        "OTLP/HTTP: http://127.0.0.1:5999/v1/traces",
        f"OTLP/gRPC: {grpc}",
    ]


def test_grpc_turned_off_or_held_by_another_program_says_so(
    make_app: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    assert start_up_lines(make_app, caplog, otel={"grpc_address": ""})[-1] == (
        "OTLP/gRPC: off (PLUGHOST_OTEL_GRPC_ADDRESS is empty)"
    )
    caplog.clear()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        address = f"127.0.0.1:{holder.getsockname()[1]}"
        lines = start_up_lines(make_app, caplog, otel={"grpc_address": address})
    assert lines[-1] == f"OTLP/gRPC: off (could not listen on {address}; see above)"


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", "http://127.0.0.1:80"), ("0.0.0.0", "http://127.0.0.1:80"), ("::1", "http://[::1]:80")],
)
def test_base_url_of_a_bind_address(host: str, expected: str) -> None:
    assert base_url(host, 80) == expected
