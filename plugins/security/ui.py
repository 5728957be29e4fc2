"""The console's accounts pages: the sign-in form (``/login``), the admin page for users and keys
(``/accounts``), and on every page who is signed in, with *Sign out*.

The pages are shells: the sign-in form posts to ``POST /login`` (:mod:`.router`); the scripts
(``static/security``) read ``/api/security/*`` through ``plughost.api``.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request

from core.access import ROLES

pages = Blueprint(
    "security", __name__, template_folder="templates", static_folder="static", static_url_path="/security/static"
)
SESSION_SCRIPT = "/security/static/security/session.js"
SESSION_STYLE = "/security/static/security/security.css"


@pages.get("/login")
def login() -> str:
    """The sign-in form: ``username`` and ``password`` fields, as password managers expect."""
    return render_template(
        "security/login.html",
        failed="failed" in request.args,
        throttled=request.args.get("throttled", type=int),
        next=request.args.get("next", "/"),
    )


@pages.get("/accounts")
def accounts() -> str:
    """Users and API keys: add, disable, enable, delete (for admins)."""
    return render_template("security/accounts.html", roles=ROLES)
