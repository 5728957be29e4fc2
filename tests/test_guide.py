"""Every code block of the author's guide, ``docs/plugins.md``, runs here.

Each fenced block follows a marker: ``<!-- file: PATH -->`` (written to a folder that is installed
as the guide's distribution, entry points included), ``<!-- run -->`` (Python executed in order, after
the files are in place) or ``<!-- fragment -->`` (Python that needs something the reader provides:
compiled only). A block without a marker fails the test, so none goes unchecked.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
BLOCK = re.compile(r"(?:<!-- (?P<marker>[^>]+?) -->\n)?```(?P<language>[a-z]*)\n(?P<code>.*?)```", re.S)


def blocks() -> list[tuple[str, str, str]]:
    return [(m["marker"] or "", m["language"], m["code"]) for m in BLOCK.finditer(GUIDE.read_text())]


def install(site: Path, files: dict[str, str]) -> None:
    """Write the guide's files into ``site`` and register its distribution's entry points there."""
    for relative, code in files.items():
        (site / relative).parent.mkdir(parents=True, exist_ok=True)
        (site / relative).write_text(code)
    project = tomllib.loads(files["pyproject.toml"])["project"]
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    entries = project["entry-points"]["plughost.plugins"]
    (info / "entry_points.txt").write_text(
        "[plughost.plugins]\n" + "".join(f"{name} = {value}\n" for name, value in entries.items())
    )


def test_every_block_is_marked() -> None:
    unmarked = [code.splitlines()[0] for marker, language, code in blocks() if not marker and language != "sh"]
    assert not unmarked, f"blocks without a file:, run or fragment marker: {unmarked}"
    assert {marker.split(":")[0] for marker, _, _ in blocks()} <= {"", "file", "run", "fragment"}


def test_the_guide_covers_every_hook() -> None:
    from core.plugins import CORE_HOOKS
    from plugins.assistant import hookspecs as assistant
    from plugins.gateway import hookspecs as gateway
    from plugins.jobs import hookspecs as jobs
    from plugins.otel import hookspecs as otel
    from plugins.security import hookspecs as security

    modules = (assistant, gateway, jobs, otel, security)
    offered = {name for module in modules for name in vars(module) if name.startswith("plughost_")}
    headings = set(re.findall(r"^#{2,4} .*", GUIDE.read_text(), re.M))
    text = "\n".join(headings)
    assert all(hook in text for hook in CORE_HOOKS | offered), sorted(h for h in CORE_HOOKS | offered if h not in text)


def test_every_block_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    files = {marker.split(":", 1)[1].strip(): code for marker, _, code in blocks() if marker.startswith("file:")}
    install(site, files)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))  # job workers are subprocesses: they import the plugin too
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    try:
        for number, (marker, language, code) in enumerate(blocks()):
            if language != "python":
                continue
            compiled = compile(code, f"{GUIDE.name} block {number}", "exec")
            if marker == "run":
                exec(compiled, {"__name__": f"guide_block_{number}"})
    finally:
        for name in [name for name in sys.modules if name.split(".")[0] == "plughost_notes"]:
            monkeypatch.delitem(sys.modules, name)
    assert list(work.iterdir()) == []  # the examples wrote nothing outside their temporary directories
