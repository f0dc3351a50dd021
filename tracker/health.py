"""`/healthz` for load balancers: is the database reachable and writable, and the queue if set?"""
import redis
from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from .extensions import db

bp = Blueprint("health", __name__)

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
