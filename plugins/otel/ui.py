"""The console's trace pages: a filterable, sortable trace list and a trace view with a waterfall;
and the sessions pages: the list of sessions and one session as a thread.

The pages are shells; their scripts (``static/otel``) read ``/api/otel/traces`` and
``/api/otel/sessions`` in the browser, so the console shows exactly what the API answers, in the
chosen workspace.
"""

from __future__ import annotations

import re

from flask import Blueprint, render_template

from core import ConsoleNotFound

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
pages = Blueprint(
    "otel", __name__, template_folder="templates", static_folder="static", static_url_path="/traces/static"
)


@pages.get("/traces")
def trace_list() -> str:
    return render_template("otel/traces.html")


@pages.get("/traces/<trace_id>")
def trace_view(trace_id: str) -> str:
    """The trace view; an id in upper case (as other tools print them) is the same trace."""
    if not TRACE_ID.match(trace_id.lower()):
        raise ConsoleNotFound(
            "No such trace",
            f"There is no trace {trace_id!r}: a trace id is 32 hexadecimal digits.",
            back=("All traces", "/traces"),
        )
    return render_template("otel/trace.html", trace_id=trace_id.lower())


session_pages = Blueprint("otel_sessions", __name__, template_folder="templates")
"""The sessions pages, a navigation entry of their own (their scripts are the trace pages' static files)."""


@session_pages.get("/sessions")
def session_list() -> str:
    return render_template("otel/sessions.html")


@session_pages.get("/sessions/<path:session_id>")
def session_view(session_id: str) -> str:
    return render_template("otel/session.html", session_id=session_id)
