from pathlib import Path

import httpx

from tests.readme import README, marked_blocks
from tests.servers import running_server


def test_ci_runs_exactly_the_readme_test_command() -> None:
    command = marked_blocks("test-command")[""].strip()
    ci_script = (README.parent / ".ci" / "run").read_text().splitlines()
    assert command in ci_script


def test_readme_install_command_runs_the_server(tmp_path: Path) -> None:
    """The README's install line ends in a serve command; with the package installed (as here), that
    command starts the server with every plugin and ``/health`` answers."""
    install = next(line for line in README.read_text().splitlines() if "pip install -e . && " in line)
    serve = install.rsplit("&&", 1)[1].split()
    assert serve == ["python", "-m", "core", "serve"]  # what running_server starts, plus a free port
    with running_server(env={"PLUGHOST_DATA_DIR": str(tmp_path)}) as base:
        health = httpx.get(f"{base}/health")
    assert health.status_code == 200, health.text


def test_readme_plugin_example_is_complete() -> None:
    files = marked_blocks("file")
    assert set(files) == {"pyproject.toml", "hello_plugin/__init__.py"}
    assert 'hello = "hello_plugin"' in files["pyproject.toml"]
    compile(files["hello_plugin/__init__.py"], "hello_plugin/__init__.py", "exec")
