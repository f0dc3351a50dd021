"""`/healthz` for load balancers (is the database reachable and writable, and the queue if set?), and
the 503 answer for requests that meet a database outage."""
import redis
from flask import Blueprint, current_app, g, jsonify, request
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from .extensions import db, login_manager

bp = Blueprint("health", __name__)

# Errors that mean the database is unreachable or out of connections, not that a query is wrong.
OUTAGES = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)
DATABASE_DOWN = "The database is unavailable right now. Nothing was saved; please try again in a moment."


def without_database(error: Exception) -> None:
    """Get ready to answer a request whose database work failed: log it, drop the broken
    transaction, and render without the account (loading it would need the database)."""
    current_app.logger.error("database unavailable during %s %s: %s", request.method, request.path, error)
    try:
        db.session.rollback()
    except Exception:  # the connection is gone; the session is discarded after the request anyway
        pass
    g._login_user = login_manager.anonymous_user()  # what current_user returns for this request


def database_unavailable(error: Exception):
    """Any page or API call that meets a database outage: 503 with a message, never a traceback."""
    from . import _error

    without_database(error)
    return _error(503, DATABASE_DOWN)


for _outage in OUTAGES:
    bp.app_errorhandler(_outage)(database_unavailable)


# How long the SQLite probe waits for the write lock. SQLite waits inside C, which stalls
# every green thread of the process meanwhile, so the wait is kept short.
SQLITE_PROBE_MS = 50


class DatabaseLocked(Exception):
    """Another connection holds SQLite's write lock: pages can be read, nothing can be saved."""


def _check(probe) -> str:
    try:
        probe()
    except DatabaseLocked as exc:
        current_app.logger.warning("health check failed: %s", exc)
        return "locked (changes cannot be saved)"
    except Exception as exc:  # any failure means: not usable right now
        current_app.logger.warning("health check failed: %s", exc)
        return f"unreachable ({exc.__class__.__name__})"
    return "ok"


def _ping_database() -> None:
    """SELECT 1; on SQLite, which answers that without touching the file, take the write lock and let it go."""
    if db.engine.dialect.name != "sqlite":
        db.session.execute(text("SELECT 1"))
        return
    with db.engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        raw.execute(f"PRAGMA busy_timeout={SQLITE_PROBE_MS}")
        try:
            raw.execute("BEGIN IMMEDIATE")
            raw.execute("ROLLBACK")
        except raw.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise DatabaseLocked(str(exc)) from None
            raise
        finally:
            raw.execute(f"PRAGMA busy_timeout={current_app.config['DB_BUSY_TIMEOUT_MS']}")


def _ping_queue(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    finally:
        client.close()


@bp.get("/healthz")
def healthz():
    """200 when every dependency answers, else 503; the body says which one failed."""
    checks = {"database": _check(_ping_database)}
    queue = current_app.config["SOCKETIO_MESSAGE_QUEUE"]
    if queue:
        checks["queue"] = _check(lambda: _ping_queue(queue))
    ok = all(value == "ok" for value in checks.values())
    return jsonify(ok=ok, **checks), 200 if ok else 503
