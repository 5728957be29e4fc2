"""``python -m core`` for the tests: in this process with Click's runner, or as a real process where the
process is what a test checks (``serve``'s exit status and stderr, a server's sockets)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from click.testing import CliRunner

from core.cli import build_cli, cli


def core_cli(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``python -m core ARGS`` in this process, as ``main()`` does (a new interpreter's imports cost about
    2 s of CPU), with ``env`` set for the call; its ``PYTHONPATH`` entries go on ``sys.path``. What the call
    imported from them and the commands their plugins added are forgotten after it. An unexpected exception
    is raised, not turned into an exit status."""
    paths = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry]
    commands = dict(cli.commands)
    with pytest.MonkeyPatch.context() as monkeypatch:
        for entry in reversed(paths):
            monkeypatch.syspath_prepend(entry)
        try:
            result = CliRunner().invoke(
                build_cli(), list(args), prog_name="python -m core", env=dict(env), catch_exceptions=False
            )
        finally:
            cli.commands.clear()
            cli.commands.update(commands)
            _forget_modules_under(paths)
    return subprocess.CompletedProcess(["python", "-m", "core", *args], result.exit_code, result.stdout, result.stderr)


def _forget_modules_under(paths: list[str]) -> None:
    roots = [Path(entry).resolve() for entry in paths]
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and any(Path(file).resolve().is_relative_to(root) for root in roots):
            del sys.modules[name]


def core_process(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``python -m core ARGS`` as a new process with ``env`` added to this one's environment."""
    return subprocess.run(
        [sys.executable, "-m", "core", *args], capture_output=True, text=True, timeout=60, env={**os.environ, **env}
    )
