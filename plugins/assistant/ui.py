"""The assistant in the console: a panel on otel's trace view, and a page of stored conversations.

The panel is a shell script (``ConsolePage.scripts``) that waits for the trace view's
``plughost:trace-view`` event, so the otel plugin needs no knowledge of the assistant. Both
call ``/api/assistant`` from the browser, in the chosen workspace.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from core import ConsolePage

STATIC_URL = "/assistant/static"

pages = Blueprint(
    "assistant", __name__, template_folder="templates", static_folder="static", static_url_path=STATIC_URL
)


@pages.get("/assistant")
def conversations() -> str:
    return render_template("assistant/conversations.html")


def console_page() -> ConsolePage:
    """The "Assistant" page (after otel's "Traces"), with the trace panel's script and style on every page."""
    return ConsolePage(
        "assistant",
        pages,
        "Assistant",
        "/assistant",
        after=("otel",),
        scripts=(f"{STATIC_URL}/assistant/trace-panel.js",),
        styles=(f"{STATIC_URL}/assistant/assistant.css",),
    )
