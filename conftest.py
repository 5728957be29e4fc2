"""Shared by the core's tests and every plugin's suite (``pytest plugins/<name>`` runs one alone).

The plugin-author kit (``core.testing``) is loaded through its ``pytest11`` entry
point; this file keeps the developer's own ``PLUGHOST_*`` environment out of tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from core.settings import ENV_PREFIX
from core.startup import PLUGINS_VARIABLE as PYDANTIC_PLUGINS_VARIABLE
from core.testing import free_port


@pytest.fixture(scope="module", autouse=True)
def _isolated_module_environment() -> Iterator[None]:
    """The same isolation for what a module shares (apps built by module-scoped fixtures, which are set up
    before any test's own fixtures): no developer ``PLUGHOST_*`` variable, a free OTLP/gRPC port."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        _isolate(monkeypatch)
        yield


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No developer ``PLUGHOST_*`` variable reaches a test, and no test binds the default OTLP/gRPC
    port 4317: each gets a free loopback port, so parallel workers and other servers on the machine
    never share one (a test that sets ``grpc_address`` itself still wins)."""
    _isolate(monkeypatch)


def _isolate(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    monkeypatch.setenv(f"{ENV_PREFIX}OTEL_GRPC_ADDRESS", f"127.0.0.1:{free_port()}")


def pytest_configure(config: pytest.Config) -> None:
    """Waits in tests are generous: an httpx call without a timeout of its own waits up to 60 s for the server,
    not httpx's default 5 s (under CI's load a test server once took longer to send a static file). A passing
    call returns as soon as it is answered. (httpx copies this default into each client it makes.)

    The processes the tests start (jobs' fork servers, instrumented apps, scripts) leave out logfire's pydantic
    plugin, as ``python -m core`` does for itself (:mod:`core.startup`): 0.35 s of CPU each, for a plugin that
    records nothing here. ``tests/test_lazy_imports.py`` starts its servers without this setting."""
    os.environ.setdefault(PYDANTIC_PLUGINS_VARIABLE, "logfire-plugin")
    import httpx._config

    default = httpx._config.DEFAULT_TIMEOUT_CONFIG
    default.connect = default.read = default.write = default.pool = GENEROUS_WAIT_SECONDS


GENEROUS_WAIT_SECONDS = 60.0


def pytest_report_header() -> str:
    from core.plugins import load_plugins
    from core.settings import CoreSettings

    installed = load_plugins(CoreSettings(plugins=None), strict=False).infos
    return "plughost plugins installed: " + (", ".join(installed) or "none")
