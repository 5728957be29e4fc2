"""Console contributions that two plugins claim: blueprint names, URL rules (static files included) and
navigation paths. Flask would let the first URL rule win silently, and refuse a second blueprint of one
name with a traceback that names no plugin; these checks stop start-up naming both plugins instead."""

from __future__ import annotations

import re
from collections.abc import Sequence

from flask import Flask

from .contributions import ConsolePage
from .errors import ClashError

CONSOLE = "the console itself"
"""Who owns the console's own rules (``/``, ``/static/...``, ``/version``, ``/server-info``)."""

IGNORED_METHODS = frozenset({"HEAD", "OPTIONS"})
"""Werkzeug adds these to every rule; a clash is always visible in the other methods too."""

_VARIABLE = re.compile(r"<(?:([^:<>]+):)?[^<>]+>")


def check_blueprint_names(pages: Sequence[ConsolePage]) -> None:
    """Before registration: two pages whose blueprints share a name (Flask would refuse the second)."""
    seen: dict[str, ConsolePage] = {}
    for page in pages:
        first = seen.setdefault(page.blueprint.name, page)
        if first is not page:
            raise ClashError(
                f"console pages {first.name!r} and {page.name!r} both register a Flask blueprint named "
                f"{page.blueprint.name!r}",
                [first.plugin, page.plugin],
                fix="give one of the blueprints another name (the first argument of flask.Blueprint)",
            )


def check_navigation_paths(pages: Sequence[ConsolePage]) -> None:
    """Two pages that put the same path in the navigation bar."""
    seen: dict[str, ConsolePage] = {}
    for page in pages:
        if page.path is None:
            continue
        first = seen.setdefault(page.path, page)
        if first is not page:
            raise ClashError(
                f"console pages {first.name!r} and {page.name!r} both put {page.path} in the navigation",
                [first.plugin, page.plugin],
                fix="give one of the pages another path",
            )


def check_url_rules(app: Flask, pages: Sequence[ConsolePage]) -> None:
    """After registration: one URL rule and method that two pages (or a page and the console) answer.

    Rules compare by shape: ``/traces/<trace_id>`` and ``/traces/<id>`` are the same rule. A
    blueprint's static files are a rule too (``<static_url_path>/<path:filename>``).
    """
    owners = {page.blueprint.name: page for page in pages}
    seen: dict[tuple[str, str], tuple[str, str, str]] = {}
    for rule in app.url_map.iter_rules():
        page = owners.get(rule.endpoint.split(".", 1)[0]) if "." in rule.endpoint else None
        owner = (f"page {page.name!r} of plugin {page.plugin!r}", page.plugin) if page else (CONSOLE, "")
        shape = _VARIABLE.sub(lambda match: f"<{match.group(1) or 'default'}>", rule.rule)
        for method in sorted((rule.methods or set()) - IGNORED_METHODS):
            first = seen.setdefault((shape, method), (*owner, rule.rule))
            if first[:2] != owner:
                spelled = f" (as {rule.rule})" if rule.rule != first[2] else ""
                raise ClashError(
                    f"the console URL {method} {first[2]} is claimed by both {first[0]} and {owner[0]}{spelled}; "
                    "Flask would serve only the first",
                    [plugin for plugin in (first[1], owner[1]) if plugin],
                    fix="change the blueprint's URL rule (or its static_url_path for static files)",
                )
