"""Settings: the core's own (``PLUGHOST_<FIELD>``) and each plugin's (``PLUGHOST_<PLUGIN>_<FIELD>``)."""

from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .errors import StartupError
from .pricing import TokenPrice

ENV_PREFIX = "PLUGHOST_"

READ_ELSEWHERE = {"PLUGHOST_TEST_POSTGRESQL": "the PostgreSQL server of the test kit's database fixtures"}
"""``PLUGHOST_*`` variables that are no setting of the server, but read by another part of plughost."""

NameList = Annotated[tuple[str, ...], NoDecode]


def _split_names(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class CoreSettings(BaseSettings):
    """The host's settings; every field reads ``PLUGHOST_<FIELD>`` from the environment."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(5000, ge=0, le=65535)
    workers: int = Field(1, ge=1)
    loop: Literal["auto", "asyncio", "uvloop"] = "auto"
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = "info"
    data_dir: Path = Path("plughost-data")
    database_url: str | None = None
    """SQLAlchemy async URL shared by the plugins' stores (``postgresql+asyncpg://...``);
    unset: a SQLite file under the data dir."""
    redis_url: str | None = None
    """``redis://host:port/db`` for state every process must share at request speed (the security plugin's
    gateway key limits); unset: the shared database keeps it."""
    plugins: NameList | None = None
    """Allow-list of plugin names; ``None`` (unset) enables every installed plugin."""
    disable_plugins: NameList = ()
    max_body_bytes: int = Field(64 * 1024 * 1024, ge=0)
    """Largest request body any route accepts (native or bridged) unless the route sets its own; larger ones get 413."""
    max_json_body_bytes: int = Field(1024 * 1024, ge=0)
    """Largest JSON request body a native route accepts unless it sets its own limit: JSON is parsed
    holding the GIL, about 20 ms per MiB here, so this bounds the event loop's wait."""
    wsgi_threads: int = Field(40, ge=1)
    """Worker threads that run the WSGI app at once; more requests queue."""
    prices: dict[str, TokenPrice] = {}
    """Your own LLM prices, in US dollars per million tokens by model name, as JSON
    (``{"my-model": {"input": 0.5, "output": 1.5, "cached_input": 0.05}}``): for private models,
    and over the ``genai-prices`` data set that prices every other call (see :mod:`core.pricing`)."""

    _split = field_validator("plugins", "disable_plugins", mode="before")(_split_names)


def env_prefix(plugin: str) -> str:
    return f"{ENV_PREFIX}{plugin.upper().replace('-', '_')}_"


def core_variable_shadowed_by(plugin: str) -> str | None:
    """The core variable that ``plugin``'s settings prefix would capture, if any."""
    prefix = env_prefix(plugin)
    return next(
        (
            f"{ENV_PREFIX}{f.upper()}"
            for f in CoreSettings.model_fields
            if f"{ENV_PREFIX}{f.upper()}".startswith(prefix)
        ),
        None,
    )


def load_plugin_settings(
    plugin: str,
    model: type[BaseModel],
    environ: Mapping[str, str],
    overrides: Mapping[str, Any] | None = None,
) -> BaseModel:
    """Validate ``model`` from ``PLUGHOST_<PLUGIN>_*`` variables, then ``overrides``.

    Raises ``ValueError`` naming each offending variable: an unknown one (a typo
    must not pass silently) or a value the model rejects.
    """
    prefix = env_prefix(plugin)
    fields = {name.upper(): name for name in model.model_fields}
    misnamed = sorted(set(overrides or {}) - set(model.model_fields))
    if misnamed:
        raise ValueError(
            f"unknown settings given for plugin {plugin!r}: {', '.join(misnamed)}; "
            f"known settings: {', '.join(model.model_fields) or 'none'}"
        )
    values: dict[str, Any] = {}
    unknown = []
    for key, raw in environ.items():
        if not key.startswith(prefix):
            continue
        field = fields.get(key[len(prefix) :])
        if field is None:
            unknown.append(key)
        else:
            values[field] = _decode(raw, model.model_fields[field].annotation)
    if unknown:
        known = ", ".join(prefix + name for name in fields) or "none"
        raise ValueError(f"unknown setting {', '.join(sorted(unknown))}; known settings: {known}")
    values.update(overrides or {})
    try:
        return model.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(
            f"{prefix}{'.'.join(map(str, e['loc'])).upper() if e['loc'] else '* (together)'}: {e['msg']}"
            for e in error.errors()
        )
        raise ValueError(f"invalid settings: {problems}") from None


def _decode(raw: str, annotation: Any) -> Any:
    """Strings pass through (pydantic parses scalars); collections take JSON or a comma list."""
    if not _is_collection(annotation):
        return raw
    if raw.lstrip().startswith(("[", "{")):
        return json.loads(raw)
    return [part.strip() for part in raw.split(",") if part.strip()]


def _is_collection(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_collection(arg) for arg in typing.get_args(annotation) if arg is not type(None))
    if origin is Annotated:
        return _is_collection(typing.get_args(annotation)[0])
    return origin in (list, tuple, set, frozenset, dict) or annotation in (list, tuple, set, frozenset, dict)


def core_variables() -> list[str]:
    return [f"{ENV_PREFIX}{name.upper()}" for name in CoreSettings.model_fields]


def check_unclaimed_variables(environ: Mapping[str, str], plugins: Iterable[str], known: Iterable[str]) -> None:
    """Raise naming every ``PLUGHOST_*`` variable that nothing reads, each with its closest match.

    A variable is claimed by a core field, by :data:`READ_ELSEWHERE`, or by the prefix of an
    installed plugin (``plugins``: enabled or not; an enabled plugin checks its own variables).
    ``known`` are the variables the enabled plugins read, offered as corrections.
    """
    prefixes = {env_prefix(plugin): plugin for plugin in plugins}
    claimed = {*core_variables(), *READ_ELSEWHERE}
    unclaimed = [
        variable
        for variable in sorted(environ)
        if variable.startswith(ENV_PREFIX)
        and variable not in claimed
        and not any(variable.startswith(prefix) for prefix in prefixes)
    ]
    if unclaimed:
        corrections = [*claimed, *known]
        problems = "; ".join(variable + _closest(variable, corrections, prefixes) for variable in unclaimed)
        raise StartupError(
            f"unknown setting {problems}: neither the core nor any installed plugin reads it, so it would be "
            "ignored.\n  Fix: correct or unset it."
        )


def _closest(variable: str, corrections: list[str], prefixes: Mapping[str, str]) -> str:
    """`` (did you mean ...?)``: a variable spelled alike, else the same setting under a plugin prefix spelled alike."""
    close = difflib.get_close_matches(variable, corrections, n=1, cutoff=0.8)
    if close:
        return f" (did you mean {close[0]}?)"
    words = variable.removeprefix(ENV_PREFIX).split("_")
    by_name = {prefix.removeprefix(ENV_PREFIX).rstrip("_"): plugin for prefix, plugin in prefixes.items()}
    for count in range(1, len(words)):
        guessed = difflib.get_close_matches("_".join(words[:count]), list(by_name), n=1, cutoff=0.75)
        if guessed:
            plugin = by_name[guessed[0]]
            return f" (did you mean {env_prefix(plugin)}{'_'.join(words[count:])}, for plugin {plugin!r}?)"
    return ""
