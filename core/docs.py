"""``/docs`` (Swagger UI) and ``/redoc`` that work offline: their scripts come from the
``fastapi-offline`` package's copies, served under :data:`DOCS_STATIC_URL`, not from a CDN."""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.staticfiles import StaticFiles
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute

DOCS_STATIC_URL = "/docs-static"
DOCS_ASSETS = files("fastapi_offline") / "static"
REDOC_IMAGES = "img-src 'self' data: blob:"
"""ReDoc's images come from this server only: nothing is fetched from another origin, even its logo."""


def add_offline_docs(app: FastAPI) -> list[BaseRoute]:
    """Serve Swagger UI at ``/docs`` and ReDoc at ``/redoc`` from local assets (the app is built with both off).

    Returns the routes added: pages and files that hold no data (the schema, ``/openapi.json``, is not one).
    """
    added_from = len(app.router.routes)
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"
    app.mount(DOCS_STATIC_URL, StaticFiles(directory=str(DOCS_ASSETS)), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API docs",
            oauth2_redirect_url=redirect_url,
            swagger_js_url=f"{DOCS_STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_STATIC_URL}/favicon.png",
        )

    @app.get(redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API reference",
            redoc_js_url=f"{DOCS_STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_STATIC_URL}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = REDOC_IMAGES  # its bundle fetches a logo from cdn.redoc.ly
        return page

    return app.router.routes[added_from:]
