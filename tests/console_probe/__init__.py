"""A console page for the shell's tests: it calls a token-guarded API and shows what it got."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, HTTPException
from flask import Blueprint, render_template

from core import ConsolePage, RouterContribution, hookimpl

TOKEN = "probe-token-0123456789"

pages = Blueprint(
    "probe", __name__, template_folder="templates", static_folder="static", static_url_path="/probe/static"
)


@pages.get("/probe")
def probe_page() -> str:
    return render_template("probe/index.html", attribute="<script>alert(1)</script>")


api = APIRouter()


@api.get("/api/probe")
async def probe(authorization: str = Header(""), x_plughost_workspace: str = Header("")) -> dict[str, Any]:
    if authorization != f"Bearer {TOKEN}":
        raise HTTPException(401, "token required")
    return {"workspace": x_plughost_workspace}


slot = Blueprint("slot", __name__, static_folder="static", static_url_path="/slot/static")


class Slot:
    """A scripts-only contribution: no navigation entry, a script and a style on every page."""

    PLUGHOST_NAME = "slot"

    @hookimpl
    def plughost_console_pages(self, host: Any) -> ConsolePage:
        return ConsolePage("slot", slot, scripts=("/slot/static/slot/slot.js",), styles=("/slot/static/slot/slot.css",))


class Probe:
    PLUGHOST_NAME = "probe"

    def __init__(self, *, before: tuple[str, ...] = ()) -> None:
        self.before = before

    @hookimpl
    def plughost_routers(self, host: Any) -> RouterContribution:
        return RouterContribution("probe", api)

    @hookimpl
    def plughost_console_pages(self, host: Any) -> ConsolePage:
        return ConsolePage("probe", pages, "Probe", "/probe", before=self.before)
