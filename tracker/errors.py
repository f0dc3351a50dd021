"""Every error answer: HTTP errors, an expired CSRF token and database outages, as JSON or as a page."""
from flask import Flask, current_app, g, jsonify, make_response, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException

from .extensions import db, login_manager
from .forms import EditEntryForm, EntryForm
from .web import wants_json

MESSAGES = {
    429: "Too many attempts from your address. Wait a minute, then try again.",
    413: "That is too much to send at once. An update may have at most 20,000 characters.",
    500: "Something went wrong on our side. Please try again in a moment.",
}
# Errors that mean the database is unreachable or out of connections, not that a query is wrong.
OUTAGES = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)
DATABASE_DOWN = "The database is unavailable right now. Nothing was saved; please try again in a moment."
# Editor forms that come back filled in when the database fails, so nothing typed is lost.
UNSAVED_FORMS = {"editor.story": EntryForm, "editor.edit_entry": EditEntryForm}


def register(app: Flask) -> None:
    """Answer every error of the app through this module."""
    app.register_error_handler(CSRFError, csrf_error)
    app.register_error_handler(HTTPException, http_error)
    for outage in OUTAGES:
        app.register_error_handler(outage, database_unavailable)


def error_response(status: int, message: str):
    """An error as JSON for scripts and fetch, or as a page for people."""
    if wants_json() or request.path.startswith(("/api/", "/push/")):
        return jsonify(ok=False, error=message), status
    return make_response(render_template("error.html", status=status, message=message)), status


def csrf_error(error: CSRFError):
    """A form without its valid CSRF token: 400, with what to do."""
    return error_response(400, "The form expired or was sent from another site. Reload the page and try again.")


def http_error(error: HTTPException):
    """Any HTTP error: the usual message for its status, else the description it was raised with."""
    # A 413 raised with its own description (an upload's limit) says that one.
    custom = error.code == 413 and error.description != type(error).description
    response, status = error_response(error.code, error.description if custom else
                                      MESSAGES.get(error.code, error.description))
    # Keep what werkzeug says besides the body, such as Allow on a 405.
    response.headers.extend((k, v) for k, v in error.get_headers() if k.lower() != "content-type")
    return response, status


def database_unavailable(error: Exception):
    """Any request that meets a database outage: 503 with a message, never a traceback. The editor's
    append and correction forms come back filled in (same idempotency key), so resending publishes once."""
    current_app.logger.error("database unavailable during %s %s: %s", request.method, request.path, error)
    try:
        db.session.rollback()
    except Exception:  # the connection is gone; the session is discarded after the request anyway
        pass
    g._login_user = login_manager.anonymous_user()  # render without the account: loading it needs the database
    form = UNSAVED_FORMS.get(request.endpoint) if request.method == "POST" and not wants_json() else None
    if form is not None:
        return render_template("editor/unsaved.html", form=form(), message=DATABASE_DOWN), 503
    return error_response(503, DATABASE_DOWN)
