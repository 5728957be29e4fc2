"""The workspace middleware through a real server: header rules, visibility everywhere, isolation."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi import APIRouter
from flask import Flask

from core import RouterContribution, hookimpl
from core.cli import build_cli
from core.context import current_workspace, use_workspace
from core.testing import assert_plugin_contract, serve_in_thread


class Notes:
    """A tiny store scoped by ``core.context.current_workspace()``, as real stores are."""

    PLUGHOST_NAME = "notes"

    def __init__(self) -> None:
        self.notes: dict[str, list[str]] = defaultdict(list)
        self.seen_by_background: list[str] = []

    @hookimpl
    def plughost_routers(self, host: Any) -> RouterContribution:
        router = APIRouter()

        @router.post("/api/notes")
        async def add(note: dict[str, str]) -> dict[str, str]:
            self.notes[current_workspace()].append(note["text"])

            async def later() -> None:
                await asyncio.sleep(0.01)
                self.seen_by_background.append(current_workspace())

            asyncio.get_running_loop().create_task(later())
            return {"workspace": current_workspace()}

        @router.get("/api/notes")
        async def list_notes() -> list[str]:
            return self.notes[current_workspace()]

        return RouterContribution("notes", router)

    @hookimpl
    def plughost_wsgi_app(self, host: Any) -> Flask:
        legacy = Flask("legacy")

        @legacy.get("/legacy/whoami")
        def whoami() -> dict[str, str]:
            return {"workspace": current_workspace()}

        return legacy


@pytest.fixture
def notes(register_plugin: Any) -> Notes:
    return register_plugin(Notes())


@pytest.fixture
def base(make_app: Any, notes: Notes) -> Iterator[str]:
    with serve_in_thread(make_app(["workspace"])) as url:
        yield url


def in_workspace(name: str) -> dict[bytes, bytes]:
    return {b"X-Plughost-Workspace": name.encode()}


def test_absent_header_means_the_default_workspace(base: str) -> None:
    response = httpx.get(f"{base}/legacy/whoami")
    assert response.json() == {"workspace": "default"}
    assert response.headers["x-plughost-workspace"] == "default"


@pytest.mark.parametrize("name", ["Team", "a", "x" * 64, "-team", "team-", "team_a", "tëam", ""])
def test_invalid_names_get_400_naming_the_header(base: str, name: str) -> None:
    response = httpx.get(f"{base}/api/notes", headers=in_workspace(name))
    assert response.status_code == 400
    assert "X-Plughost-Workspace" in response.json()["detail"]


@pytest.mark.parametrize("name", ["ab", "team-a", "x" * 63, "0day"])
def test_valid_names(base: str, name: str) -> None:
    assert httpx.get(f"{base}/api/notes", headers=in_workspace(name)).status_code == 200


def test_workspace_reaches_routers_flask_and_background_tasks(base: str, notes: Notes) -> None:
    written = httpx.post(f"{base}/api/notes", json={"text": "hi"}, headers=in_workspace("team-a"))
    assert written.json() == {"workspace": "team-a"}
    assert httpx.get(f"{base}/legacy/whoami", headers=in_workspace("team-b")).json() == {"workspace": "team-b"}
    for _ in range(100):
        if notes.seen_by_background:
            break
        asyncio.run(asyncio.sleep(0.01))
    assert notes.seen_by_background == ["team-a"]


def test_data_is_isolated_between_workspaces_and_the_context_is_cleared(base: str) -> None:
    httpx.post(f"{base}/api/notes", json={"text": "a's secret"}, headers=in_workspace("team-a"))
    httpx.post(f"{base}/api/notes", json={"text": "b's note"}, headers=in_workspace("team-b"))
    assert httpx.get(f"{base}/api/notes", headers=in_workspace("team-a")).json() == ["a's secret"]
    assert httpx.get(f"{base}/api/notes", headers=in_workspace("team-b")).json() == ["b's note"]
    assert httpx.get(f"{base}/api/notes").json() == []  # nothing leaks into the next request's default


class Holdings:
    """Data in team-a and team-b, as a plugin's ``plughost_workspaces`` reports it."""

    PLUGHOST_NAME = "holdings"

    @hookimpl
    def plughost_workspaces(self, host: Any) -> Awaitable[list[str]]:
        async def held() -> list[str]:
            return ["team-a", "team-b"]

        return held()


def test_with_accounts_a_caller_lists_only_the_workspaces_it_has_a_role_in(
    make_app: Any, register_plugin: Any, database_url: str, tmp_path: Path
) -> None:
    register_plugin(Holdings())
    env = {"PLUGHOST_DATABASE_URL": database_url, "PLUGHOST_DATA_DIR": str(tmp_path), "PLUGHOST_SECURITY_AUTH": "users"}

    def key(*args: str) -> dict[str, str]:
        made = CliRunner().invoke(build_cli(), ["keys", "add", *args], env=env)
        assert made.exit_code == 0, made.output
        return {"Authorization": f"Bearer {made.output.strip()}"}

    team_a, admin = key("team-a-reader", "--role", "viewer", "--workspace", "team-a"), key("root", "--role", "admin")
    two = key("two-teams", "--role", "viewer", "--workspace", "team-c")
    settings = {"database_url": database_url, "data_dir": tmp_path, "security": {"auth": "users"}}
    with serve_in_thread(make_app(["security", "workspace"], settings)) as url:
        assert httpx.get(f"{url}/api/workspaces", headers=team_a).json()["workspaces"] == ["team-a"]
        assert httpx.get(f"{url}/api/workspaces", headers=two).json()["workspaces"] == ["team-c"]  # granted, no data
        assert httpx.get(f"{url}/api/workspaces", headers=admin).json()["workspaces"] == ["default", "team-a", "team-b"]
        assert httpx.get(f"{url}/api/workspaces").status_code == 401


def test_use_workspace_validates_and_restores() -> None:
    assert current_workspace() == "default"
    with use_workspace("batch-jobs"):
        assert current_workspace() == "batch-jobs"
    assert current_workspace() == "default"
    with pytest.raises(ValueError, match="invalid workspace name 'Nope'"), use_workspace("Nope"):
        pass


def test_keeps_the_plugin_contract() -> None:
    import plugins.workspace

    assert_plugin_contract(plugins.workspace)
