"""Start-up errors: each says what is wrong and how to fix it, in one message."""

from __future__ import annotations

from collections.abc import Iterable


class StartupError(Exception):
    """The server cannot start as configured; the message is meant for the operator."""


class PluginError(StartupError):
    """A plugin failed to load, declared something invalid, or raised in a hook."""

    def __init__(self, plugin: str, cause: str, *, distribution: str = "", version: str = "", fix: str = "") -> None:
        self.plugin = plugin
        self.cause = cause
        origin = f" (distribution {distribution} {version})" if distribution else ""
        disable = f"disable it with PLUGHOST_DISABLE_PLUGINS={plugin} or `serve --disable-plugins {plugin}`"
        how = f"{fix}, or {disable}" if fix else disable[0].upper() + disable[1:]  # capitalize() lowercases the rest
        super().__init__(f"plugin {plugin!r}{origin}: {cause}\n  Fix: {how}.")


class ClashError(StartupError):
    """Contributions of several plugins cannot coexist: a hint cycle, a duplicate name, a console URL claimed twice.

    ``plugins`` are the plugins involved (the core's console is not one of them); ``cause`` and
    ``fix`` read well on their own, so each plugin's failure can repeat them.
    """

    def __init__(self, cause: str, plugins: Iterable[str], fix: str) -> None:
        self.plugins = tuple(sorted(set(plugins)))
        self.cause = cause
        self.fix = fix
        names = " and ".join(repr(name) for name in self.plugins)
        how = " or ".join(f"PLUGHOST_DISABLE_PLUGINS={name}" for name in self.plugins)
        which = "one of the plugins" if len(self.plugins) > 1 else "the plugin"
        plural = "s" if len(self.plugins) > 1 else ""
        super().__init__(f"plugin{plural} {names}: {cause}\n  Fix: {fix}, or disable {which} with {how}.")
