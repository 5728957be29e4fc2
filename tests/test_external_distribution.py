"""A separate distribution (README's example plugin) built, pip-installed, listed, ordered and served."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from tests.cli import core_cli
from tests.readme import marked_blocks
from tests.servers import running_server


@pytest.fixture(scope="module")
def installed_hello(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The README's example distribution, pip-installed into a folder of its own (never the venv, which
    parallel test workers share): the environment that puts it on the path of ``python -m core``."""
    project = tmp_path_factory.mktemp("plughost-hello")
    for relative, code in marked_blocks("file").items():
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).write_text(code)
    site = tmp_path_factory.mktemp("site")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(
        [*pip, "install", "--no-deps", "--no-build-isolation", "--target", str(site), str(project)],
        check=True,
        timeout=300,
    )
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}


def test_installed_plugin_is_listed_with_its_distribution_and_contributions(installed_hello: dict[str, str]) -> None:
    result = core_cli("plugins", "list", "--json", env={**installed_hello, "PLUGHOST_PLUGINS": "hello"})
    assert result.returncode == 0, result.stderr
    hello = next(p for p in json.loads(result.stdout)["plugins"] if p["name"] == "hello")
    assert (hello["distribution"], hello["version"], hello["status"]) == ("plughost-hello", "1.0.0", "enabled")
    assert hello["hooks"] == ["plughost_console_pages", "plughost_middlewares", "plughost_routers", "plughost_settings"]
    assert {"kind": "router", "name": "hello", "position": 1} in hello["contributions"]


def test_routes_end_with_the_bridge_after_the_plugin_router(installed_hello: dict[str, str]) -> None:
    lines = core_cli("routes", env={**installed_hello, "PLUGHOST_PLUGINS": "hello"}).stdout.splitlines()
    owners = [line.split(None, 2) for line in lines]
    assert ["GET", "/api/hello", "hello"] in owners
    assert owners[-1] == ["*", "/", "core (WSGI bridge)"]


def test_order_explain_reports_the_soft_hint_to_an_absent_plugin(installed_hello: dict[str, str]) -> None:
    result = core_cli("plugins", "order", "--explain", env={**installed_hello, "PLUGHOST_PLUGINS": "hello"})
    assert "hello [plugin hello]" in result.stdout
    assert "ignored: hello after=security ('security' is not present)" in result.stdout


def test_served_plugin_answers_its_route_and_leaves_every_other_path_to_the_bridge(
    installed_hello: dict[str, str],
) -> None:
    with running_server(
        env={**installed_hello, "PLUGHOST_PLUGINS": "hello", "PLUGHOST_HELLO_GREETING": "bonjour"}
    ) as base:
        greeting = httpx.get(f"{base}/api/hello")
        assert greeting.json() == {"message": "bonjour"}
        assert greeting.headers["x-hello"] == "bonjour"
        version = httpx.get(f"{base}/version")  # served by the default Flask app through the bridge
        assert version.status_code == 200 and version.headers["x-hello"] == "bonjour"
        console = httpx.get(f"{base}/")
        assert 'href="/hello"' in console.text  # the plugin's page is in the console's navigation
        page = httpx.get(f"{base}/hello")
        assert "<h1>Hello from a plugin</h1>" in page.text and page.headers["content-security-policy"]
        missing = httpx.get(f"{base}/api/hello/extra")
        assert missing.status_code == 404 and "There is no console page at" in missing.text  # the console's 404
        assert httpx.post(f"{base}/api/hello").status_code == 405


def test_disabling_the_plugin_removes_it(installed_hello: dict[str, str]) -> None:
    result = core_cli("routes", env={**installed_hello, "PLUGHOST_DISABLE_PLUGINS": "hello"})
    assert "/api/hello" not in result.stdout
