"""Fake installed distributions: a ``.dist-info`` folder with entry points, and its modules, on a path."""

from __future__ import annotations

from pathlib import Path


def write_distribution(site: Path, name: str, version: str, plugins: dict[str, str], modules: dict[str, str]) -> None:
    """Make ``site`` hold distribution ``name`` offering ``plugins`` (entry name -> module) and ``modules``."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = "\n".join(f"{entry} = {module}" for entry, module in plugins.items())
    (info / "entry_points.txt").write_text(f"[plughost.plugins]\n{lines}\n")
    for module, code in modules.items():
        (site / f"{module}.py").write_text(code)
