"""How many are reading each story now, over every process.

Each process counts the connections in its story rooms (a dict's length, nothing per reader).
Every READERS_SECONDS it writes its counts into Redis when there is a message queue, one hash
per story with a field per process, reads the totals back in the same round trip, and tells its
own readers of each story whose total changed the new total, in one `readers` event per story,
never one per join (a join's answer carries the count). A process that stopped drops out of the
totals once its figure is three ticks old.
"""
from __future__ import annotations

import logging
import time
import uuid

import redis
from flask import Flask, current_app

from . import events, metrics
from .extensions import socketio

log = logging.getLogger(__name__)
KEY = "tracker:readers:"
PROCESS = uuid.uuid4().hex  # this process's field in each story's hash
STALE_TICKS = 3

_totals: dict[str, int] = {}  # the last tick's totals, by story slug
_reported: set[str] = set()  # the stories this process has a figure for in Redis


def _rooms() -> dict:
    """This process's rooms of the default namespace (one per connection, one per followed story...)."""
    return socketio.server.manager.rooms.get("/", {}) if socketio.server else {}


def local_counts() -> dict[str, int]:
    """This process's connections per story it has readers of."""
    prefix = events.ROOM_PREFIX
    return {name[len(prefix):]: len(members) for name, members in list(_rooms().items())
            if name and name.startswith(prefix) and members}


metrics.READERS.set_function(lambda: sum(local_counts().values()))


def _client(app: Flask) -> redis.Redis | None:
    url = app.config["SOCKETIO_MESSAGE_QUEUE"]
    if not url or not url.startswith(("redis://", "rediss://")):
        return None
    if "tracker.readers" not in app.extensions:
        app.extensions["tracker.readers"] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return app.extensions["tracker.readers"]


def _total(figures: dict, now: float, fresh: float) -> int:
    """A story's hash: {process: b"count time"}, summed over the figures newer than `fresh` seconds."""
    total = 0
    for value in figures.values():
        count, at = value.split()
        if now - float(at) <= fresh:
            total += int(count)
    return total


def counts(slugs: list[str]) -> dict[str, int]:
    """The readers of these stories now, over every process (Redis's figures, or this process's)."""
    app = current_app._get_current_object()
    client, local = _client(app), local_counts()
    if client is None:
        return {slug: local.get(slug, 0) for slug in slugs}
    pipe = client.pipeline(transaction=False)
    for slug in slugs:
        pipe.hgetall(KEY + slug)
    try:
        answers = pipe.execute()
    except redis.RedisError as exc:  # a count is not worth an error page: this process's figures
        metrics.QUEUE_ERRORS.inc()
        log.warning("reader counts unavailable from Redis (%s); answering this process's", exc)
        return {slug: local.get(slug, 0) for slug in slugs}
    now, fresh = time.time(), STALE_TICKS * app.config["READERS_SECONDS"]
    return {slug: _total(figures, now, fresh) for slug, figures in zip(slugs, answers, strict=True)}


def last_total(slug: str) -> int:
    """The story's total at the last tick (for a join's answer: no round trip), else this process's count."""
    # One room's size, not local_counts(): that walks every room, one per connection, on every join.
    return _totals.get(slug) or len(_rooms().get(events.room(slug)) or ())


@metrics.READERS_TICKS.time()
def tick(app: Flask) -> dict[str, int]:
    """Share this process's counts, then tell its readers of each story whose total changed; returns the totals."""
    global _totals, _reported
    local, client = local_counts(), _client(app)
    totals = local
    if client is not None:
        now, interval = time.time(), app.config["READERS_SECONDS"]
        pipe = client.pipeline(transaction=False)
        for slug, count in local.items():
            pipe.hset(KEY + slug, PROCESS, f"{count} {now:.3f}")
            pipe.expire(KEY + slug, int(STALE_TICKS * interval) + 1)
        for slug in _reported - local.keys():
            pipe.hdel(KEY + slug, PROCESS)
        for slug in local:
            pipe.hgetall(KEY + slug)
        answers = pipe.execute()[-len(local):] if local else []
        totals = {slug: _total(figures, now, STALE_TICKS * interval)
                  for slug, figures in zip(local, answers, strict=True)}
    told, _totals, _reported = _totals, totals, set(local)
    for slug, total in totals.items():
        # Unchanged, its readers have it already (from the last tick, or a join's answer, which is
        # that tick's total): a frame to each of them for nothing, and a publish meanwhile waits.
        if told.get(slug) != total:
            socketio.emit("readers", {"story": slug, "readers": total}, to=events.room(slug), ignore_queue=True)
    return totals


def run(app: Flask) -> None:
    """Tick every READERS_SECONDS (0: never), in the background of a serving process."""
    interval = app.config["READERS_SECONDS"]
    while interval > 0:
        socketio.sleep(interval)
        try:
            with app.app_context():
                tick(app)
        except Exception as exc:
            if isinstance(exc, redis.RedisError):
                metrics.QUEUE_ERRORS.inc()
            log.exception("counting readers failed; trying again in %s s", interval)
