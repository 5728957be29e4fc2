"""Contributions that two plugins claim: hint cycles, duplicate names, console URLs, blueprints, navigation.

Each stops start-up with one message naming every plugin involved and a fix, and ``plugins list``
keeps working, showing those plugins as failed with the cause.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fastapi import APIRouter
from flask import Blueprint

from core import ConsolePage, MiddlewareContribution, RouterContribution, StartupError, hookimpl
from tests.cli import core_cli, core_process
from tests.distributions import write_distribution


def contributing(name: str, hook: str, *contributions: object) -> object:
    """A plugin named ``name`` whose ``hook`` returns ``contributions``."""

    def implementation(host):
        return list(contributions)

    implementation.__name__ = hook
    return type(name, (), {"PLUGHOST_NAME": name, hook: staticmethod(hookimpl(implementation))})()


def passthrough(app, settings):
    return app


def test_a_hint_cycle_names_both_plugins_and_the_fix(make_app) -> None:
    first = contributing("metrics", "plughost_middlewares", MiddlewareContribution("a", passthrough, before=("b",)))
    second = contributing("audit", "plughost_middlewares", MiddlewareContribution("b", passthrough, before=("a",)))
    with pytest.raises(StartupError) as raised:
        make_app([first, second])
    message = str(raised.value)
    assert message.startswith("plugins 'audit' and 'metrics': middleware order has a cycle: a -> b -> a")
    assert "'a' of plugin 'metrics'" in message and "'b' of plugin 'audit'" in message
    assert "Fix: remove or reverse one of these hints, or disable one of the plugins with" in message
    assert "PLUGHOST_DISABLE_PLUGINS=audit or PLUGHOST_DISABLE_PLUGINS=metrics" in message


def test_a_duplicate_contribution_name_names_both_plugins(make_app) -> None:
    first = contributing("metrics", "plughost_routers", RouterContribution("stats", APIRouter()))
    second = contributing("audit", "plughost_routers", RouterContribution("stats", APIRouter()))
    with pytest.raises(StartupError) as raised:
        make_app([first, second])
    message = str(raised.value)
    assert "plugins 'audit' and 'metrics': two routers are named 'stats'" in message
    assert "Fix: rename one of the routers, or disable one of the plugins" in message


def page(name: str, blueprint: Blueprint, title: str | None = None, path: str | None = None) -> object:
    return contributing(name, "plughost_console_pages", ConsolePage(name, blueprint, title, path))


def test_a_console_url_that_otel_serves_stops_start_up_naming_both(make_app) -> None:
    pages = Blueprint("mytraces", __name__)
    pages.add_url_rule("/traces", "list", lambda: "mine")
    with pytest.raises(StartupError) as raised:
        make_app(["otel", page("mytraces", pages, "My traces", "/my-traces")])
    message = str(raised.value)
    assert "plugins 'mytraces' and 'otel': the console URL GET /traces is claimed by both" in message
    assert "page 'otel' of plugin 'otel'" in message and "page 'mytraces' of plugin 'mytraces'" in message
    assert "Fix: change the blueprint's URL rule" in message


def test_a_url_rule_that_differs_only_by_variable_name_clashes(make_app) -> None:
    pages = Blueprint("mytraces", __name__)
    pages.add_url_rule("/traces/<tid>", "one", lambda tid: tid)
    with pytest.raises(
        StartupError,
        match=r"GET /traces/<tid> is claimed by both page 'mytraces'.* and page 'otel'.* \(as /traces/<trace_id>\)",
    ):
        make_app(["otel", page("mytraces", pages)])


def test_a_blueprint_named_like_another_stops_start_up_naming_both(make_app) -> None:
    with pytest.raises(StartupError) as raised:
        make_app(["otel", page("mytraces", Blueprint("otel", __name__))])
    message = str(raised.value)
    assert (
        "plugins 'mytraces' and 'otel': console pages 'mytraces' and 'otel' both register a Flask blueprint" in message
    )
    assert "give one of the blueprints another name" in message


def test_static_url_paths_claimed_twice_clash(make_app, tmp_path: Path) -> None:
    (tmp_path / "static").mkdir()
    same_as_otel = Blueprint("mine", __name__, static_folder=str(tmp_path / "static"), static_url_path="/traces/static")
    with pytest.raises(
        StartupError, match=r"GET /traces/static/<path:filename> is claimed by both page 'mine'.* and page 'otel'"
    ):
        make_app(["otel", page("mine", same_as_otel)])
    # a static folder without its own URL path lands on the console's /static and would never be served
    shadowed = Blueprint("mine", __name__, static_folder=str(tmp_path / "static"))
    with pytest.raises(StartupError, match=r"plugin 'mine': .*/static/<path:filename> is claimed by both the console"):
        make_app([page("mine", shadowed)])


def test_two_pages_in_the_navigation_at_one_path_clash(make_app) -> None:
    with pytest.raises(StartupError, match="console pages 'mytraces' and 'otel' both put /traces in the navigation"):
        make_app(["otel", page("mytraces", Blueprint("mytraces", __name__), "Traces", "/traces")])


CLASHING = """
from flask import Blueprint
from core import ConsolePage, MiddlewareContribution, hookimpl

pages = Blueprint("otel", __name__)

@hookimpl
def plughost_console_pages(host):
    return ConsolePage("copycat", pages, "Copy", "/copy")
"""

ROUTING = """
from fastapi import APIRouter
from core import RouterContribution, hookimpl

router = APIRouter()
router.add_api_route("/api/compass", lambda: "{name}", methods=["GET"])

@hookimpl
def plughost_routers(host):
    return RouterContribution("{name}", router)
"""

CYCLIC = """
from core import MiddlewareContribution, hookimpl

@hookimpl
def plughost_middlewares(host):
    return MiddlewareContribution("{name}", lambda app, settings: app, before=["{other}"])
"""


def test_plugins_list_shows_clashing_plugins_as_failed_and_keeps_working(tmp_path: Path) -> None:
    site = tmp_path / "site"
    write_distribution(site, "plughost-copycat", "1.0.0", {"copycat": "copycat_plugin"}, {"copycat_plugin": CLASHING})
    for name, other in (("first", "second"), ("second", "first")):
        module = CYCLIC.format(name=name, other=other)
        write_distribution(site, f"plughost-{name}", "1.0.0", {name: f"{name}_plugin"}, {f"{name}_plugin": module})
    for name in ("east", "west"):
        module = ROUTING.format(name=name)
        write_distribution(site, f"plughost-{name}", "1.0.0", {name: f"{name}_plugin"}, {f"{name}_plugin": module})
    env = {
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        "PLUGHOST_DATA_DIR": str(tmp_path / "data"),
        "PLUGHOST_PLUGINS": "copycat,first,second,east,west,otel,timing",
    }
    result = core_cli("plugins", "list", "--json", env=env)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)["plugins"]}
    assert {name: row["status"] for name, row in rows.items() if row["status"] != "disabled"} == {
        "copycat": "error",
        "first": "error",
        "second": "error",
        "east": "error",
        "west": "error",
        "otel": "error",
        "timing": "enabled",
    }
    assert "both register a Flask blueprint named 'otel'" in rows["copycat"]["error"]
    assert "both register a Flask blueprint named 'otel'" in rows["otel"]["error"]
    assert "middleware order has a cycle: first -> second -> first" in rows["first"]["error"]
    assert "remove or reverse one of these hints" in rows["second"]["error"]
    assert "route conflict: GET /api/compass is claimed by both 'east' and 'west'" in rows["west"]["error"]
    assert "change one of the paths" in rows["east"]["error"]
    assert rows["timing"]["contributions"] == [{"kind": "middleware", "name": "timing", "position": 1}]

    served = core_process("serve", "--port", "1", env=env)
    assert served.returncode == 1 and "Traceback" not in served.stderr
    assert "plugins 'east' and 'west': route conflict: GET /api/compass" in served.stderr  # the first clash found
