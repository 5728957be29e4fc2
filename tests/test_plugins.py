"""Loading: selection, import failures, hook validation, version checks and settings."""

from __future__ import annotations

import importlib.metadata
import sys
import types
from pathlib import Path

import pytest
from fastapi import APIRouter
from pydantic import BaseModel

from core import RouterContribution, StartupError, hookimpl
from core.plugins import installed_entry_points, load_plugins
from core.settings import CoreSettings

from .distributions import write_distribution


def entry_point(name: str, value: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name, value, "plughost.plugins")


@pytest.fixture
def fake_modules(monkeypatch: pytest.MonkeyPatch):
    """Put modules in sys.modules so entry points can load them."""

    def add(name: str, **attributes: object) -> types.ModuleType:
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, name, module)
        return module

    return add


@hookimpl
def plughost_routers(host):
    router = APIRouter()
    return RouterContribution("one", router)


def test_allow_and_block_lists_select_installed_plugins(fake_modules) -> None:
    for name in ("alpha", "beta", "gamma"):
        fake_modules(f"fake_{name}", plughost_routers=plughost_routers)
    eps = [entry_point(n, f"fake_{n}") for n in ("gamma", "alpha", "beta")]

    every = load_plugins(CoreSettings(), entry_points=eps)
    assert [i.name for i in every.enabled] == ["alpha", "beta", "gamma"]

    allowed = load_plugins(CoreSettings(plugins=("beta", "gamma"), disable_plugins=("gamma",)), entry_points=eps)
    assert {n: i.status for n, i in allowed.infos.items()} == {
        "alpha": "disabled",
        "beta": "enabled",
        "gamma": "disabled",
    }


def test_unknown_plugin_names_are_an_error_listing_the_known_ones(fake_modules) -> None:
    fake_modules("fake_alpha", plughost_routers=plughost_routers)
    eps = [entry_point("alpha", "fake_alpha")]
    with pytest.raises(
        StartupError, match="PLUGHOST_DISABLE_PLUGINS names unknown plugins: alhpa. Installed plugins: alpha"
    ):
        load_plugins(CoreSettings(disable_plugins=("alhpa",)), entry_points=eps)
    with pytest.raises(StartupError, match="PLUGHOST_PLUGINS names unknown plugins: nope"):
        load_plugins(CoreSettings(plugins=("nope",)), entry_points=eps)


def test_broken_import_names_plugin_cause_and_how_to_disable(fake_modules) -> None:
    eps = [entry_point("broken", "no_such_module_anywhere")]
    with pytest.raises(StartupError) as raised:
        load_plugins(CoreSettings(), entry_points=eps)
    message = str(raised.value)
    assert "plugin 'broken'" in message
    assert "cannot import no_such_module_anywhere: ModuleNotFoundError" in message
    assert "PLUGHOST_DISABLE_PLUGINS=broken" in message and "--disable-plugins broken" in message

    # a disabled plugin is never imported, so disabling is a way out
    quiet = load_plugins(CoreSettings(disable_plugins=("broken",)), entry_points=eps)
    assert quiet.infos["broken"].status == "disabled"


def test_non_strict_loading_records_the_failure_and_goes_on(fake_modules) -> None:
    fake_modules("fake_alpha", plughost_routers=plughost_routers)
    eps = [entry_point("alpha", "fake_alpha"), entry_point("broken", "no_such_module_anywhere")]
    plugins = load_plugins(CoreSettings(), entry_points=eps, strict=False)
    assert plugins.infos["alpha"].status == "enabled"
    assert plugins.infos["broken"].status == "error"
    assert "ModuleNotFoundError" in plugins.infos["broken"].error


def test_misspelled_hook_is_an_error_with_a_suggestion() -> None:
    class Misspelled:
        @hookimpl
        def plughost_router(self, host):
            return None

    with pytest.raises(StartupError, match="implements unknown hook plughost_router; did you mean plughost_routers"):
        load_plugins(CoreSettings(plugins=()), given={"typo": Misspelled()})


def test_hook_without_hookimpl_marker_is_an_error() -> None:
    class Unmarked:
        def plughost_routers(self, host):
            return None

    with pytest.raises(StartupError, match="plughost_routers is not marked with @hookimpl"):
        load_plugins(CoreSettings(plugins=()), given={"unmarked": Unmarked()})


def test_wrong_hook_arguments_are_an_error() -> None:
    class WrongArgs:
        @hookimpl
        def plughost_routers(self, host, app):
            return None

    with pytest.raises(StartupError, match="(?s)plugin .wrongargs.*app"):
        load_plugins(CoreSettings(plugins=()), given={"wrongargs": WrongArgs()})


@pytest.mark.parametrize("option", ["tryfirst", "trylast", "wrapper"])
def test_priority_options_are_rejected_with_a_pointer_to_hints(option: str) -> None:
    class Eager:
        @hookimpl(**{option: True})  # type: ignore[call-overload]  # the option under test, by name
        def plughost_middlewares(self, host):
            yield

    with pytest.raises(StartupError, match=f"(?s)plughost_middlewares uses {option}.*before=/after= hints"):
        load_plugins(CoreSettings(plugins=()), given={"eager": Eager()})


def test_version_mismatch_names_both_versions(fake_modules) -> None:
    fake_modules("fake_future", plughost_routers=plughost_routers, PLUGHOST_REQUIRES=">=99")
    with pytest.raises(StartupError, match=r"supports plughost >=99, but this is plughost \d"):
        load_plugins(CoreSettings(), entry_points=[entry_point("future", "fake_future")])
    fake_modules("fake_current", plughost_routers=plughost_routers, PLUGHOST_REQUIRES=">=0.0")
    assert load_plugins(CoreSettings(), entry_points=[entry_point("current", "fake_current")]).enabled


def test_plugin_name_that_would_capture_a_core_variable_is_refused(fake_modules) -> None:
    fake_modules("fake_max", plughost_routers=plughost_routers)
    with pytest.raises(StartupError, match="would capture the core's PLUGHOST_MAX_BODY_BYTES"):
        load_plugins(CoreSettings(), entry_points=[entry_point("max", "fake_max")])


def test_two_distributions_offering_one_name_is_an_error(fake_modules) -> None:
    fake_modules("fake_alpha", plughost_routers=plughost_routers)
    with pytest.raises(StartupError, match="two installed distributions offer the plugin 'alpha'"):
        load_plugins(
            CoreSettings(), entry_points=[entry_point("alpha", "fake_alpha"), entry_point("alpha", "fake_alpha")]
        )


class Settings(BaseModel):
    limit: int = 10
    origins: list[str] = []


class WithSettings:
    PLUGHOST_NAME = "my-plugin"

    @hookimpl
    def plughost_settings(self, host):
        return Settings


def test_plugin_settings_come_from_prefixed_environment(make_app, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUGHOST_MY_PLUGIN_LIMIT", "25")
    monkeypatch.setenv("PLUGHOST_MY_PLUGIN_ORIGINS", "https://a.example, https://b.example")
    app = make_app([WithSettings()])
    assert app.assembly.host.plugin_settings("my-plugin") == Settings(
        limit=25, origins=["https://a.example", "https://b.example"]
    )

    monkeypatch.setenv("PLUGHOST_MY_PLUGIN_ORIGINS", '["https://c.example"]')
    app = make_app([WithSettings()], {"my-plugin": {"limit": 3}})
    assert app.assembly.host.plugin_settings("my-plugin") == Settings(limit=3, origins=["https://c.example"])


def test_invalid_or_unknown_plugin_setting_stops_startup_naming_the_variable(
    make_app, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLUGHOST_MY_PLUGIN_LIMIT", "lots")
    with pytest.raises(
        StartupError, match="plugin 'my-plugin'.*PLUGHOST_MY_PLUGIN_LIMIT: Input should be a valid integer"
    ):
        make_app([WithSettings()])
    monkeypatch.setenv("PLUGHOST_MY_PLUGIN_LIMIT", "5")
    monkeypatch.setenv("PLUGHOST_MY_PLUGIN_LIMMIT", "5")
    with pytest.raises(
        StartupError, match="unknown setting PLUGHOST_MY_PLUGIN_LIMMIT; known settings: PLUGHOST_MY_PLUGIN_LIMIT"
    ):
        make_app([WithSettings()])


def test_a_hook_that_raises_stops_startup_naming_the_plugin(make_app) -> None:
    class Raising:
        PLUGHOST_NAME = "raiser"

        @hookimpl
        def plughost_routers(self, host):
            raise RuntimeError("database unreachable")

    with pytest.raises(
        StartupError, match="plugin 'raiser'.*plughost_routers raised RuntimeError: database unreachable"
    ) as raised:
        make_app([Raising()])
    # the variable keeps its case in the generic fix line
    assert "Fix: Disable it with PLUGHOST_DISABLE_PLUGINS=raiser or `serve --disable-plugins raiser`." in str(
        raised.value
    )


class JobTypesWithoutOptional:
    @hookimpl
    def plughost_job_types(self, host):
        return None


def test_a_plugin_offered_hook_without_its_provider_suggests_optionalhook() -> None:
    with pytest.raises(StartupError) as raised:
        load_plugins(CoreSettings(plugins=()), given={"webhooks": JobTypesWithoutOptional()})
    message = str(raised.value)
    assert "implements unknown hook plughost_job_types; no enabled plugin offers it" in message
    assert "mark the implementation `@hookimpl(optionalhook=True)`" in message
    assert "did you mean" not in message
    # with its provider enabled, the same implementation is answered
    loaded = load_plugins(CoreSettings(plugins=("jobs",)), given={"webhooks": JobTypesWithoutOptional()})
    assert loaded.infos["webhooks"].status == "enabled"


def test_a_distribution_installed_into_a_folder_already_read_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entry points are read once per state of ``sys.path``'s folders, not once a process: installing into
    a folder changes it."""
    monkeypatch.syspath_prepend(str(tmp_path))
    write_distribution(tmp_path, "plughost-first", "1.0", {"first": "first_plugin"}, {"first_plugin": ""})
    assert "first" in {ep.name for ep in installed_entry_points()}
    assert "second" not in {ep.name for ep in installed_entry_points()}
    write_distribution(tmp_path, "plughost-second", "1.0", {"second": "second_plugin"}, {"second_plugin": ""})
    assert {"first", "second"} <= {ep.name for ep in installed_entry_points()}
