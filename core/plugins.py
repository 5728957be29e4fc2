"""Find, select, load and register plugins, and call their hooks one plugin at a time.

Plugins are the ``plughost.plugins`` entry points of installed distributions
(plus, in tests, objects handed in directly). Every failure becomes a
:class:`~core.errors.PluginError` that names the plugin, its distribution and
version, the cause, and how to disable it.
"""

from __future__ import annotations

import difflib
import functools
import importlib.metadata
import logging
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pluggy

from . import hookspecs
from .contributions import check_name
from .errors import PluginError, StartupError
from .settings import CoreSettings, core_variable_shadowed_by
from .version import __version__

logger = logging.getLogger("plughost")

ENTRY_POINT_GROUP = "plughost.plugins"
REQUIRES_ATTRIBUTE = "PLUGHOST_REQUIRES"
"""A plugin module may set ``PLUGHOST_REQUIRES = ">=0.1,<1"``: the plughost versions it supports."""

CORE_HOOKS = frozenset(name for name in vars(hookspecs) if name.startswith("plughost_"))
PRIORITY_OPTIONS = ("tryfirst", "trylast", "wrapper", "hookwrapper")

Status = Literal["enabled", "disabled", "error"]


@dataclass
class PluginInfo:
    """What the core knows of one plugin, whatever its state."""

    name: str
    distribution: str = ""
    version: str = ""
    source: str = ""
    """The entry point's value (``package.module``), or the object's module for a directly given plugin."""
    status: Status = "enabled"
    error: str = ""
    plugin: object | None = field(default=None, repr=False)

    def failure(self, cause: str, fix: str = "") -> PluginError:
        return PluginError(self.name, cause, distribution=self.distribution, version=self.version, fix=fix)


@dataclass
class PluginSet:
    """The registered plugins and a way to call their hooks with attribution."""

    manager: pluggy.PluginManager
    infos: dict[str, PluginInfo]

    @property
    def enabled(self) -> list[PluginInfo]:
        return [info for info in self.infos.values() if info.status == "enabled"]

    @property
    def failed(self) -> list[PluginInfo]:
        return [info for info in self.infos.values() if info.status == "error"]

    def call(self, hook: str, *, strict: bool = True, **kwargs: Any) -> list[tuple[PluginInfo, Any]]:
        """Call ``hook`` on each plugin that implements it, in plugin-name order.

        Returns ``(plugin, result)`` pairs, leaving out ``None`` results. A hook
        that raises becomes a :class:`PluginError`; with ``strict=False`` the
        plugin is marked as failed instead and the others still run.
        """
        results = []
        impls = sorted(getattr(self.manager.hook, hook).get_hookimpls(), key=lambda impl: impl.plugin_name)
        for impl in impls:
            info = self.infos[impl.plugin_name]
            if info.status != "enabled":
                continue
            try:
                result = impl.function(**{arg: kwargs[arg] for arg in impl.argnames})
            except Exception as exc:
                failure = info.failure(f"hook {hook} raised {type(exc).__name__}: {exc}")
                if strict:
                    raise failure from exc
                self.mark_failed(info, failure)
                continue
            if result is not None:
                results.append((info, result))
        return results

    def mark_failed(self, info: PluginInfo, failure: PluginError) -> None:
        info.status, info.error = "error", str(failure)
        if info.plugin is not None and self.manager.is_registered(info.plugin):
            self.manager.unregister(info.plugin)

    def raise_failures(self) -> None:
        messages = [info.error for info in self.failed]
        if len(messages) == 1:
            raise StartupError(messages[0])
        if messages:
            raise StartupError(f"{len(messages)} plugins failed:\n" + "\n".join(messages))


def new_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    return manager


def load_plugins(
    settings: CoreSettings,
    *,
    given: Mapping[str, object] | None = None,
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
    strict: bool = True,
) -> PluginSet:
    """Discover, select, import and register plugins.

    ``given`` maps names to plugin objects handed in directly (the test kit uses
    it); they are always enabled, and replace an installed plugin of the same
    name (so a test can load a working copy of an installed plugin). Installed entry points are filtered by
    ``settings.plugins`` (allow-list) and ``settings.disable_plugins``. With
    ``strict`` (start-up) any failure raises; without it (``plugins list``) the
    failure is recorded on the plugin and loading goes on.
    """
    discovered = _discover(entry_points)
    _check_selection(settings, known=discovered.keys())
    for name in given or {}:
        discovered.pop(name, None)
    infos: dict[str, PluginInfo] = {name: info for name, (info, _) in discovered.items()}
    for name, plugin in (given or {}).items():
        infos[name] = PluginInfo(name, source=getattr(plugin, "__name__", type(plugin).__module__), plugin=plugin)

    manager = new_manager()
    plugin_set = PluginSet(manager, dict(sorted(infos.items())))

    for name, info in plugin_set.infos.items():
        if name in discovered and not _selected(name, settings):
            info.status = "disabled"
            if strict:
                logger.warning(
                    "plugin %r is installed but disabled (PLUGHOST_PLUGINS / PLUGHOST_DISABLE_PLUGINS)", name
                )
            continue
        try:
            _load_one(manager, info, discovered[name][1] if name in discovered else None)
        except PluginError as failure:
            plugin_set.mark_failed(info, failure)

    plugin_set.call("plughost_addhooks", strict=False, plugin_manager=manager)
    for info in plugin_set.enabled:
        problem = _unknown_hooks(manager, info)
        if problem:
            plugin_set.mark_failed(info, info.failure(problem))
    if strict:
        plugin_set.raise_failures()
    return plugin_set


def _discover(
    entry_points: Iterable[importlib.metadata.EntryPoint] | None,
) -> dict[str, tuple[PluginInfo, importlib.metadata.EntryPoint]]:
    found: dict[str, tuple[PluginInfo, importlib.metadata.EntryPoint]] = {}
    offered = _installed(_search_path()) if entry_points is None else _with_origins(entry_points)
    for ep, distribution, version in offered:
        info = PluginInfo(ep.name, distribution, version, ep.value)
        if ep.name in found:
            other = found[ep.name][0]
            raise StartupError(
                f"two installed distributions offer the plugin {ep.name!r}: {other.distribution} {other.version} "
                f"and {info.distribution} {info.version}. Uninstall one of them."
            )
        found[ep.name] = (info, ep)
    return found


def installed_entry_points() -> list[importlib.metadata.EntryPoint]:
    """The ``plughost.plugins`` entry points of the installed distributions."""
    return [ep for ep, _, _ in _installed(_search_path())]


def _search_path() -> tuple[tuple[str, int], ...]:
    """``sys.path``'s folders, each with the time it last changed (installing a distribution into a folder
    changes it): what the entry points found depend on."""
    return tuple((os.path.abspath(folder), _changed_at(folder)) for folder in sys.path)


def _changed_at(folder: str) -> int:
    try:
        return os.stat(folder or ".").st_mtime_ns
    except OSError:
        return 0


@functools.lru_cache(maxsize=8)
def _installed(search_path: tuple[tuple[str, int], ...]) -> tuple[tuple[importlib.metadata.EntryPoint, str, str], ...]:
    """The plugin entry points found on ``search_path`` (see :func:`_search_path`), with their distribution's
    name and version. Read once for each: reading every installed distribution's entry points and metadata
    took 40-60 ms, and ``python -m core serve`` asked twice (for the plugins' commands, then for the app), a
    test run at every app it built."""
    return _with_origins(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def _with_origins(
    entry_points: Iterable[importlib.metadata.EntryPoint],
) -> tuple[tuple[importlib.metadata.EntryPoint, str, str], ...]:
    """Each entry point, by name, with its distribution's name and version."""
    origins: dict[int, tuple[str, str]] = {}
    return tuple((ep, *_origin(ep.dist, origins)) for ep in sorted(entry_points, key=lambda ep: ep.name))


def _origin(dist: importlib.metadata.Distribution | None, known: dict[int, tuple[str, str]]) -> tuple[str, str]:
    """The distribution's name and version; its metadata file is parsed once for all of its plugins (each
    ``dist.name`` or ``dist.version`` parses it anew: 14 plugins cost 28 parses)."""
    if dist is None:
        return "", ""
    if id(dist) not in known:
        metadata = dist.metadata
        known[id(dist)] = (metadata["Name"], metadata["Version"])
    return known[id(dist)]


def _check_selection(settings: CoreSettings, known: Iterable[str]) -> None:
    known = set(known)
    for variable, names in (
        ("PLUGHOST_PLUGINS", settings.plugins or ()),
        ("PLUGHOST_DISABLE_PLUGINS", settings.disable_plugins),
    ):
        unknown = sorted(set(names) - known)
        if unknown:
            raise StartupError(
                f"{variable} names unknown plugins: {', '.join(unknown)}. "
                f"Installed plugins: {', '.join(sorted(known)) or 'none'}"
            )


def _selected(name: str, settings: CoreSettings) -> bool:
    return (settings.plugins is None or name in settings.plugins) and name not in settings.disable_plugins


def _load_one(manager: pluggy.PluginManager, info: PluginInfo, ep: importlib.metadata.EntryPoint | None) -> None:
    try:
        check_name(info.name, "plugin")
    except ValueError as exc:
        raise info.failure(str(exc), fix="rename the entry point") from None
    shadowed = core_variable_shadowed_by(info.name)
    if shadowed:
        raise info.failure(f"its settings prefix would capture the core's {shadowed}", fix="rename the entry point")
    if ep is not None:
        try:
            info.plugin = ep.load()
        except Exception as exc:
            raise info.failure(
                f"cannot import {info.source}: {type(exc).__name__}: {exc}", fix="reinstall or fix the plugin"
            ) from exc
    _check_version(info)
    try:
        manager.register(info.plugin, name=info.name)
    except (pluggy.PluginValidationError, ValueError) as exc:
        raise info.failure(str(exc), fix="fix the hook's signature") from None
    for impl in manager.get_hookcallers(info.plugin) or []:
        hook_impls = [i for i in impl.get_hookimpls() if i.plugin is info.plugin]
        for hook_impl in hook_impls:
            used = [option for option in PRIORITY_OPTIONS if getattr(hook_impl, option)]
            if used and impl.name in CORE_HOOKS:
                raise info.failure(
                    f"{impl.name} uses {'/'.join(used)}; plughost orders plugins only by contribution hints",
                    fix="remove it and give your contribution before=/after= hints",
                )


def _check_version(info: PluginInfo) -> None:
    spec = getattr(info.plugin, REQUIRES_ATTRIBUTE, None)
    if spec is None:
        return
    # imported only for a plugin that names the versions it supports (no built-in plugin does): compiling
    # packaging's version patterns is a few ms of every start-up
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import Version

    try:
        supported = SpecifierSet(spec)
    except (InvalidSpecifier, TypeError):
        raise info.failure(f"{REQUIRES_ATTRIBUTE} = {spec!r} is not a version specifier such as '>=0.1,<1'") from None
    if Version(__version__) not in supported:
        raise info.failure(
            f"supports plughost {spec}, but this is plughost {__version__}",
            fix="install a plugin release that supports this plughost",
        )


def _unknown_hooks(manager: pluggy.PluginManager, info: PluginInfo) -> str:
    """Name a misspelled hook, or a ``plughost_*`` function that lacks ``@hookimpl``.

    An implementation marked ``@hookimpl(optionalhook=True)`` answers a hook that
    another plugin may offer; it is not an error when that plugin is absent.
    """
    specified = [name for name in vars(manager.hook) if getattr(manager.hook, name).spec is not None]
    callers = manager.get_hookcallers(info.plugin) or []
    implemented = {caller.name for caller in callers}
    optional = {
        caller.name
        for caller in callers
        for impl in caller.get_hookimpls()
        if impl.plugin is info.plugin and impl.optionalhook
    }
    for name in sorted(implemented - optional):
        if getattr(manager.hook, name).spec is None:
            return f"implements unknown hook {name}{_unknown_hook_hint(name, specified)}"
    for name in sorted(dir(info.plugin)):
        if name.startswith("plughost_") and callable(getattr(info.plugin, name)) and name not in implemented:
            return f"{name} is not marked with @hookimpl, so it would never be called"
    return ""


def _unknown_hook_hint(name: str, specified: list[str]) -> str:
    """A misspelling of a known hook gets its correction; any other name is most likely a hook
    that a plugin offers (the jobs plugin's ``plughost_job_types``) while that plugin is absent."""
    prefix = f"{hookspecs.PROJECT_NAME}_"
    suffixes = {hook.removeprefix(prefix): hook for hook in specified}
    close = difflib.get_close_matches(name.removeprefix(prefix), list(suffixes), n=1)
    if close:
        return f"; did you mean {suffixes[close[0]]}?"
    return (
        "; no enabled plugin offers it. If another plugin offers this hook, mark the implementation "
        "`@hookimpl(optionalhook=True)` so that your plugin loads without that plugin; "
        f"otherwise check its name (known hooks: {', '.join(sorted(specified))})"
    )
