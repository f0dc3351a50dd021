"""Login, logout, server-side sessions, a person's own profile, and the role checks that guard editor pages."""
import hashlib
import re
import secrets
from functools import cache, wraps
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required, login_user, logout_user
from sqlalchemy import delete, select
from werkzeug.security import generate_password_hash

from . import services
from .extensions import db, limiter, login_manager
from .forms import ActionForm, LoginForm, ProfileForm
from .models import ID_PATTERN, User, UserSession, utcnow

bp = Blueprint("auth", __name__)

# "<user id>-<session_version>-<token>"; the older "<id>-<version>" form matches nothing.
_SESSION_ID = re.compile(rf"({ID_PATTERN})-({ID_PATTERN})-([A-Za-z0-9_-]{{43}})")
_PROXY_WARNED = "tracker.proxy_warned"
login_manager.login_view = "auth.login"
login_manager.login_message = _l("Log in to reach the editor pages.")


@cache
def _nobody() -> User:
    """A user no name matches, with a real hash to check: built on first use (a hash takes 0.2 s of a restart)."""
    return User(password_hash=generate_password_hash("unused"))


def _digest(token: str) -> str:
    """What the database keeps of a session token: its SHA-256."""
    return hashlib.sha256(token.encode()).hexdigest()


@login_manager.user_loader
def load_user(session_id: str):
    """The user of a session whose record is alive, unless the account signed out everywhere since."""
    match = _SESSION_ID.fullmatch(session_id)
    if match is None:
        return None
    user_id, version, token = match.groups()
    user = db.session.scalar(
        select(User).join(UserSession, UserSession.user_id == User.id)
        .where(UserSession.id == _digest(token), UserSession.expires_at > utcnow(),
               User.id == int(user_id), User.session_version == int(version)))
    if user is not None:
        user.session_token = token
    return user


def _start_session(user: User) -> None:
    """Log user in with a new session record, replacing this browser's previous one."""
    _end_session()
    now = utcnow()
    db.session.execute(delete(UserSession).where(UserSession.expires_at <= now))  # cheap: indexed
    user.session_token = secrets.token_urlsafe(32)
    db.session.add(UserSession(id=_digest(user.session_token), user_id=user.id, created_at=now,
                               expires_at=now + current_app.permanent_session_lifetime))
    db.session.commit()
    login_user(user)


def _end_session() -> None:
    """Delete this browser's session record, so a copy of its cookie opens nothing; others stay."""
    if current_user.is_authenticated:
        db.session.execute(delete(UserSession).where(UserSession.id == _digest(current_user.session_token)))
        db.session.commit()
    logout_user()


def admin_required(view):
    """Allow only logged-in admins."""
    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_admin:
            abort(403, description="Only admins can manage accounts.")
        return view(*args, **kwargs)
    return wrapped


def publisher_required(view):
    """Let editors and admins change things; contributors may look (GET) but not change (403)."""
    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if request.method not in ("GET", "HEAD") and not current_user.may_publish:
            abort(403, description=services.CONTRIBUTOR_REFUSAL)
        return view(*args, **kwargs)
    return wrapped


def _safe_next(target: str | None) -> str:
    """Follow ?next= only to a path on this site."""
    parts = urlsplit(target or "")
    if target and not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("editor.dashboard")


def _address_and_account() -> str:
    """Key of the per-account limit: failures against one account leave the others behind the same address open."""
    username = request.form.get("username", "").strip().casefold()[:64]  # no account name is longer
    return f"{get_remote_address()}/{username}"


def _failed(response) -> bool:
    """Only failed attempts count toward the login limits."""
    return response.status_code == 401


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"], methods=["POST"], key_func=_address_and_account,
               scope="account", deduct_when=_failed)
@limiter.limit(lambda: current_app.config["LOGIN_ADDRESS_RATE_LIMIT"], methods=["POST"], scope="address",
               deduct_when=_failed)
def login():
    """Log an editor in."""
    form = LoginForm()
    if form.validate_on_submit():
        user = db.session.scalar(select(User).where(User.username == form.username.data.strip()))
        # Hash even for unknown names, so response time does not reveal which accounts exist.
        valid = (user or _nobody()).check_password(form.password.data)
        if user is not None and user.active and valid:
            _start_session(user)
            return redirect(_safe_next(request.args.get("next")))
        form.password.errors.append("Unknown username or wrong password.")
    status = 401 if form.errors and request.method == "POST" else 200
    return render_template("login.html", form=form), status


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """Log out on POST (CSRFProtect checks its token); a GET, which any link or image can send, only asks."""
    if request.method == "GET":
        return render_template("logout.html", form=ActionForm())
    _end_session()
    flash(_("You are logged out."))
    return redirect(url_for("reader.index"))


@bp.route("/editor/profile", methods=["GET", "POST"])
@login_required
def profile():
    """A person's own display name and password; a new password signs their other sessions out."""
    user = current_user._get_current_object()  # the proxy turns anonymous while the session renews
    form = ProfileForm(display_name=user.display_name)
    if form.validate_on_submit():
        try:
            renewed = services.change_profile(user, form.display_name.data or "",
                                              form.current_password.data or "", form.new_password.data or "")
        except services.ServiceError as exc:
            getattr(form, exc.field or "display_name").errors.append(exc.message)
            return render_template("editor/profile.html", form=form), exc.status
        if renewed:
            _start_session(user)  # this browser stays signed in; every other one is out
        flash(_("Password changed; your other sessions are signed out.") if renewed else _("Profile saved."))
        return redirect(url_for("auth.profile"))
    return render_template("editor/profile.html", form=form), 400 if form.errors else 200


@bp.before_app_request
def _warn_about_an_untrusted_proxy() -> None:
    """Warn once per app (one per process) when a proxy forwards requests but TRUSTED_PROXIES is unset."""
    app = current_app
    if app.config["TRUSTED_PROXIES"] or app.extensions.get(_PROXY_WARNED) or "X-Forwarded-For" not in request.headers:
        return
    app.extensions[_PROXY_WARNED] = True
    app.logger.warning("Requests arrive through a proxy (X-Forwarded-For) but TRUSTED_PROXIES is unset: every "
                       "client shares the proxy's address for rate limits; set TRUSTED_PROXIES=1 behind nginx.")
