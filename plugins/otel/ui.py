"""The console's trace pages: a filterable trace list and a trace view with a waterfall.

The pages are shells; their scripts (``static/otel``) read ``/api/otel/traces`` in the
browser, so the console shows exactly what the API answers, in the chosen workspace.
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
