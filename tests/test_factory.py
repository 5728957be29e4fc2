"""The assembled app: router order, the bridge last, 405s, conflicts, middleware order, lifespans."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any

import fastapi.routing
import pytest
from fastapi import APIRouter
from flask import Flask

from core import MiddlewareContribution, RouterContribution, StartupError, hookimpl
from core.database import create_engine
from core.factory import GIL_SWITCH_INTERVAL_SECONDS
from core.testing import client_for


def router_plugin(name: str, router: APIRouter, **hints: Any) -> object:
    class Plugin:
        PLUGHOST_NAME = name

        @hookimpl
        def plughost_routers(self, host):
            return RouterContribution(name, router, **hints)

    return Plugin()


def tagging_middleware(tag: str):
    """A pure ASGI middleware that appends ``tag`` to the x-trail response header."""

    def factory(app, settings):
        async def middleware(scope, receive, send):
            if scope["type"] != "http":
                return await app(scope, receive, send)
            scope.setdefault("trail", []).append(tag)

            async def tagged(message):
                if message["type"] == "http.response.start":
                    headers = [(k, v) for k, v in message["headers"] if k != b"x-trail"]
                    seen = dict(message["headers"]).get(b"x-trail", b"").decode()
                    headers.append((b"x-trail", f"{tag}>{seen}".rstrip(">").encode()))
                    message = {**message, "headers": headers}
                await send(message)

            await app(scope, receive, tagged)

        return middleware

    return factory


def middleware_plugin(name: str, **hints: Any) -> object:
    class Plugin:
        PLUGHOST_NAME = name

        @hookimpl
        def plughost_middlewares(self, host):
            return MiddlewareContribution(name, tagging_middleware(name), **hints)

    return Plugin()


def test_plugin_routes_answer_and_every_other_path_goes_to_the_bridge(make_app) -> None:
    router = APIRouter()

    @router.get("/api/items")
    async def items() -> list[int]:
        return [1, 2]

    app = make_app([router_plugin("items", router)])
    with client_for(app) as client:
        assert client.get("/api/items").json() == [1, 2]
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/version").json()["version"]
        bridged = client.get("/api/items/unknown")
        assert bridged.status_code == 404 and bridged.json()["detail"].startswith(
            "There is no console page at /api/items/unknown"
        )  # the console's 404, as JSON for an API client
        assert client.get("/no/native/route/here").status_code == 404
    # a path whose first segment no native route has (/version) goes to the bridge before the route table
    assert app.router.routes[0].name == "wsgi-shortcut" and app.router.routes[-1].name == "wsgi"


def test_wrong_method_on_native_route_is_405_not_the_flask_404(make_app) -> None:
    router = APIRouter()

    @router.post("/api/submit")
    async def submit() -> dict[str, bool]:
        return {"ok": True}

    with client_for(make_app([router_plugin("submit", router)])) as client:
        response = client.get("/api/submit")
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        assert response.json() == {"detail": "Method Not Allowed"}
        assert client.put("/health").status_code == 405


def test_bridge_stays_last_even_with_plugin_routes_at_the_root(make_app) -> None:
    legacy = Flask("legacy")

    @legacy.get("/")
    def legacy_root() -> str:
        return "flask root"

    @legacy.get("/legacy/page")
    def legacy_page() -> str:
        return "flask page"

    class LegacyApp:
        PLUGHOST_NAME = "legacy"

        @hookimpl
        def plughost_wsgi_app(self, host):
            return legacy

    router = APIRouter()

    @router.get("/")
    async def root() -> dict[str, str]:
        return {"from": "plugin"}

    @router.get("/{name}")
    async def named(name: str) -> dict[str, str]:
        return {"from": "plugin", "name": name}

    app = make_app([LegacyApp(), router_plugin("rooted", router)])
    with client_for(app) as client:
        assert client.get("/").json() == {"from": "plugin"}
        assert client.get("/anything").json() == {"from": "plugin", "name": "anything"}
        assert client.get("/legacy/page").text == "flask page"  # deeper paths still reach Flask
    assert app.router.routes[-1].name == "wsgi"
    assert app.route_claims()[-1].owner == "legacy (WSGI bridge)"
    assert "wsgi-shortcut" not in [getattr(route, "name", None) for route in app.router.routes]  # /{name}: any path


def test_router_order_follows_hints_for_first_match(make_app) -> None:
    def catching(label: str) -> APIRouter:
        router = APIRouter()

        @router.get("/shared/{rest:path}")
        async def shared(rest: str) -> dict[str, str]:
            return {"by": label}

        return router

    class Shadow:
        PLUGHOST_NAME = "shadow"

        @hookimpl
        def plughost_routers(self, host):
            router = APIRouter()

            @router.get("/shared/exact")
            async def exact() -> dict[str, str]:
                return {"by": "exact"}

            return RouterContribution("shadow", router, before=("aaa",))

    app = make_app([router_plugin("aaa", catching("aaa")), Shadow()])
    with client_for(app) as client:
        assert client.get("/shared/exact").json() == {"by": "exact"}  # 'shadow' before 'aaa' despite its name
        assert client.get("/shared/other").json() == {"by": "aaa"}
    assert [c.name for c in app.assembly.routers.order] == ["shadow", "aaa"]


def test_same_method_and_path_from_two_plugins_is_an_error_naming_both(make_app) -> None:
    def claiming(path: str) -> APIRouter:
        router = APIRouter()
        router.add_api_route(path, lambda: None, methods=["GET"])
        return router

    with pytest.raises(StartupError, match="GET /api/x is claimed by both 'first' and 'second'"):
        make_app([router_plugin("first", claiming("/api/x")), router_plugin("second", claiming("/api/x"))])
    with pytest.raises(StartupError, match="GET /health is claimed by both 'core' and 'healthy'"):
        make_app([router_plugin("healthy", claiming("/health"))])


def test_conflicts_are_found_inside_nested_routers(make_app) -> None:
    inner = APIRouter()
    inner.add_api_route("/x", lambda: None, methods=["GET"])
    outer = APIRouter()
    outer.include_router(inner, prefix="/api")
    flat = APIRouter()
    flat.add_api_route("/api/x", lambda: None, methods=["GET"])
    with pytest.raises(StartupError, match="GET /api/x is claimed by both 'flat' and 'nested'"):
        make_app([router_plugin("nested", outer), router_plugin("flat", flat)])


def test_middlewares_wrap_in_hint_order_and_wrap_the_bridge(make_app) -> None:
    plugins = [
        middleware_plugin("inner", after=["middle"]),
        middleware_plugin("middle", after=["outer"]),
        middleware_plugin("outer"),
    ]
    app = make_app(plugins)
    with client_for(app) as client:
        assert client.get("/health").headers["x-trail"] == "outer>middle>inner"
        assert client.get("/flask/page/404").headers["x-trail"] == "outer>middle>inner"


def test_plugin_middlewares_see_unhandled_errors_as_500(make_app) -> None:
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    app = make_app([router_plugin("boom", router), middleware_plugin("outer")])
    with client_for(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert response.headers["x-trail"] == "outer"


def test_a_database_that_is_down_or_busy_is_503_with_retry_after_not_500(make_app, tmp_path) -> None:
    router = APIRouter()

    @router.get("/store")
    async def store() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'x.db'}")
        try:
            async with engine.connect():
                pass
        finally:
            await engine.dispose()

    app = make_app([router_plugin("store", router)])
    with client_for(app, raise_server_exceptions=False) as client:
        response = client.get("/store")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    body = response.json()
    assert body["unavailable"] == "database" and body["cause"] == "unreachable"
    assert body["detail"].startswith("the database is unavailable: its file cannot be opened")


def test_missing_required_middleware_stops_startup(make_app) -> None:
    with pytest.raises(StartupError, match="'gateway' requires 'security'"):
        make_app([middleware_plugin("gateway", requires=["security"])])


def test_middleware_cycle_stops_startup_printing_the_cycle(make_app) -> None:
    with pytest.raises(StartupError, match=r"cycle: a -> b -> a \(made by the hints: a before=b; b before=a\)"):
        make_app([middleware_plugin("a", before=["b"]), middleware_plugin("b", before=["a"])])


def test_a_failing_middleware_factory_stops_startup_naming_the_plugin(make_app) -> None:
    class Bad:
        PLUGHOST_NAME = "bad"

        @hookimpl
        def plughost_middlewares(self, host):
            def factory(app, settings):
                raise ValueError("needs a secret")

            return MiddlewareContribution("bad", factory)

    with pytest.raises(StartupError, match="plugin 'bad'.*middleware factory 'bad' raised ValueError: needs a secret"):
        make_app([Bad()])


def test_wrong_contribution_type_is_an_error(make_app) -> None:
    class Confused:
        PLUGHOST_NAME = "confused"

        @hookimpl
        def plughost_routers(self, host):
            return APIRouter()

    with pytest.raises(StartupError, match="plughost_routers returned .* not a RouterContribution"):
        make_app([Confused()])


def test_lifespans_enter_in_plugin_order_and_exit_in_reverse(make_app) -> None:
    events: list[str] = []

    def lifespan_plugin(name: str) -> object:
        @contextlib.asynccontextmanager
        async def lifespan() -> AsyncIterator[None]:
            events.append(f"start {name}")
            yield
            events.append(f"stop {name}")

        class Plugin:
            PLUGHOST_NAME = name

            @hookimpl
            def plughost_lifespan(self, host):
                return lifespan()

        return Plugin()

    with client_for(make_app([lifespan_plugin("b"), lifespan_plugin("a")])):
        assert events == ["start a", "start b"]
    assert events == ["start a", "start b", "stop b", "stop a"]


def test_while_the_app_runs_worker_threads_yield_the_gil_every_millisecond(make_app) -> None:
    before = sys.getswitchinterval()
    with client_for(make_app([])):
        assert sys.getswitchinterval() == GIL_SWITCH_INTERVAL_SECONDS
    assert sys.getswitchinterval() == before


def test_route_tables_are_built_at_start_up_not_in_the_first_request(make_app, monkeypatch) -> None:
    """FastAPI builds an included router's routes lazily (its private ``_EffectiveRouteContext``): if
    that name goes away, this test fails and the warm-up in ``core.factory`` should be looked at again."""
    router = APIRouter()

    @router.get("/api/hello")
    def hello(name: str = "you") -> dict[str, str]:
        return {"hello": name}

    built: list[str] = []
    original = fastapi.routing._EffectiveRouteContext.from_api_route
    monkeypatch.setattr(
        fastapi.routing._EffectiveRouteContext,
        "from_api_route",
        classmethod(lambda cls, **kw: built.append(kw["original_route"].path) or original(**kw)),
    )
    with client_for(make_app([router_plugin("hello", router)])) as client:
        assert "/api/hello" in built
        built.clear()
        assert client.get("/api/hello", params={"name": "x"}).json() == {"hello": "x"}
        assert built == []


def test_a_failing_lifespan_names_the_plugin(make_app) -> None:
    @contextlib.asynccontextmanager
    async def failing() -> AsyncIterator[None]:
        raise ConnectionError("no database")
        yield

    class Failing:
        PLUGHOST_NAME = "store"

        @hookimpl
        def plughost_lifespan(self, host):
            return failing()

    with (
        pytest.raises(StartupError, match="plugin 'store'.*start-up failed: ConnectionError: no database"),
        client_for(make_app([Failing()])),
    ):
        pass


def test_two_wsgi_apps_are_an_error(make_app) -> None:
    def provider(name: str) -> object:
        class Plugin:
            PLUGHOST_NAME = name

            @hookimpl
            def plughost_wsgi_app(self, host):
                return Flask(name)

        return Plugin()

    with pytest.raises(StartupError, match="plugins 'one' and 'two': each provides the WSGI app"):
        make_app([provider("one"), provider("two")])


def test_a_405_allows_the_methods_of_the_paths_own_routes_not_those_of_a_parameter_route_that_matches_too(
    make_app,
) -> None:
    """schemathesis: ``OPTIONS /api/jobs/schedules`` advertised DELETE, the method of ``/api/jobs/{job_id}``."""
    app = make_app(["jobs"], {"jobs": {"workers": 0}})
    with client_for(app) as client:
        assert client.options("/api/jobs/schedules").headers["allow"] == "GET, POST"
        assert client.put(f"/api/jobs/{'0' * 32}").headers["allow"] == "GET, DELETE"
        assert client.put("/api/jobs/schedules/x").headers["allow"] == "GET, DELETE"


def test_plugin_routers_tried_only_for_their_own_first_segments_answer_as_before(make_app) -> None:
    """After start-up each plugin router is tried only for paths whose first segment it claims
    (``core.factory._gate_plugin_routers``); routing answers what it answered without that."""
    first, second, anywhere = APIRouter(), APIRouter(), APIRouter()

    @first.get("/alpha/items")
    async def alpha_items() -> dict[str, str]:
        return {"from": "first"}

    @second.post("/alpha/items")
    async def alpha_create() -> dict[str, str]:
        return {"from": "second"}

    @second.get("/beta/{item}")
    async def beta(item: str) -> dict[str, str]:
        return {"from": "second", "item": item}

    @anywhere.get("/{head}/anything")
    async def any_head(head: str) -> dict[str, str]:
        return {"from": "anywhere", "head": head}

    plugins = [router_plugin("first", first), router_plugin("second", second, after=["first"])]
    app = make_app([*plugins, router_plugin("any", anywhere)])
    with client_for(app) as client:
        assert client.get("/alpha/items").json() == {"from": "first"}
        assert client.post("/alpha/items").json() == {"from": "second"}
        assert client.get("/beta/x").json() == {"from": "second", "item": "x"}
        assert client.get("/gamma/anything").json() == {"from": "anywhere", "head": "gamma"}  # a parameter head
        refused = client.delete("/alpha/items")
        assert refused.status_code == 405 and refused.headers["allow"] == "GET, POST"  # both routers' methods
        assert client.get("/beta").status_code == 404  # the console's, as before
