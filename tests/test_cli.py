"""``python -m core``: plugins list/order, routes, serve failures, plugin commands, TCP_NODELAY."""

from __future__ import annotations

import http.client
import json
import os
import re
from pathlib import Path
from urllib.parse import urlparse

import pytest

from core.settings import CoreSettings
from tests.cli import core_cli, core_process
from tests.distributions import write_distribution
from tests.servers import running_server

GOOD = '''
from fastapi import APIRouter
from core import RouterContribution, hookimpl
import click

@hookimpl
def plughost_routers(host):
    router = APIRouter()
    router.add_api_route("/api/good", lambda: {"good": True}, methods=["GET"])
    return RouterContribution("good", router)

@click.command("greet")
def greet():
    """Say hello from a plugin."""
    click.echo("hello from the good plugin")

@hookimpl
def plughost_commands(cli):
    return greet
'''

PAGES = """
from flask import Blueprint
from core import ConsolePage, hookimpl

@hookimpl
def plughost_console_pages(host):
    return [
        ConsolePage("reports", Blueprint("reports", __name__), "Reports", "/reports", before=("otel",)),
        ConsolePage("alerts", Blueprint("alerts", __name__), "Alerts", "/alerts", after=("jobs",)),
    ]
"""

BROKEN = "raise ImportError('libfoo.so.1: cannot open shared object file')\n"


@pytest.fixture
def site(tmp_path: Path) -> dict[str, str]:
    """An environment whose PYTHONPATH holds a good plugin and a broken one."""
    path = tmp_path / "site"
    write_distribution(path, "plughost-good", "2.0.0", {"good": "good_plugin"}, {"good_plugin": GOOD})
    write_distribution(path, "plughost-broken", "0.3.1", {"broken": "broken_plugin"}, {"broken_plugin": BROKEN})
    write_distribution(path, "plughost-pages", "1.0.0", {"pages": "pages_plugin"}, {"pages_plugin": PAGES})
    return {
        "PYTHONPATH": os.pathsep.join([str(path), os.environ.get("PYTHONPATH", "")]),
        "PLUGHOST_DATA_DIR": str(tmp_path / "data"),
    }


def test_plugins_list_keeps_working_when_a_plugin_is_broken(site: dict[str, str]) -> None:
    result = core_cli("plugins", "list", "--json", env={**site, "PLUGHOST_PLUGINS": "good,broken"})
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}
    assert plugins["good"]["status"] == "enabled"
    assert plugins["good"]["contributions"] == [{"kind": "router", "name": "good", "position": 1}]
    broken = plugins["broken"]
    assert (broken["status"], broken["distribution"], broken["version"]) == ("error", "plughost-broken", "0.3.1")
    assert "libfoo.so.1" in broken["error"] and "PLUGHOST_DISABLE_PLUGINS=broken" in broken["error"]

    text = core_cli("plugins", "list", env={**site, "PLUGHOST_PLUGINS": "good,broken"}).stdout
    assert "broken           error     plughost-broken 0.3.1" in text
    assert "router good (position 1)" in text


def test_plugins_list_shows_console_pages_in_navigation_order(site: dict[str, str]) -> None:
    env = {**site, "PLUGHOST_PLUGINS": "pages,otel,jobs"}
    result = core_cli("plugins", "list", "--json", env=env)
    assert result.returncode == 0, result.stderr
    pages = {
        (row["name"], contribution["position"]): (contribution["name"], contribution["title"], contribution["path"])
        for row in json.loads(result.stdout)["plugins"]
        for contribution in row["contributions"]
        if contribution["kind"] == "console page"
    }
    assert [pages[key] + (key[0],) for key in sorted(pages, key=lambda key: key[1])] == [
        ("reports", "Reports", "/reports", "pages"),  # before otel's page, by its hint
        ("otel", "Traces", "/traces", "otel"),
        ("otel-sessions", "Sessions", "/sessions", "otel"),  # beside the traces, by its hints
        ("jobs", "Jobs", "/jobs", "jobs"),
        ("alerts", "Alerts", "/alerts", "pages"),  # after jobs' page, by its hint
    ]

    text = core_cli("plugins", "list", env=env).stdout
    assert (
        "    console page reports: Reports at /reports (position 1)\n"
        "    console page alerts: Alerts at /alerts (position 5)" in text
    )
    assert "console page jobs: Jobs at /jobs (position 4)" in text


def test_serve_with_a_broken_plugin_stops_with_one_clear_message(site: dict[str, str]) -> None:
    result = core_process("serve", "--port", "1", env=site)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (
        "plugin 'broken' (distribution plughost-broken 0.3.1): cannot import broken_plugin: ImportError"
        in result.stderr
    )
    assert "--disable-plugins broken" in result.stderr


def test_serve_disabling_the_broken_plugin_starts_and_serves_the_good_one(site: dict[str, str]) -> None:
    with running_server("--disable-plugins", "broken", env=site) as base:
        connection = http.client.HTTPConnection(urlparse(base).netloc)
        connection.request("GET", "/api/good")
        assert json.loads(connection.getresponse().read()) == {"good": True}


def test_routes_and_unknown_plugin_names(site: dict[str, str]) -> None:
    routes = core_cli("routes", env={**site, "PLUGHOST_PLUGINS": "good"}).stdout.splitlines()
    assert routes[-2].split() == ["GET", "/api/good", "good"]
    assert routes[-1].split() == ["*", "/", "core", "(WSGI", "bridge)"]
    unknown = core_cli("routes", env={**site, "PLUGHOST_PLUGINS": "goood"})
    assert unknown.returncode == 1
    assert re.search(
        r"PLUGHOST_PLUGINS names unknown plugins: goood\. Installed plugins: (\w+, )*broken, (\w+, )*good\b",
        unknown.stderr,
    )


def test_plugins_add_commands(site: dict[str, str]) -> None:
    assert "greet" in core_cli("--help", env=site).stdout
    assert core_cli("greet", env=site).stdout.strip() == "hello from the good plugin"


def test_invalid_core_setting_is_reported_by_variable(site: dict[str, str]) -> None:
    result = core_cli("routes", env={**site, "PLUGHOST_PORT": "http"})
    assert result.returncode == 1
    assert "PLUGHOST_PORT: Input should be a valid integer" in result.stderr


def test_default_bind_is_loopback_only() -> None:
    assert CoreSettings().host == "127.0.0.1"


NODELAY = '''
import os
import socket

from fastapi import APIRouter, Request
from core import RouterContribution, hookimpl


def nodelay(request: Request) -> dict:
    """Whether this worker's socket to the caller has TCP_NODELAY set, read from the socket itself."""
    caller = (request.client.host, request.client.port)
    for fd in os.listdir("/proc/self/fd"):
        try:
            sock = socket.socket(fileno=os.dup(int(fd)))
        except OSError:
            continue  # not a socket
        with sock:
            try:
                if sock.type != socket.SOCK_STREAM or sock.getpeername()[:2] != caller:
                    continue
            except OSError:
                continue
            return {"nodelay": bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))}
    return {"nodelay": None}


@hookimpl
def plughost_routers(host):
    router = APIRouter()
    router.add_api_route("/nodelay", nodelay, methods=["GET"])
    return RouterContribution("nodelay", router)
'''


@pytest.mark.parametrize(
    "args",
    [["--workers", "2", "--loop", "asyncio"], ["--workers", "2"], ["--loop", "asyncio"]],
    ids=["2-workers-asyncio", "2-workers-auto-loop", "1-worker-asyncio"],
)
def test_tcp_nodelay_holds_in_every_worker_mode(args: list[str], tmp_path: Path) -> None:
    """Without TCP_NODELAY every keep-alive response waits for the client's delayed ACK, a kernel timer of at
    least 40 ms (seen as 44 ms with uvicorn --workers 2 on asyncio). uvicorn's own bound socket (``--workers``
    > 1) had ``proto`` 0, on which asyncio does not set the option (uvicorn 0.55's has it set either way; the
    protocol sets it whatever uvicorn binds). The accepted socket is read in the worker that serves the request,
    by a plugin of the test's: a timing would assert this machine's speed. Setting the option to 0 fails it."""
    site = tmp_path / "site"
    write_distribution(site, "plughost-nodelay", "1.0", {"nodelay": "nodelay_plugin"}, {"nodelay_plugin": NODELAY})
    env = {
        "PLUGHOST_PLUGINS": "nodelay",
        "PLUGHOST_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
    }
    with running_server(*args, env=env) as base:
        url = urlparse(base)
        connection = http.client.HTTPConnection(url.netloc)  # one keep-alive connection, two answers
        for _ in range(2):
            connection.request("GET", "/nodelay")
            assert json.loads(connection.getresponse().read()) == {"nodelay": True}
        connection.close()
