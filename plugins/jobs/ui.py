"""The console's job pages: a list by status and type, and a job's detail with cancel and live refresh."""

from __future__ import annotations

from flask import Blueprint, render_template

pages = Blueprint("jobs", __name__, template_folder="templates", static_folder="static", static_url_path="/jobs/static")


@pages.get("/jobs")
def job_list() -> str:
    return render_template("jobs/list.html")


@pages.get("/jobs/<job_id>")
def job_detail(job_id: str) -> str:
    return render_template("jobs/detail.html", job_id=job_id)
