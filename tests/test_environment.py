"""Every ``PLUGHOST_*`` variable belongs to someone: a core field, an installed plugin's settings,
or the test kit. Anything else stops start-up naming the closest match, so a typo never passes."""

from __future__ import annotations

import json
import re

import pytest
from pydantic import BaseModel

from core import StartupError, hookimpl
from core.settings import READ_ELSEWHERE, core_variables
from tests.readme import README


class MetricsSettings(BaseModel):
    namespace: str = "plughost"


class Metrics:
    PLUGHOST_NAME = "metrics"

    @hookimpl
    def plughost_settings(self, host):
        return MetricsSettings


def test_a_misspelled_core_variable_names_the_right_one(make_app, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUGHOST_PORTT", "5001")
    with pytest.raises(StartupError) as raised:
        make_app(["timing"])
    assert str(raised.value).startswith("unknown setting PLUGHOST_PORTT (did you mean PLUGHOST_PORT?)")
    assert "Fix: correct or unset it." in str(raised.value)


def test_a_misspelled_plugin_prefix_names_the_plugin_setting(make_app, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUGHOST_METRIC_NAMESPACE", "shop")
    with pytest.raises(StartupError, match=r"PLUGHOST_METRIC_NAMESPACE \(did you mean PLUGHOST_METRICS_NAMESPACE\?\)"):
        make_app([Metrics()])
    # with the plugin installed but disabled, its settings are unknown, and its prefix is the hint
    with pytest.raises(
        StartupError,
        match=r"PLUGHOST_SECURTY_TOKEN \(did you mean PLUGHOST_SECURITY_TOKEN, for plugin 'security'\?\)",
    ):
        monkeypatch.setenv("PLUGHOST_SECURTY_TOKEN", "x" * 20)
        monkeypatch.delenv("PLUGHOST_METRIC_NAMESPACE")
        make_app(["timing"])


def test_a_plugin_without_settings_accepts_no_variable(make_app, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLUGHOST_TIMING_FOO", "1")
    with pytest.raises(StartupError) as raised:
        make_app(["timing"])
    message = str(raised.value)
    assert "plugin 'timing'" in message and "declares no settings, so PLUGHOST_TIMING_FOO would be ignored" in message
    assert "Fix: unset it, or disable it with PLUGHOST_DISABLE_PLUGINS=timing" in message


def test_variables_of_disabled_plugins_and_of_the_test_kit_are_accepted(
    make_app, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLUGHOST_TEST_POSTGRESQL", "postgresql://postgres@127.0.0.1:5432/postgres")
    monkeypatch.setenv("PLUGHOST_GATEWAY_KEK", "anything")  # gateway is installed, disabled here
    monkeypatch.setenv("PLUGHOST_TIMING_FOO", "1")  # timing is installed, disabled here
    monkeypatch.setenv("PLUGHOST_DATA_DIR", "ignored-by-make-app")
    assert make_app(["workspace"]).assembly.host.is_enabled("workspace")


def test_every_variable_the_readme_documents_is_read(make_app) -> None:
    host = make_app().assembly.host
    read = {
        *core_variables(),
        *READ_ELSEWHERE,
        *(
            f"PLUGHOST_{plugin.upper()}_{field.upper()}"
            for plugin in host.plugins.infos
            if host.plugin_settings(plugin) is not None
            for field in type(host.plugin_settings(plugin)).model_fields
        ),
    }
    not_variables = {
        "PLUGHOST_REQUIRES",  # module attributes
        "PLUGHOST_NAME",
        "PLUGHOST_HELLO_GREETING",  # the README's example plugin, not installed here
        "PLUGHOST_PORTT",  # the typos the README shows being caught, and the correction it suggests
        "PLUGHOST_METRIC_NAMESPACE",
        "PLUGHOST_METRICS_NAMESPACE",
    }
    documented = set(re.findall(r"PLUGHOST_[A-Z0-9_]*[A-Z0-9](?![A-Z0-9_])", README.read_text())) - not_variables
    assert documented and documented <= read, sorted(documented - read)
    host.check_environment(dict.fromkeys(documented, "x"))


def test_plugins_list_reports_an_unknown_variable_and_keeps_working(tmp_path) -> None:
    from tests.cli import core_cli, core_process

    env = {"PLUGHOST_PORTT": "5001", "PLUGHOST_DATA_DIR": str(tmp_path), "PLUGHOST_PLUGINS": "timing"}
    result = core_cli("plugins", "list", "--json", env=env)
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert "unknown setting PLUGHOST_PORTT (did you mean PLUGHOST_PORT?)" in listed["assembly_error"]
    assert {row["name"]: row["status"] for row in listed["plugins"]}["timing"] == "enabled"
    served = core_process("serve", "--port", "1", env=env)
    assert served.returncode == 1 and "unknown setting PLUGHOST_PORTT" in served.stderr
