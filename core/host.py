"""The object every hook receives: core settings, plugins, and each plugin's validated settings."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncEngine

from .database import create_engine, database_url
from .errors import StartupError
from .plugins import PluginSet
from .pricing import Pricing
from .settings import CoreSettings, check_unclaimed_variables, env_prefix, load_plugin_settings
from .shells import no_page_shells

T = TypeVar("T")


class Host:
    """What a plugin may know about the server it is part of.

    Built once per app: plugins are loaded, then every plugin's settings model
    is validated, then contribution hooks are called with this object.
    """

    def __init__(self, settings: CoreSettings, plugins: PluginSet) -> None:
        self.settings = settings
        self.plugins = plugins
        self._plugin_settings: dict[str, BaseModel] = {}
        self._engine: AsyncEngine | None = None
        self._services: dict[str, Any] = {}
        self.page_shells: Callable[[str], bool] = no_page_shells
        """Set by the factory once the app is built; read it through :meth:`is_page_shell`."""

    @property
    def data_dir(self) -> Path:
        """The directory for embedded data (SQLite files, key files); created on first use."""
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        return self.settings.data_dir

    @property
    def database(self) -> AsyncEngine:
        """The shared async engine (``PLUGHOST_DATABASE_URL``, else SQLite in the data dir); made on first use."""
        if self._engine is None:
            self._engine = create_engine(database_url(self.settings.database_url, self.data_dir))
        return self._engine

    async def close(self) -> None:
        """Release what the host opened (the database pool); called at shutdown."""
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    @property
    def pricing(self) -> Pricing:
        """What LLM calls cost: genai-prices under ``PLUGHOST_PRICES`` (one per app, shared by every plugin)."""
        return self.service("core.pricing", lambda: Pricing(self.settings.prices))

    def service(self, name: str, build: Callable[[], T]) -> T:
        """The object stored under ``name`` for this app, built by ``build`` on first use.

        Lets a plugin's hooks share one object per app (a store, an HTTP client)
        without module globals, so every app built in a test is independent.
        """
        if name not in self._services:
            self._services[name] = build()
        return self._services[name]  # type: ignore[no-any-return]

    def is_page_shell(self, path: str) -> bool:
        """Whether a GET (or HEAD) of ``path`` answers a page or file that holds no data.

        True for the console's page shells and static files (their scripts read all data
        from the API) and for the API docs pages and their files; False for the console's
        JSON routes (``/version``, ``/server-info``), ``/openapi.json``, every API route,
        every console path when a plugin's WSGI app replaces the console, and every path
        until the app is built. Paths are matched exactly, as the app routes them.
        """
        return self.page_shells(path)

    def is_enabled(self, plugin: str) -> bool:
        info = self.plugins.infos.get(plugin)
        return info is not None and info.status == "enabled"

    def plugin_settings(self, plugin: str) -> Any:
        """The plugin's validated settings model, or ``None`` when it declares none."""
        return self._plugin_settings.get(plugin)

    def validate_plugin_settings(
        self,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
        environ: Mapping[str, str] | None = None,
        *,
        strict: bool = True,
    ) -> None:
        """Call ``plughost_settings`` and validate each model from the environment and ``overrides``."""
        environ = os.environ if environ is None else environ
        declared = self.plugins.call("plughost_settings", strict=strict, host=self)
        without_settings = {info.name for info in self.plugins.enabled} - {info.name for info, _ in declared}
        for unknown in sorted(set(overrides or {}) - set(self.plugins.infos)):
            close = difflib.get_close_matches(unknown, list(self.plugins.infos), n=1)
            raise StartupError(
                f"settings given for an unknown plugin {unknown!r}{f' (did you mean {close[0]!r}?)' if close else ''}; "
                f"plugins: {', '.join(sorted(self.plugins.infos)) or 'none'}"
            )
        for name in sorted(without_settings):
            info = self.plugins.infos[name]
            stray = sorted(key for key in environ if key.startswith(env_prefix(name)))
            stray += [f"{name}.{field}" for field in (overrides or {}).get(name, {})]
            if stray:
                failure = info.failure(f"declares no settings, so {', '.join(stray)} would be ignored", fix="unset it")
                if strict:
                    raise failure
                self.plugins.mark_failed(info, failure)
        for info, model in declared:
            try:
                if not (isinstance(model, type) and issubclass(model, BaseModel)):
                    raise ValueError(f"plughost_settings returned {model!r}, not a pydantic model class")
                self._plugin_settings[info.name] = load_plugin_settings(
                    info.name, model, environ, (overrides or {}).get(info.name)
                )
            except ValueError as exc:
                failure = info.failure(str(exc), fix="correct the environment variable")
                if strict:
                    raise failure from None
                self.plugins.mark_failed(info, failure)

    def check_environment(self, environ: Mapping[str, str] | None = None) -> None:
        """Raise a :class:`StartupError` for a ``PLUGHOST_*`` variable that nothing reads (see
        :func:`~core.settings.check_unclaimed_variables`)."""
        known = [
            f"{env_prefix(plugin)}{field.upper()}"
            for plugin, model in self._plugin_settings.items()
            for field in type(model).model_fields
        ]
        check_unclaimed_variables(os.environ if environ is None else environ, self.plugins.infos, known)
