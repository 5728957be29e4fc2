"""The plugin-author test kit (``core.testing``) without traps: entry-point names, clients that the
security plugin accepts, overrides checked like the environment, nothing written outside a temporary
directory, and contracts checked alongside every installed plugin."""

from __future__ import annotations

import importlib
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter
from flask import Blueprint

from core import ConsolePage, MiddlewareContribution, StartupError, hookimpl
from core import testing as kit
from core.testing import assert_plugin_contract
from tests.distributions import write_distribution

METRICS = """
from fastapi import APIRouter
from pydantic import BaseModel
from core import RouterContribution, hookimpl


class Settings(BaseModel):
    namespace: str = "plughost"


@hookimpl
def plughost_settings(host):
    return Settings


@hookimpl
def plughost_routers(host):
    settings = host.plugin_settings("metrics")  # the entry point's name, as the server registers it
    router = APIRouter()

    @router.get("/api/metrics-namespace")
    async def namespace() -> dict[str, str]:
        return {"namespace": settings.namespace}

    return RouterContribution("metrics", router)
"""


@pytest.fixture
def metrics_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    """``plughost_metrics``, installed as the entry point ``metrics`` of distribution plughost-metrics."""
    site = tmp_path / "site"
    write_distribution(
        site, "plughost-metrics", "1.0.0", {"metrics": "plughost_metrics"}, {"plughost_metrics": METRICS}
    )
    monkeypatch.syspath_prepend(str(site))
    module = importlib.import_module("plughost_metrics")
    yield module
    monkeypatch.delitem(__import__("sys").modules, "plughost_metrics")


def test_a_module_registers_under_its_entry_point_name(metrics_module, make_app) -> None:
    assert kit.plugin_name(metrics_module) == "metrics"
    assert_plugin_contract(metrics_module)
    app = make_app([metrics_module], {"metrics": {"namespace": "shop"}})
    assert app.assembly.host.plugin_settings("metrics").namespace == "shop"


def test_the_client_is_served_by_every_builtin_plugin_on_defaults(client) -> None:
    # the default plughost_app enables every installed plugin, security's Host allow-list included
    assert client.get("/api/otel/traces").status_code == 200
    assert client.get("/api/jobs").status_code == 200


def test_the_live_server_is_served_by_every_builtin_plugin_on_defaults(live_server) -> None:
    assert httpx.get(f"{live_server}/api/otel/traces", timeout=30).status_code == 200


def test_unknown_make_app_settings_are_refused_like_environment_typos(make_app) -> None:
    with pytest.raises(StartupError, match="unknown settings given for plugin 'otel': max_bodybytes"):
        make_app(["otel"], {"otel": {"max_bodybytes": 1}})
    with pytest.raises(StartupError, match=r"settings given for an unknown plugin 'otle' \(did you mean 'otel'\?\)"):
        make_app(["otel"], {"otle": {"max_body_bytes": 1}})
    with pytest.raises(StartupError, match=r"unknown core setting 'max_body_byte' \(did you mean 'max_body_bytes'\?\)"):
        make_app(["otel"], {"max_body_byte": 1})
    with pytest.raises(StartupError, match="plugin 'timing'.*declares no settings, so timing.enabled would be ignored"):
        make_app(["timing"], {"timing": {"enabled": False}})


def module_plugin(name: str, **hooks: Callable[..., object]) -> types.ModuleType:
    module = types.ModuleType(f"test_{name}_plugin")
    setattr(module, "PLUGHOST_NAME", name)  # noqa: B010 - a module has no such attribute until now
    for hook, implementation in hooks.items():
        implementation.__name__ = hook
        setattr(module, hook, hookimpl(implementation))
    return module


def test_nothing_is_written_outside_a_temporary_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    router = APIRouter()
    plugin = module_plugin(
        "quiet", plughost_routers=lambda host: __import__("core").RouterContribution("quiet", router)
    )
    assert_plugin_contract(plugin, alongside=["otel"])  # otel opens its SQLite store at start-up
    with kit.client_for(kit.make_app([plugin, "jobs"])):
        pass
    assert list(tmp_path.iterdir()) == []


def test_alongside_installed_catches_clashes_and_cycles_with_builtin_plugins() -> None:
    pages = Blueprint("mytraces", __name__)
    pages.add_url_rule("/traces", "traces", lambda: "mine")
    copycat = module_plugin("copycat", plughost_console_pages=lambda host: ConsolePage("copycat", pages))
    assert_plugin_contract(copycat)  # alone, nothing to clash with
    with pytest.raises(AssertionError, match="plugins 'copycat' and 'otel': the console URL GET /traces"):
        assert_plugin_contract(copycat, alongside="installed")

    def middlewares(host):
        # inside timing but outside security: impossible, timing is after security
        return MiddlewareContribution("cyclic", lambda app, settings: app, before=("security",), after=("timing",))

    cyclic = module_plugin("cyclic", plughost_middlewares=middlewares)
    assert_plugin_contract(cyclic)
    with pytest.raises(AssertionError, match=r"(?s)middleware order has a cycle.*'cyclic'.*'security'.*Fix: remove"):
        assert_plugin_contract(cyclic, alongside="installed")
