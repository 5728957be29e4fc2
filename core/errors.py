"""Start-up errors: each says what is wrong and how to fix it, in one message."""

from __future__ import annotations


class StartupError(Exception):
    """The server cannot start as configured; the message is meant for the operator."""


class PluginError(StartupError):
    """A plugin failed to load, declared something invalid, or raised in a hook."""

    def __init__(self, plugin: str, cause: str, *, distribution: str = "", version: str = "", fix: str = "") -> None:
        self.plugin = plugin
        self.cause = cause
        origin = f" (distribution {distribution} {version})" if distribution else ""
        disable = f"disable it with PLUGHOST_DISABLE_PLUGINS={plugin} or `serve --disable-plugins {plugin}`"
        how = f"{fix}, or {disable}" if fix else disable.capitalize()
        super().__init__(f"plugin {plugin!r}{origin}: {cause}\n  Fix: {how}.")
