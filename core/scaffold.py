"""``python -m core plugins new NAME``: write a pip-installable plugin distribution to start from.

The files are templates in ``core/plugin_template`` (``$name``-style placeholders, see
:class:`string.Template`). The result is a distribution ``plughost-<name>`` with the plugin
``<name>`` (entry point), a router, a pure ASGI middleware with an ordering hint, a console page
with its template and script (package data declared), a job type (an optional hook of the jobs
plugin), a settings model, a README and a pytest suite on the test kit that passes as written.
"""

from __future__ import annotations

from pathlib import Path
from string import Template

from .contributions import check_name
from .errors import StartupError
from .settings import core_variable_shadowed_by, env_prefix

TEMPLATES = Path(__file__).with_name("plugin_template")

LAYOUT = {
    "pyproject.toml": "pyproject.toml.tmpl",
    "README.md": "README.md.tmpl",
    "{package}/__init__.py": "__init__.py.tmpl",
    "{package}/settings.py": "settings.py.tmpl",
    "{package}/router.py": "router.py.tmpl",
    "{package}/middleware.py": "middleware.py.tmpl",
    "{package}/ui.py": "ui.py.tmpl",
    "{package}/jobs.py": "jobs.py.tmpl",
    "{package}/templates/{name}/index.html": "index.html.tmpl",
    "{package}/static/{name}/page.js": "page.js.tmpl",
    "tests/test_plugin.py": "test_plugin.py.tmpl",
}
"""Where each generated file goes (relative to the distribution's folder) and the template it comes from."""


def new_plugin(name: str, directory: Path, installed: set[str] | frozenset[str] = frozenset()) -> Path:
    """Write distribution ``plughost-<name>`` into ``directory/plughost-<name>`` and return that folder.

    Raises :class:`StartupError` for a name the server would refuse (or that an installed plugin
    already has) and for a folder that exists already: nothing is overwritten.
    """
    try:
        check_name(name, "plugin")
    except ValueError as error:
        raise StartupError(str(error)) from None
    shadowed = core_variable_shadowed_by(name)
    if shadowed:
        raise StartupError(f"plugin name {name!r}: its settings prefix would capture the core's {shadowed}")
    if name in installed:
        raise StartupError(f"a plugin named {name!r} is installed already; pick another name")
    package = "plughost_" + name.replace("-", "_")
    values = {
        "name": name,
        "package": package,
        "distribution": f"plughost-{name}",
        "title": name.replace("-", " ").replace("_", " ").title(),
        "prefix": env_prefix(name),
    }
    target = directory / values["distribution"]
    if target.exists():
        raise StartupError(f"{target} exists already; remove it or choose another --dir")
    for relative, template in LAYOUT.items():
        path = target / relative.format(**values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Template((TEMPLATES / template).read_text()).substitute(values))
    return target
