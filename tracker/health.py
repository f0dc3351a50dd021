"""`/healthz` for load balancers: is the database reachable, and the message queue if one is set?"""
import redis
from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from .extensions import db

bp = Blueprint("health", __name__)


def _check(probe) -> str:
    try:
        probe()
    except Exception as exc:  # any failure means: not usable right now
        current_app.logger.warning("health check failed: %s", exc)
        return f"unreachable ({exc.__class__.__name__})"
    return "ok"


def _ping_queue(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    finally:
        client.close()


@bp.get("/healthz")
def healthz():
    """200 when every dependency answers, else 503; the body says which one failed."""
    checks = {"database": _check(lambda: db.session.execute(text("SELECT 1")))}
    queue = current_app.config["SOCKETIO_MESSAGE_QUEUE"]
    if queue:
        checks["queue"] = _check(lambda: _ping_queue(queue))
    ok = all(value == "ok" for value in checks.values())
    return jsonify(ok=ok, **checks), 200 if ok else 503
