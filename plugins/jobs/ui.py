"""The console's job pages: a list by status and type, and a job's detail with cancel and live refresh."""

from __future__ import annotations

import re

from flask import Blueprint, render_template

from core import ConsoleNotFound

pages = Blueprint("jobs", __name__, template_folder="templates", static_folder="static", static_url_path="/jobs/static")
JOB_ID = re.compile(r"^[0-9a-f]{32}$")


@pages.get("/jobs")
def job_list() -> str:
    return render_template("jobs/list.html")


@pages.get("/jobs/<job_id>")
def job_detail(job_id: str) -> str:
    if not JOB_ID.match(job_id.lower()):
        raise ConsoleNotFound(
            "No such job",
            f"There is no job {job_id!r}: a job id is 32 hexadecimal digits, as the job list shows them.",
            back=("All jobs", "/jobs"),
        )
    return render_template("jobs/detail.html", job_id=job_id.lower())
