"""The console's gateway pages: configuration (secrets, models, endpoints), a streaming playground, usage.

The pages are shells; their scripts (``static/gateway``) call ``/api/gateway`` and the
OpenAI-compatible routes in the browser, in the chosen workspace, through ``plughost.api``.
"""

from __future__ import annotations

from flask import Blueprint, render_template

pages = Blueprint(
    "gateway", __name__, template_folder="templates", static_folder="static", static_url_path="/gateway/static"
)


@pages.get("/gateway")
def overview() -> str:
    """What the gateway is made of, with counts, and how clients call it."""
    return render_template("gateway/overview.html", section="overview")


@pages.get("/gateway/<any(secrets, models, endpoints):kind>")
def configuration(kind: str) -> str:
    """A configuration list with its form: secrets, models or endpoints."""
    return render_template(f"gateway/{kind}.html", section=kind)


@pages.get("/gateway/playground")
def playground() -> str:
    """Chat with an endpoint, streamed."""
    return render_template("gateway/playground.html", section="playground")


@pages.get("/gateway/usage")
def usage() -> str:
    """Latency and tokens over time per endpoint, totals and recent calls."""
    return render_template("gateway/usage.html", section="usage")
