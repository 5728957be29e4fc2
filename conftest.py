"""Shared by the core's tests and every plugin's suite (``pytest plugins/<name>`` runs one alone).

The plugin-author kit (``core.testing``) is loaded through its ``pytest11`` entry
point; this file keeps the developer's own ``PLUGHOST_*`` environment out of tests.
"""

from __future__ import annotations

import os

import pytest

from core.settings import ENV_PREFIX


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)


def pytest_report_header() -> str:
    from core.plugins import load_plugins
    from core.settings import CoreSettings

    installed = load_plugins(CoreSettings(plugins=None), strict=False).infos
    return "plughost plugins installed: " + (", ".join(installed) or "none")
