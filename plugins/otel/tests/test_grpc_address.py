"""A gRPC address is owned: a second server given the address another serves never binds it (grpc's
``SO_REUSEPORT`` would let it, and split the exports between them); it warns and serves HTTP only."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.testing import free_port, serve_in_thread

from .test_grpc import export_raw, request_with_spans


def test_a_second_server_on_the_same_address_warns_and_every_export_goes_to_the_first(
    make_app: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    address = f"127.0.0.1:{free_port()}"

    def server(name: str) -> Any:
        settings = {
            "data_dir": tmp_path / name,
            "database_url": f"sqlite+aiosqlite:///{tmp_path / f'{name}.db'}",
            "otel": {"grpc_address": address},
        }
        return serve_in_thread(make_app(["otel"], settings))

    with server("first") as first, caplog.at_level(logging.WARNING, logger="plughost.otel"), server("second") as second:
        warnings = [
            r.getMessage() for r in caplog.records if r.name == "plughost.otel" and r.levelno == logging.WARNING
        ]
        assert any("PLUGHOST_OTEL_GRPC_ADDRESS" in m and address in m for m in warnings), warnings
        sent = set()
        for index in range(1, 41):  # a new connection each time: with a shared port the kernel spreads them
            trace_id = index.to_bytes(16, "big")
            export_raw(address, request_with_spans((trace_id, b"\1" * 8, "root")).SerializeToString())
            sent.add(trace_id.hex())
        assert httpx.get(f"{second}/health").status_code == 200  # HTTP still serves
        on_first = {t["trace_id"] for t in httpx.get(f"{first}/api/otel/traces?limit=100").json()["traces"]}
        on_second = httpx.get(f"{second}/api/otel/traces").json()["traces"]
        assert on_first == sent and on_second == []
