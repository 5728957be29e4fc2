"""The plugin-author test kit: a pytest plugin (entry point ``pytest11: plughost``).

Functions:

- :func:`make_app` builds the real app through the real factory, with a fresh
  plugin manager every call;
- :func:`assert_plugin_contract` checks a plugin module against the contract;
- :func:`serve_in_thread` runs an app under a real uvicorn on a free loopback port.

Fixtures: ``make_app`` (the function, with a per-test data dir and the plugins
given to ``register_plugin``), ``module_make_app``, ``module_database_url`` and ``module_databases`` (the same for
an app a module shares), ``register_plugin``, ``plughost_app`` (override it
in your plugin's ``conftest.py``; the default enables every installed plugin),
``client`` (a TestClient with lifespans run), ``live_server`` (the base URL of
``plughost_app`` served by uvicorn), ``database_url`` (a fresh database, once
on SQLite and once on PostgreSQL; under ``CI`` an unreachable PostgreSQL fails
the test instead of skipping it), ``sqlite_url`` (SQLite only, for checks
whose behaviour no store changes), ``postgresql_url`` (PostgreSQL only), ``postgresql_cluster``
and ``stoppable_postgresql_url`` (a PostgreSQL server of the session's own, which a test may stop
and start).

Browser fixtures (Playwright driving the system Chromium, never a downloaded one):
``chromium_path``, ``chromium_browser`` (one per module; ``*.test`` host names resolve
to 127.0.0.1, for pages on another site), ``browser_page`` (a fresh context per test) and
``screenshot`` (saves a page under ``screenshots_dir``, this run's pytest temporary directory).
Without Chromium the tests skip, saying why; under ``CI`` they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import pytest
import uvicorn

from .errors import StartupError
from .factory import PlughostApp, create_app
from .plugins import CORE_HOOKS, PRIORITY_OPTIONS, installed_entry_points, load_plugins
from .server import NoDelayHTTPProtocol
from .settings import CoreSettings

PluginSpec = str | object
"""An installed plugin's name, or a plugin object (usually a module) to register directly."""


def plugin_name(plugin: object) -> str:
    """The name a directly given plugin registers under, as the server would name it.

    A module named by an installed ``plughost.plugins`` entry point takes that entry point's
    name (``metrics = "plughost_metrics"`` registers ``plughost_metrics`` as ``metrics``).
    Anything else, such as a test's one-off plugin class, declares its name once in a
    ``PLUGHOST_NAME`` attribute; a module without one falls back to its last dotted name.
    """
    if isinstance(plugin, types.ModuleType):
        for entry_point in installed_entry_points():
            if entry_point.value == plugin.__name__:
                return entry_point.name
    name = getattr(plugin, "PLUGHOST_NAME", None)
    if name is None and isinstance(plugin, types.ModuleType):
        name = plugin.__name__.rsplit(".", 1)[-1]
    if name is None:
        raise TypeError(
            f"give {plugin!r} a PLUGHOST_NAME attribute, or register it with register_plugin(obj, name=...)"
        )
    return str(name)


def make_app(
    plugins: Iterable[PluginSpec] | None = None,
    settings: Mapping[str, Any] | None = None,
    *,
    given: Mapping[str, object] | None = None,
) -> PlughostApp:
    """Build the app as the server would, from a fresh plugin manager.

    ``plugins``: installed plugin names to enable (``None``: all installed) and/or
    plugin objects to register directly. ``settings``: core settings by field
    name (``data_dir``, ``max_body_bytes``, ...) and plugin settings as
    ``{"<plugin>": {"<field>": value}}``. ``given``: more plugin objects by name.
    """
    names: list[str] = []
    objects = dict(given or {})
    for plugin in plugins if plugins is not None else ():
        if isinstance(plugin, str):
            names.append(plugin)
        else:
            objects[plugin_name(plugin)] = plugin
    core_values = {k: v for k, v in (settings or {}).items() if k in CoreSettings.model_fields}
    overrides = {k: v for k, v in (settings or {}).items() if k not in CoreSettings.model_fields}
    for key, value in overrides.items():
        if not isinstance(value, Mapping):
            close = difflib.get_close_matches(key, list(CoreSettings.model_fields), n=1)
            raise StartupError(
                f"make_app: unknown core setting {key!r}{f' (did you mean {close[0]!r}?)' if close else ''}; "
                "a plugin's settings go under its name: {'otel': {'max_body_bytes': 1024}}"
            )
    core_values.setdefault("plugins", None if plugins is None else tuple(names))
    if "data_dir" not in core_values:
        core_values["data_dir"] = Path(tempfile.mkdtemp(prefix="plughost-test-"))
    return create_app(CoreSettings(**core_values), given=objects, overrides=overrides)


Alongside = Literal["installed"] | Iterable[str]

QUIET_BUILTINS: dict[str, dict[str, Any]] = {"otel": {"grpc_address": ""}}
"""Built-in plugins' settings for a contract check: nothing listens on a fixed port (otel's gRPC on 4317)."""


def assert_plugin_contract(
    module: object, *, settings: Mapping[str, Any] | None = None, alongside: Alongside = ()
) -> None:
    """Fail with the core's own message unless ``module`` keeps the plugin contract.

    Checks: it implements at least one known hook, marks every ``plughost_*``
    function with ``@hookimpl``, uses no ``tryfirst``/``trylast``/wrappers on core
    hooks, and builds a working app with its lifespans run (settings valid with
    defaults, contributions typed, hints resolvable, no route or console clash).
    ``alongside`` names the installed plugins to build it with: none by default,
    ``"installed"`` for all of them, so that a clash or a hint cycle with any of
    them fails here. The plugin registers under its entry point's name
    (:func:`plugin_name`); its data lives in a temporary directory, removed after.
    """
    name = plugin_name(module)
    hooks = [attr for attr in dir(module) if attr.startswith("plughost_")]
    assert hooks, f"{name}: implements no plughost_* hook"
    for attr in hooks:
        options = getattr(getattr(module, attr), "plughost_impl", None)
        assert options is not None, f"{name}.{attr} is not marked with @hookimpl"
        used = [o for o in PRIORITY_OPTIONS if options.get(o)]
        assert not (used and attr in CORE_HOOKS), f"{name}.{attr} uses {used}; use before=/after= hints"
    others = None if alongside == "installed" else list(alongside)
    try:
        installed = load_plugins(CoreSettings(plugins=()), given={name: module}).infos
        quiet = {plugin: values for plugin, values in QUIET_BUILTINS.items() if plugin in installed}
        with tempfile.TemporaryDirectory(prefix="plughost-contract-") as data_dir:
            app = make_app(others, {"data_dir": Path(data_dir), **quiet, **(settings or {})}, given={name: module})
            with client_for(app):
                pass
    except StartupError as error:
        raise AssertionError(str(error)) from None


KIT_HOST = "localhost"
"""The Host header of the kit's clients: a name the security plugin allows by default (Starlette's own,
``testserver``, is refused with 403)."""


def client_for(app: Any, **options: Any) -> Any:
    """A ``starlette.testclient.TestClient`` on ``http://localhost`` (imported here: it needs httpx2, a test-only
    dependency)."""
    from starlette.testclient import TestClient

    options.setdefault("base_url", f"http://{KIT_HOST}")
    return TestClient(app, **options)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


START_TIMEOUT = 120.0
"""Seconds a test server may take to start: long enough for a loaded machine, and free when things are fast."""


@contextmanager
def serve_in_thread(
    app: Any, *, timeout: float = START_TIMEOUT, port: int | None = None, **config: Any
) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a loopback port in a thread (``port``, or a free one); yield its base URL.
    ``timeout``: seconds to wait for the start (and for the stop).

    The port is bound here and the socket handed to uvicorn: a port merely found free could be taken
    (by another process's outgoing connection, say) before uvicorn binds it."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", port or 0))
    port = int(listening.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, http=NoDelayHTTPProtocol, log_level="warning", **config)
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listening]}, name="plughost-live-server", daemon=True
    )
    with listening:
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the live server did not start")
            time.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(timeout)


@pytest.fixture
def register_plugin() -> Iterator[Callable[..., object]]:
    """``register_plugin(obj, name=None)``: include a one-off plugin in this test's ``make_app`` calls."""
    registered: dict[str, object] = {}

    def register(plugin: object, name: str | None = None) -> object:
        registered[name or plugin_name(plugin)] = plugin
        return plugin

    register.registered = registered  # type: ignore[attr-defined]
    yield register


@pytest.fixture(name="make_app")
def make_app_fixture(tmp_path: Path, register_plugin: Any) -> Callable[..., PlughostApp]:
    """:func:`make_app` with a fresh data dir under ``tmp_path`` and the registered plugins."""

    def build(plugins: Iterable[PluginSpec] | None = None, settings: Mapping[str, Any] | None = None) -> PlughostApp:
        values = {"data_dir": tmp_path / "plughost-data", **(settings or {})}
        return make_app(plugins, values, given=register_plugin.registered)

    return build


@pytest.fixture(scope="module")
def module_make_app(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., PlughostApp]:
    """:func:`make_app` for an app a whole module shares (build it in a module-scoped fixture): for tests
    that only read, or whose writes no other test sees, it saves an app's start per test. Each call gets
    a data dir (and so a SQLite database) of its own; ``register_plugin`` does not reach it."""

    def build(plugins: Iterable[PluginSpec] | None = None, settings: Mapping[str, Any] | None = None) -> PlughostApp:
        values = {"data_dir": tmp_path_factory.mktemp("plughost-data"), **(settings or {})}
        return make_app(plugins, values)

    return build


@pytest.fixture
def plughost_app(make_app: Callable[..., PlughostApp]) -> PlughostApp:
    """The app under test; override it in a plugin's ``conftest.py`` to pick the plugins and settings."""
    return make_app()


@pytest.fixture
def client(plughost_app: PlughostApp) -> Iterator[Any]:
    """A TestClient on ``plughost_app``, with start-up and shutdown (lifespans) run."""
    with client_for(plughost_app) as started:
        yield started


@pytest.fixture
def live_server(plughost_app: PlughostApp) -> Iterator[str]:
    """The base URL of ``plughost_app`` under a real uvicorn, for streaming and socket-level tests."""
    with serve_in_thread(plughost_app) as url:
        yield url


CHROMIUM = next(filter(None, map(shutil.which, ("chromium-headless-shell", "chromium", "chromium-browser"))), None)
"""The system Chromium the browser tests drive. Its headless shell first (Debian:
``apt-get install chromium-headless-shell``): the same engine, built without the browser's windowing, as
Playwright's own headless runs use; starting it and each fresh context costs a third of the full browser's CPU
(0.44 s against 1.22 s a launch, 0.15 s against 0.64 s a context, measured)."""


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The Chromium executable; skips (fails under ``CI``) when it is not installed."""
    if CHROMIUM is None:
        message = "chromium is not installed (apt-get install chromium-headless-shell); .ci/run installs it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


BROWSER_TIMEOUT_MS = 30_000
"""Playwright's waits (actions, navigation and ``expect``) in the browser fixtures: long enough for a
loaded machine; a passing check returns as soon as it holds."""


@pytest.fixture(scope="module")
def chromium_browser(chromium_path: str) -> Iterator[Any]:
    """A headless Playwright ``Browser`` on the system Chromium, shared by a module's tests.
    Playwright's ``expect`` waits ``BROWSER_TIMEOUT_MS`` too (its own default, 5 s, is not the context's)."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=BROWSER_TIMEOUT_MS)

    with sync_playwright() as playwright:
        # *.test names resolve to loopback, so a page at http://attacker.test:<port> is a real other site.
        browser = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=["--host-resolver-rules=MAP *.test 127.0.0.1"]
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def screenshots_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``screenshots/`` in this run's pytest temporary directory: two runs never overwrite each other's."""
    return tmp_path_factory.mktemp("screenshots", numbered=False)


@pytest.fixture
def screenshot(screenshots_dir: Path) -> Callable[..., Path]:
    """``screenshot(page, name, **options)``: save ``page`` as ``<screenshots_dir>/<name>.png`` (to look at)
    and return the path."""

    def take(page: Any, name: str, **options: Any) -> Path:
        path = screenshots_dir / f"{name}.png"
        page.screenshot(path=str(path), **options)
        return path

    return take


@pytest.fixture
def browser_page(chromium_browser: Any) -> Iterator[Any]:
    """A Playwright ``Page`` in a fresh browser context (no storage shared between tests)."""
    context = chromium_browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(BROWSER_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


POSTGRESQL_SERVER = os.environ.get("PLUGHOST_TEST_POSTGRESQL", "postgresql://postgres@127.0.0.1:5432/postgres")
"""The PostgreSQL server the scale-out tests use; each test gets a database of its own on it."""


def _postgresql_unavailable(reason: str) -> None:
    """Under CI a missing PostgreSQL is a failure; on a laptop the test is skipped, saying why."""
    message = f"PostgreSQL at {POSTGRESQL_SERVER} is not available ({reason}); set PLUGHOST_TEST_POSTGRESQL"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database for this test: SQLite in ``tmp_path``, or a new PostgreSQL database
    (see ``postgresql_url``). Tests using it run once per backend."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgresql_url"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh, empty SQLite database in ``tmp_path``: for tests whose behaviour is the same on every
    store (input validation, the heaviest data), which ``database_url`` would run twice."""
    return f"sqlite+aiosqlite:///{tmp_path / 'plughost.db'}"


def postgresql_admin(*statements: str, database: str | None = None) -> None:
    """Run ``statements`` in order on the ``PLUGHOST_TEST_POSTGRESQL`` server: in its own database,
    outside any test database, or in ``database``."""
    import asyncpg

    server = POSTGRESQL_SERVER if database is None else POSTGRESQL_SERVER.rsplit("/", 1)[0] + f"/{database}"

    async def run() -> None:
        connection = await asyncpg.connect(server, timeout=5)
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(run())


@contextmanager
def postgresql_down(database_url: str) -> Iterator[None]:
    """The database of ``database_url`` refuses connections, and its open ones are cut, for the block:
    a store that is down. It comes back, with everything stored, when the block ends."""
    name = database_url.rsplit("/", 1)[1]
    postgresql_admin(
        f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false',
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
    )
    try:
        yield
    finally:
        postgresql_admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')


@pytest.fixture
def postgresql_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database on ``PLUGHOST_TEST_POSTGRESQL`` for this test (see
    :func:`new_postgresql_database`)."""
    with new_postgresql_database() as url:
        yield url


@pytest.fixture(scope="module")
def module_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str], str]]:
    """``url(store)``: a fresh database on ``store`` (``sqlite`` or ``postgresql``) for what a whole module
    shares, made on first ask and kept to the module's end; for a module fixture that serves some tests on
    both stores and others on SQLite only (a module-scoped parameter would run all of them on both)."""
    with contextlib.ExitStack() as stack:
        made: dict[str, str] = {}

        def url(store: str) -> str:
            if store not in made:
                made[store] = (
                    f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('plughost-db') / 'plughost.db'}"
                    if store == "sqlite"
                    else stack.enter_context(new_postgresql_database())
                )
            return made[store]

        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_database_url(request: pytest.FixtureRequest, module_databases: Callable[[str], str]) -> str:
    """``database_url`` for what a whole module shares (an app of ``module_make_app``): a fresh database
    on each store, made once for the module's tests that use it, which run once per store."""
    return module_databases(request.param)


class PostgreSQLDatabases:
    """The databases this test process keeps on ``PLUGHOST_TEST_POSTGRESQL``: each is lent to one block at a
    time and emptied when given back, so that a test gets a fresh database without paying for
    ``CREATE DATABASE`` and ``DROP DATABASE`` (about 2 s between them on a busy machine) each time.
    Dropped at the end of the session."""

    def __init__(self) -> None:
        self.free: list[str] = []
        self.made: list[str] = []

    def lend(self) -> str:
        """A database's name: an emptied one, or a new one (with ``synchronous_commit`` off: its sessions
        need not wait for the disk, as nothing survives the test run)."""
        if self.free:
            return self.free.pop()
        name = f"plughost_test_{uuid.uuid4().hex[:12]}"
        postgresql_admin(f'CREATE DATABASE "{name}"', *self.settings(name))
        self.made.append(name)
        return name

    @staticmethod
    def settings(name: str) -> tuple[str, ...]:
        return (f'ALTER DATABASE "{name}" RESET ALL', f'ALTER DATABASE "{name}" SET synchronous_commit = off')

    def give_back(self, name: str) -> None:
        """Cut what the test left connected (as ``DROP DATABASE ... WITH (FORCE)`` would), then empty the
        database as new: no tables, types, sequences or settings of the test's own."""
        postgresql_admin(
            f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true',
            *self.settings(name),
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
        )
        postgresql_admin(
            "DROP SCHEMA public CASCADE",
            "CREATE SCHEMA public",
            "GRANT ALL ON SCHEMA public TO PUBLIC",
            database=name,
        )
        self.free.append(name)

    def drop_all(self) -> None:
        for name in self.made:
            postgresql_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.made.clear()
        self.free.clear()


_postgresql_databases = PostgreSQLDatabases()


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Drop the databases this test process made on ``PLUGHOST_TEST_POSTGRESQL``."""
    import asyncpg

    with contextlib.suppress(OSError, asyncpg.PostgresError):
        _postgresql_databases.drop_all()


@contextmanager
def new_postgresql_database() -> Iterator[str]:
    """A fresh, empty database on ``PLUGHOST_TEST_POSTGRESQL`` for the block (its SQLAlchemy URL); emptied
    after, for the next block of this test process (:class:`PostgreSQLDatabases`)."""
    import asyncpg

    try:
        name = _postgresql_databases.lend()
    except (OSError, asyncpg.PostgresError) as error:
        _postgresql_unavailable(f"{type(error).__name__}: {error}")
    try:
        yield POSTGRESQL_SERVER.replace("postgresql://", "postgresql+asyncpg://").rsplit("/", 1)[0] + f"/{name}"
    finally:
        _postgresql_databases.give_back(name)


BATCH_TRACE_START_NS = 1_700_000_000_000_000_000


def batch_span_id(number: int) -> str:
    """The span id (hex) :func:`batch_trace` gives its ``number``-th span (1: the root; batch ``b``
    is ``2 + b * (records + 1)``, its records follow it): spread like real ids, which compress as
    badly as random bytes, but each number has its own."""
    return ((number * 0x9E3779B97F4A7C15) % 2**64).to_bytes(8, "big").hex()


def batch_trace(
    trace_id: bytes,
    batches: int = 50,
    records: int = 99,
    *,
    failing: tuple[int, int] = (37, 57),
    per_request: int = 5000,
) -> Iterator[Any]:
    """A batch job as OTLP ``ExportTraceServiceRequest`` s of up to ``per_request`` spans: a root
    ``run batch job``, ``batches`` spans ``batch <i>`` under it, each with ``records`` sequential
    ``process record`` spans (attributes ``record.id``, ``record.size``); the record ``failing``
    (batch, record) has an error status and an exception event. Everything runs one after the
    other: a sequential trace of ``1 + batches * (1 + records)`` spans (the issue's 5,001 by default)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.trace.v1.trace_pb2 import Status

    record_ns, gap_ns = 1_000_000, 10_000
    batch_ns = records * (record_ns + gap_ns) + gap_ns
    request = ExportTraceServiceRequest()
    count = 0

    def add(span_id: int, parent: int | None, name: str, start: int, end: int, attributes: dict[str, Any]) -> Any:
        nonlocal request, count
        if count == per_request:
            yield request
            request, count = ExportTraceServiceRequest(), 0
        if not request.resource_spans:
            resource_spans = request.resource_spans.add()
            resource_spans.resource.attributes.append(
                KeyValue(key="service.name", value=AnyValue(string_value="batch-worker"))
            )
            resource_spans.scope_spans.add().scope.name = "batch.job"
        span = request.resource_spans[0].scope_spans[0].spans.add()
        span.trace_id, span.span_id, span.name = trace_id, bytes.fromhex(batch_span_id(span_id)), name
        if parent is not None:
            span.parent_span_id = bytes.fromhex(batch_span_id(parent))
        span.start_time_unix_nano, span.end_time_unix_nano = BATCH_TRACE_START_NS + start, BATCH_TRACE_START_NS + end
        for key, raw in attributes.items():
            value = AnyValue(int_value=raw) if isinstance(raw, int) else AnyValue(string_value=raw)
            span.attributes.append(KeyValue(key=key, value=value))
        count += 1
        return span

    def spans() -> Iterator[Any]:
        yield from add(1, None, "run batch job", 0, batches * batch_ns + 1000, {"job.name": "nightly-import"})
        for batch in range(batches):
            batch_id, batch_start = 2 + batch * (records + 1), batch * batch_ns + 1000  # after the root, not with it
            yield from add(batch_id, 1, f"batch {batch}", batch_start, batch_start + batch_ns, {"batch.index": batch})
            for record in range(records):
                start = batch_start + gap_ns + record * (record_ns + gap_ns)
                attributes = {"record.id": f"rec-{batch}-{record}", "record.size": 100 + record}
                span_id, end = batch_id + 1 + record, start + record_ns
                span = yield from add(span_id, batch_id, "process record", start, end, attributes)
                if (batch, record) == failing:
                    span.status.code = Status.STATUS_CODE_ERROR
                    span.status.message = f"could not parse record rec-{batch}-{record}"
                    event = span.events.add(name="exception", time_unix_nano=span.end_time_unix_nano)
                    event.attributes.append(KeyValue(key="exception.type", value=AnyValue(string_value="ValueError")))
                    event.attributes.append(
                        KeyValue(key="exception.message", value=AnyValue(string_value="bad field 'amount'"))
                    )
        yield request

    return spans()


def post_otlp(base: str, requests: Iterable[Any], **headers: str) -> None:
    """POST each OTLP request to ``base``'s ``/v1/traces`` as protobuf; each must be stored whole."""
    import httpx

    for request in requests:
        answer = httpx.post(
            f"{base}/v1/traces",
            content=request.SerializeToString(),
            headers={"Content-Type": "application/x-protobuf", **headers},
            timeout=60,
        )
        assert answer.status_code == 200 and b"rejected" not in answer.content, answer.content


class PostgreSQLCluster:
    """A PostgreSQL server of this test session's own, on a free loopback port: one a test may stop and
    start under a running server (the shared one on ``PLUGHOST_TEST_POSTGRESQL`` is never stopped).

    Made with ``initdb`` (as the ``postgres`` user when run as root: initdb refuses root) into a
    temporary directory, and run with ``pg_ctl``, without fsync: its data is thrown away.
    """

    def __init__(self, bindir: Path, directory: Path) -> None:
        self.bindir = bindir
        self.directory = directory
        self.data = directory / "data"
        self.port = free_port()

    def _run(self, program: str, *arguments: str) -> None:
        command = [str(self.bindir / program), *arguments]
        if os.geteuid() == 0:
            command = ["su", "postgres", "-c", " ".join(shlex.quote(part) for part in command)]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def create(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")
        self.start()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.directory / "log"), "-w", "start")

    def stop(self) -> None:
        """Stop at once: clients are disconnected, new connections are refused."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """The server is down for the block, and back (with everything committed) when it ends."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def admin(self, *statements: str) -> None:
        """Run ``statements`` in order on the ``postgres`` database (with ``psql``: no event loop needed)."""
        arguments = [
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
        ]
        for statement in statements:
            arguments += ["-c", statement]
        self._run("psql", *arguments)

    def new_database(self) -> str:
        """A new, empty database on this server; its SQLAlchemy URL."""
        name = f"plughost_test_{uuid.uuid4().hex[:12]}"
        self.admin(f'CREATE DATABASE "{name}"')
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{name}"


def _postgresql_bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda path: int(path.parts[-3]))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@pytest.fixture(scope="session")
def postgresql_cluster() -> Iterator[PostgreSQLCluster]:
    """A :class:`PostgreSQLCluster` for the session (initdb once, a few seconds); stopped and removed after.
    Without PostgreSQL's programs the tests that use it skip, saying why; under ``CI`` they fail."""
    bindir = _postgresql_bindir()
    if bindir is None:
        message = "PostgreSQL's initdb is not installed (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # Not under pytest's temporary directory: the postgres user could not reach into root's.
    directory = Path(tempfile.mkdtemp(prefix="plughost-postgresql-"))
    cluster = PostgreSQLCluster(bindir, directory)
    cluster.create()
    try:
        yield cluster
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            cluster.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def stoppable_postgresql_url(postgresql_cluster: PostgreSQLCluster) -> str:
    """A fresh database on the session's own :class:`PostgreSQLCluster`, which the test may stop and start."""
    return postgresql_cluster.new_database()
