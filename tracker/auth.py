"""Login, logout and the role checks that guard editor pages."""
from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from .extensions import db, limiter, login_manager
from .forms import ActionForm, LoginForm
from .models import User

bp = Blueprint("auth", __name__)

_NOBODY = User(password_hash=generate_password_hash("unused"))
login_manager.login_view = "auth.login"
login_manager.login_message = "Log in to reach the editor pages."


@login_manager.user_loader
def load_user(session_id: str):
    """Load the logged-in user from the session, unless the account signed out everywhere since."""
    user_id, _, version = session_id.partition("-")
    if not (user_id.isdigit() and version.isdigit()):
        return None
    user = db.session.get(User, int(user_id))
    return user if user is not None and user.session_version == int(version) else None


def admin_required(view):
    """Allow only logged-in admins."""
    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_admin:
            abort(403, description="Only admins can manage accounts.")
        return view(*args, **kwargs)
    return wrapped


def _safe_next(target: str | None) -> str:
    """Follow ?next= only to a path on this site."""
    parts = urlsplit(target or "")
    if target and not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("editor.dashboard")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"],
               deduct_when=lambda response: response.status_code == 401)  # only failed attempts count
def login():
    """Log an editor in."""
    form = LoginForm()
    if form.validate_on_submit():
        user = db.session.scalar(select(User).where(User.username == form.username.data.strip()))
        # Hash even for unknown names, so response time does not reveal which accounts exist.
        valid = (user or _NOBODY).check_password(form.password.data)
        if user is not None and user.active and valid:
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        form.password.errors.append("Unknown username or wrong password.")
    status = 401 if form.errors and request.method == "POST" else 200
    return render_template("login.html", form=form), status


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """Log out; a GET started by another site only shows a confirmation button."""
    form = ActionForm()
    if request.method == "GET" and request.headers.get("Sec-Fetch-Site", "same-origin") == "cross-site":
        return render_template("logout.html", form=form)
    logout_user()
    flash("You are logged out.")
    return redirect(url_for("reader.index"))
