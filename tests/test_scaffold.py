"""``python -m core plugins new``: the distribution it writes installs with pip, is listed and served, and
its own test suite (on the test kit) passes as written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import StartupError
from core.scaffold import new_plugin
from tests.cli import core_cli


def test_a_new_plugin_installs_and_its_tests_pass_as_written(tmp_path: Path) -> None:
    made = core_cli("plugins", "new", "web-hooks", "--dir", str(tmp_path), env={})
    assert made.returncode == 0, made.stderr
    project = tmp_path / "plughost-web-hooks"
    assert f"wrote {project}" in made.stdout

    # installed into a folder of its own, never into the shared environment
    target = tmp_path / "target"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "install", "--no-deps"]
    subprocess.run([*pip, "--no-build-isolation", "--target", str(target), str(project)], check=True, timeout=300)
    package = target / "plughost_web_hooks"
    assert (package / "templates/web-hooks/index.html").is_file()  # package data made it into the wheel
    assert (package / "static/web-hooks/page.js").is_file()
    env = {"PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}

    listed = core_cli("plugins", "list", "--json", env={**env, "PLUGHOST_DATA_DIR": str(tmp_path / "data")})
    assert listed.returncode == 0, listed.stderr
    row = next(row for row in json.loads(listed.stdout)["plugins"] if row["name"] == "web-hooks")
    assert (row["status"], row["distribution"], row["version"]) == ("enabled", "plughost-web-hooks", "0.1.0")
    assert {(c["kind"], c["name"]) for c in row["contributions"]} == {
        ("middleware", "web-hooks"),
        ("router", "web-hooks"),
        ("console page", "web-hooks"),
    }
    assert "plughost_job_types" in row["hooks"]

    # run from an empty folder, so the package is imported from where pip put it
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", str(project / "tests"), "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=elsewhere,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "6 passed" in tests.stdout
    assert list(elsewhere.iterdir()) == []  # the kit wrote nothing outside its temporary directories


def test_a_name_the_server_would_refuse_or_an_existing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StartupError, match="must be 1-63 lowercase letters"):
        new_plugin("Web Hooks", tmp_path)
    with pytest.raises(StartupError, match="would capture the core's PLUGHOST_MAX_BODY_BYTES"):
        new_plugin("max", tmp_path)
    with pytest.raises(StartupError, match="a plugin named 'otel' is installed already"):
        new_plugin("otel", tmp_path, {"otel"})
    new_plugin("hooks", tmp_path)
    with pytest.raises(StartupError, match="exists already"):
        new_plugin("hooks", tmp_path)
